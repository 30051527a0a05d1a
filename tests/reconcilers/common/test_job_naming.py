"""Names, labels, selectors, owner references (reference 2.5)."""

from __future__ import annotations

import pytest

from kubetrain.base.objects import is_controlled_by
from kubetrain.reconcilers.api.kinds import PYTORCHJOB, TFJOB
from kubetrain.reconcilers.common import naming


def test_general_name() -> None:
    assert naming.general_name("mnist", "Worker", 0) == "mnist-worker-0"
    assert naming.general_name("mnist", "PS", 1) == "mnist-ps-1"
    assert naming.general_name("a/b", "Worker", 2) == "a-b-worker-2"


def test_labels_and_selector() -> None:
    labels = naming.replica_labels(TFJOB, "j", "Chief", 0, master_role=True)
    assert labels == {
        "training.kubeflow.org/operator-name": "tfjob-controller",
        "training.kubeflow.org/job-name": "j",
        "training.kubeflow.org/replica-type": "chief",
        "training.kubeflow.org/replica-index": "0",
        "training.kubeflow.org/job-role": "master",
    }
    assert "training.kubeflow.org/job-role" not in naming.replica_labels(
        TFJOB, "j", "PS", 0, master_role=False
    )
    assert naming.replica_selector(PYTORCHJOB, "j", "Worker") == (
        "training.kubeflow.org/job-name=j,"
        "training.kubeflow.org/operator-name=pytorchjob-controller,"
        "training.kubeflow.org/replica-type=worker"
    )


def test_owner_reference_and_control() -> None:
    job = {"metadata": {"name": "j", "uid": "u1"}}
    ref = naming.owner_reference(PYTORCHJOB, job)
    assert ref == {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "name": "j",
        "uid": "u1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert is_controlled_by({"metadata": {"ownerReferences": [ref]}}, "u1")
    assert not is_controlled_by({"metadata": {"ownerReferences": [ref]}}, "u2")
    with pytest.raises(ValueError, match=r"metadata\.uid"):
        naming.owner_reference(PYTORCHJOB, {"metadata": {"name": "j"}})
