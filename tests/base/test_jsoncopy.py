"""``json_copy``: a deep copy through orjson, with ``copy.deepcopy`` for what JSON cannot hold."""

from __future__ import annotations

import datetime
from typing import Any

from kubetrain.base.jsoncopy import json_copy


def test_a_json_tree_is_copied_deeply() -> None:
    tree: dict[str, Any] = {
        "metadata": {"name": "x", "labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "args": ["1", "2"]}], "replicas": 2},
        "status": {"ratio": 0.5, "ready": True, "message": None},
    }
    copied = json_copy(tree)
    assert copied == tree
    assert copied is not tree and copied["metadata"] is not tree["metadata"]
    assert copied["spec"]["containers"][0] is not tree["spec"]["containers"][0]
    copied["spec"]["containers"][0]["args"].append("3")
    assert tree["spec"]["containers"][0]["args"] == ["1", "2"]


def test_scalars_come_back_as_they_are() -> None:
    for value in ("text", 3, 2.5, True, None):
        assert json_copy(value) is value


def test_what_json_cannot_hold_is_deep_copied() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5)
    tree = {"at": when, "big": 2**70, "nested": {"k": [1]}}
    copied = json_copy(tree)
    assert copied == tree and isinstance(copied["at"], datetime.datetime)  # not a string
    assert copied["nested"] is not tree["nested"]
    keyed = {1: "one"}
    assert json_copy(keyed) == keyed
    assert json_copy((1, [2])) == (1, [2])  # a tuple stays a tuple at the top
