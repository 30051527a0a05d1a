"""Per-kind pod decoration: exact env lists and TF_CONFIG strings (reference 1.2-1.6)."""

from __future__ import annotations

import pytest
from jobkit import make_job

from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.common.decision import SpecError
from kubetrain.reconcilers.common.pods import build_pod
from kubetrain.reconcilers.kinds import ADAPTERS
from kubetrain.reconcilers.kinds.base import DomainOptions
from kubetrain.reconcilers.kinds.pytorch import hpa_for
from kubetrain.reconcilers.kinds.tensorflow import tf_config


def pod_for(job: dict, rtype: str, index: int, options: DomainOptions | None = None) -> dict:
    adapter = ADAPTERS[job["kind"]]
    pod, _ = build_pod(
        adapter, default_job(adapter.kind, job), rtype, index, options=options or DomainOptions()
    )
    return pod


def env_of(pod: dict, i: int = 0) -> list[tuple[str, str]]:
    return [
        (e["name"], e.get("value", "<from>")) for e in pod["spec"]["containers"][i].get("env", [])
    ]


def test_tf_config_dense_is_byte_identical() -> None:
    job = make_job("TFJob", {"Worker": 2, "PS": 1, "Chief": 1})
    pod = pod_for(job, "Worker", 1)
    assert env_of(pod) == [
        (
            "TF_CONFIG",
            '{"cluster":{"chief":["j-chief-0.ns.svc:2222"],"ps":["j-ps-0.ns.svc:2222"],'
            '"worker":["j-worker-0.ns.svc:2222","j-worker-1.ns.svc:2222"]},'
            '"task":{"type":"worker","index":1},"environment":"cloud"}',
        )
    ]
    assert pod["metadata"]["labels"].get("training.kubeflow.org/job-role") is None
    chief = pod_for(job, "Chief", 0)
    assert chief["metadata"]["labels"]["training.kubeflow.org/job-role"] == "master"


def test_tf_config_custom_domain_port_and_only_tensorflow_container() -> None:
    job = make_job("TFJob", {"Worker": 2})
    spec = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    spec["containers"][0]["ports"] = [{"name": "tfjob-port", "containerPort": 3333}]
    spec["containers"].append({"name": "sidecar", "image": "s"})
    pod = pod_for(job, "Worker", 0, DomainOptions(cluster_domain="cluster.local"))
    assert env_of(pod)[0][1].startswith(
        '{"cluster":{"worker":["j-worker-0.ns.svc.cluster.local:3333",'
    )
    assert env_of(pod, 1) == []
    assert pod["metadata"]["labels"]["training.kubeflow.org/job-role"] == "master"


def test_tf_not_distributed_gets_no_tf_config() -> None:
    assert env_of(pod_for(make_job("TFJob", {"Worker": None}), "Worker", 0)) == []


def test_tf_config_sparse() -> None:
    job = default_job(
        ADAPTERS["TFJob"].kind,
        make_job("TFJob", {"Worker": 2, "PS": 2, "Chief": 1}, enableDynamicWorker=True),
    )
    assert tf_config(job, "Worker", 1) == (
        '{"cluster":{"worker":{"1":"j-worker-1.ns.svc:2222"},'
        '"ps":["j-ps-0.ns.svc:2222","j-ps-1.ns.svc:2222"]},"task":{"type":"worker","index":1}}'
    )
    assert tf_config(job, "PS", 1) == (
        '{"cluster":{"worker":{},"ps":["j-ps-1.ns.svc:2222"]},"task":{"type":"ps","index":1}}'
    )
    assert tf_config(job, "Chief", 0) == (
        '{"cluster":{"worker":{},"ps":[]},"task":{"type":"chief","index":0}}'
    )


def test_pytorch_master_env_and_init_container() -> None:
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 2}, nprocPerNode="2")
    worker = pod_for(job, "Worker", 1, DomainOptions(pytorch_init_max_tries=7))
    assert env_of(worker) == [
        ("PYTHONUNBUFFERED", "1"),
        ("MASTER_PORT", "23456"),
        ("PET_MASTER_PORT", "23456"),
        ("MASTER_ADDR", "j-master-0"),
        ("PET_MASTER_ADDR", "j-master-0"),
        ("WORLD_SIZE", "6"),
        ("RANK", "2"),
        ("PET_NODE_RANK", "2"),
        ("PET_NPROC_PER_NODE", "2"),
        ("PET_NNODES", "3"),
    ]
    assert worker["spec"]["initContainers"] == [
        {
            "name": "init-pytorch",
            "image": "alpine:3.10",
            "imagePullPolicy": "IfNotPresent",
            "resources": {
                "limits": {"cpu": "100m", "memory": "20Mi"},
                "requests": {"cpu": "50m", "memory": "10Mi"},
            },
            "command": [
                "sh",
                "-c",
                "err=1;for i in $(seq 7); do if nslookup j-master-0; then err=0 && break; "
                "fi;echo waiting for master; sleep 2; done; exit $err",
            ],
        }
    ]
    master = pod_for(job, "Master", 0)
    assert ("RANK", "0") in env_of(master) and "initContainers" not in master["spec"]
    assert master["spec"]["restartPolicy"] == "OnFailure"


