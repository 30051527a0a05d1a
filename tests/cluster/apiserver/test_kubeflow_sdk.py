"""The Kubeflow Training SDK (kubeflow-training 1.9, sync client in a thread) against the server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from apiserver_helpers import Raw

from kubetrain.cluster.embedded import EmbeddedCluster

ROOT = Path(__file__).resolve().parents[3]
CRD_FILE = ROOT / "deploy" / "crds" / "kubeflow.org_pytorchjobs.yaml"

training = pytest.importorskip("kubeflow.training")


@pytest.mark.embedded_only(reason="the pod's log is appended to the embedded cluster.api.pod_logs")
async def test_training_client_create_get_patch_list_pods_logs_delete(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    status, body, _ = await raw.post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        yaml.safe_load(CRD_FILE.read_text()),
    )
    assert status == 201, body
    pods = "/api/v1/namespaces/default/pods"
    for role, name in (
        ("master", "pytorch-simple-master-0"),
        ("worker", "pytorch-simple-worker-0"),
    ):
        labels = {
            "training.kubeflow.org/job-name": "pytorch-simple",
            "training.kubeflow.org/job-role": role,
        }
        spec = {"containers": [{"name": "pytorch", "image": "i"}], "nodeName": "n1"}
        await raw.post(pods, {"metadata": {"name": name, "labels": labels}, "spec": spec})
        await raw.patch(f"{pods}/{name}/status", {"status": {"phase": "Running"}})
    cluster.api.pod_logs.append("default", "pytorch-simple-master-0", "pytorch", "epoch 1\n")

    def work() -> tuple[str, list[str], list[str], dict[str, str], dict[str, str]]:
        tc = training.TrainingClient(config_file=cluster.kubeconfig_path, namespace="default")
        tc.create_job(name="pytorch-simple", base_image="docker.io/busybox:1", num_workers=2)
        got = tc.get_job("pytorch-simple")
        got.metadata.labels = {**(got.metadata.labels or {}), "team": "vision"}
        tc.update_job(got, "pytorch-simple")  # PATCH, application/merge-patch+json
        patched_labels = dict(tc.get_job("pytorch-simple").metadata.labels or {})
        listed = [j.metadata.name for j in tc.list_jobs()]
        pod_names = tc.get_job_pod_names("pytorch-simple", is_master=True)
        logs, _ = tc.get_job_logs("pytorch-simple")
        tc.delete_job("pytorch-simple")
        return got.metadata.name, listed, pod_names, logs, patched_labels

    name, listed, pod_names, logs, patched_labels = await asyncio.to_thread(work)
    assert name == "pytorch-simple" and listed == ["pytorch-simple"]
    assert patched_labels["team"] == "vision"
    assert pod_names == ["pytorch-simple-master-0"]
    assert logs == {"pytorch-simple-master-0": "epoch 1\n"}
    status, _, _ = await raw.get(
        "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs/pytorch-simple"
    )
    assert status == 404
