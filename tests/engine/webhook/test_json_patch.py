"""``json_patch`` (the defaulting webhook's diff) is exact: applying it with the jsonpatch
library (an independent implementation of RFC 6902) gives the new document, for any JSON."""

from __future__ import annotations

from typing import Any

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrain.engine.webhook.admission import json_patch

keys = st.sampled_from(["a", "b", "c", "x/y", "t~0", "", "spec", "0"])
scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    old=st.dictionaries(keys, documents, max_size=5),
    new=st.dictionaries(keys, documents, max_size=5),
)
def test_applying_the_patch_gives_the_new_document(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    ops = json_patch(old, new)
    assert jsonpatch.apply_patch(old, ops) == new
    assert (ops == []) == (old == new)


def test_an_added_nested_field_is_one_add() -> None:
    old = {"spec": {"replicas": {"Master": {"template": {}}}}}
    new = {"spec": {"replicas": {"Master": {"template": {}, "replicas": 1}}, "runPolicy": {}}}
    assert json_patch(old, new) == [
        {"op": "add", "path": "/spec/replicas/Master/replicas", "value": 1},
        {"op": "add", "path": "/spec/runPolicy", "value": {}},
    ]


def test_keys_are_escaped_and_type_changes_replace() -> None:
    assert json_patch({"a/b": 1, "m~n": [1]}, {"a/b": True, "m~n": [1, 2]}) == [
        {"op": "replace", "path": "/a~1b", "value": True},
        {"op": "replace", "path": "/m~0n", "value": [1, 2]},
    ]