def test_pytorch_elastic_env_every_container() -> None:
    job = make_job(
        "PyTorchJob",
        {"Worker": 2},
        elasticPolicy={
            "minReplicas": 1,
            "maxReplicas": 3,
            "rdzvBackend": "etcd",
            "rdzvHost": "etcd-svc",
            "rdzvPort": 2379,
            "maxRestarts": 5,
            "rdzvId": "abc",
            "rdzvConf": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}],
            "standalone": True,
        },
    )
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"].append(
        {"name": "side", "image": "s"}
    )
    pod = pod_for(job, "Worker", 0)
    expected = [
        ("PYTHONUNBUFFERED", "1"),
        ("PET_NPROC_PER_NODE", "auto"),
        ("PET_RDZV_ENDPOINT", "etcd-svc:2379"),
        ("PET_RDZV_BACKEND", "etcd"),
        ("PET_NNODES", "1:3"),
        ("PET_MAX_RESTARTS", "5"),
        ("PET_RDZV_ID", "abc"),
        ("PET_RDZV_CONF", "a=1,b=2"),
        ("PET_STANDALONE", ""),
    ]
    assert env_of(pod, 0) == expected and env_of(pod, 1) == expected
    assert pod["metadata"]["labels"]["training.kubeflow.org/job-role"] == "master"


def test_pytorch_elastic_defaults_endpoint_from_worker_port() -> None:
    pod = pod_for(make_job("PyTorchJob", {"Worker": 2}, elasticPolicy={}), "Worker", 1)
    assert env_of(pod)[2:5] == [
        ("PET_RDZV_ENDPOINT", "j-worker-0:23456"),
        ("PET_RDZV_BACKEND", "c10d"),
        ("PET_NNODES", "2:2"),
    ]


def test_pytorch_hpa() -> None:
    assert hpa_for(make_job("PyTorchJob", {"Worker": 1})) is None
    metrics = [{"type": "Resource", "resource": {"name": "cpu"}}]
    job = default_job(
        ADAPTERS["PyTorchJob"].kind,
        make_job("PyTorchJob", {"Worker": 2}, elasticPolicy={"maxReplicas": 4, "metrics": metrics}),
    )
    hpa = hpa_for(job)
    assert hpa is not None
    assert hpa["metadata"]["name"] == "j" and hpa["metadata"]["ownerReferences"][0]["controller"]
    assert hpa["spec"] == {
        "scaleTargetRef": {"kind": "PyTorchJob", "name": "j", "apiVersion": "kubeflow.org/v1"},
        "minReplicas": 4,
        "maxReplicas": 4,
        "metrics": metrics,
    }
    job["spec"]["runPolicy"]["suspend"] = True
    assert hpa_for(job) is None


def test_xgboost_env() -> None:
    job = make_job("XGBoostJob", {"Master": 1, "Worker": 2})
    assert env_of(pod_for(job, "Worker", 1)) == [
        ("MASTER_PORT", "9999"),
        ("MASTER_ADDR", "j-master-0"),
        ("WORLD_SIZE", "3"),
        ("RANK", "2"),
        ("PYTHONUNBUFFERED", "1"),
        ("WORKER_PORT", "9999"),
        ("WORKER_ADDRS", "j-worker-0,j-worker-1"),
    ]
    solo = pod_for(make_job("XGBoostJob", {"Master": 1}), "Master", 0)
    assert [n for n, _ in env_of(solo)] == [
        "MASTER_PORT",
        "MASTER_ADDR",
        "WORLD_SIZE",
        "RANK",
        "PYTHONUNBUFFERED",
    ]
    assert solo["metadata"]["labels"]["training.kubeflow.org/job-role"] == "master"


def test_paddle_env_collective_and_ps() -> None:
    job = make_job("PaddleJob", {"Worker": 2})
    rdzv = pod_for(job, "Worker", 0)
    assert env_of(rdzv) == [
        ("PYTHONUNBUFFERED", "1"),
        ("PADDLE_JOB_ID", "j"),
        ("PADDLE_NNODES", "2"),
        ("POD_IP_DUMMY", "<from>"),
        ("PADDLE_MASTER", "$(POD_IP_DUMMY):36543"),
    ]
    assert rdzv["spec"]["containers"][0]["env"][3]["valueFrom"] == {
        "fieldRef": {"fieldPath": "status.podIP"}
    }
    assert env_of(pod_for(job, "Worker", 1))[-1] == ("PADDLE_MASTER", "j-worker-0:36543")
    ps = make_job("PaddleJob", {"Master": 1, "Worker": 1})
    assert env_of(pod_for(ps, "Worker", 0))[-2:] == [
        ("PADDLE_MASTER", "j-master-0:36543"),
        ("PADDLE_TRAINER_NUM", "1"),
    ]
    assert env_of(pod_for(ps, "Master", 0))[-1] == ("PADDLE_SERVER_NUM", "1")


def test_jax_env_and_missing_port() -> None:
    job = make_job("JAXJob", {"Worker": 3})
    pod = pod_for(job, "Worker", 2)
    assert env_of(pod) == [
        ("PYTHONUNBUFFERED", "1"),
        ("COORDINATOR_PORT", "6666"),
        ("COORDINATOR_ADDRESS", "j-worker-0"),
        ("NUM_PROCESSES", "3"),
        ("PROCESS_ID", "2"),
    ]
    assert "training.kubeflow.org/job-role" not in pod["metadata"]["labels"]
    assert (
        pod_for(job, "Worker", 0)["metadata"]["labels"]["training.kubeflow.org/job-role"]
        == "master"
    )
    bad = default_job(ADAPTERS["JAXJob"].kind, job)
    bad["spec"]["jaxReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["ports"] = []
    with pytest.raises(SpecError, match="default container port is not exposed"):
        build_pod(ADAPTERS["JAXJob"], bad, "Worker", 0, options=DomainOptions())
