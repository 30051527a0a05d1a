"""Object keys and the one reading of a controller owner reference."""

from __future__ import annotations

import pytest

from kubetrain.base.objects import (
    controller_ref,
    controller_uid,
    group_of,
    is_controlled_by,
    object_key,
    resource_version_of,
    split_key,
)


def owned(*refs: dict[str, object]) -> dict[str, object]:
    return {"metadata": {"name": "p", "namespace": "ns", "ownerReferences": list(refs)}}


JOB = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "name": "j", "uid": "u1"}


def test_keys_round_trip() -> None:
    assert object_key({"metadata": {"name": "a", "namespace": "ns"}}) == "ns/a"
    assert object_key({"metadata": {"name": "node-1"}}) == "node-1"
    assert split_key("ns/a") == ("ns", "a")
    assert split_key("node-1") == (None, "node-1")
    with pytest.raises(ValueError, match=r"metadata\.name"):
        object_key({"kind": "Pod", "metadata": {}})


def test_resource_version_and_group() -> None:
    assert resource_version_of({"metadata": {"resourceVersion": "7"}}) == "7"
    assert resource_version_of({}) == ""
    assert group_of("kubeflow.org/v1") == "kubeflow.org"
    assert group_of("v1") == ""


def test_only_the_controller_reference_counts() -> None:
    other = {**JOB, "uid": "u0", "controller": False}
    obj = owned(other, {**JOB, "controller": True})
    assert controller_ref(obj) == {**JOB, "controller": True}
    assert controller_uid(obj) == "u1"
    assert is_controlled_by(obj, "u1")
    assert not is_controlled_by(obj, "u0")
    assert controller_ref(owned(other)) is None
    assert controller_uid({"metadata": {"name": "x"}}) is None
    assert not is_controlled_by({"metadata": {}}, "")


def test_controller_of_another_kind_or_group_is_ignored() -> None:
    obj = owned({**JOB, "controller": True})
    assert controller_uid(obj, kind="PyTorchJob", group="kubeflow.org") == "u1"
    assert controller_uid(obj, kind="TFJob", group="kubeflow.org") is None
    assert controller_uid(obj, kind="PyTorchJob", group="batch") is None
