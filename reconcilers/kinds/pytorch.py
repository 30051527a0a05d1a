"""PyTorchJob: torchrun/elastic env, the wait-for-master init container, the HPA (reference 1.3)."""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import API_VERSION, PYTORCHJOB
from kubetrain.reconcilers.common.decision import SpecError, StatusWork
from kubetrain.reconcilers.common.jobs import (
    container_port,
    is_suspended_spec,
    name_of,
    namespace_of,
)
from kubetrain.reconcilers.common.naming import general_name, owner_reference
from kubetrain.reconcilers.kinds.base import BaseAdapter, DomainOptions, append_env, env
from kubetrain.reconcilers.kinds.common_rules import master_worker_status

INIT_CONTAINER_NAME = "init-pytorch"


def nproc_per_node_int(job: Obj) -> int:
    """``int(spec.nprocPerNode)`` when it parses (``"4"``), else 1 (``auto``, ``gpu``, unset)."""
    raw = job.get("spec", {}).get("nprocPerNode")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 1


def pod_env(job: Obj, rtype: str, index: int) -> list[Obj]:
    """The variables appended to every container, in the reference's order. Raises SpecError."""
    spec = job.get("spec", {})
    specs: dict[str, Obj] = spec.get("pytorchReplicaSpecs") or {}
    name = name_of(job)
    total = sum(int(s["replicas"]) for s in specs.values())
    out = [env("PYTHONUNBUFFERED", "1")]
    if "Master" in specs:
        port = container_port(specs["Master"], "pytorch", "pytorchjob-port")
        if port is None:
            raise SpecError(
                "spec.pytorchReplicaSpecs[Master]: container 'pytorch' has no port named "
                "'pytorchjob-port'; add it (MASTER_PORT is read from it)"
            )
        addr = general_name(name, "master", 0)
        rank = index + 1 if rtype == "Worker" else index
        out += [
            env("MASTER_PORT", str(port)),
            env("PET_MASTER_PORT", str(port)),
            env("MASTER_ADDR", addr),
            env("PET_MASTER_ADDR", addr),
            env("WORLD_SIZE", str(total * nproc_per_node_int(job))),
            env("RANK", str(rank)),
            env("PET_NODE_RANK", str(rank)),
        ]
    if spec.get("nprocPerNode") is not None:
        out.append(env("PET_NPROC_PER_NODE", str(spec["nprocPerNode"])))
    elastic = spec.get("elasticPolicy")
    if not isinstance(elastic, dict):
        out.append(env("PET_NNODES", str(total)))
        return out
    out += _elastic_env(job, elastic, specs)
    return out


def _elastic_env(job: Obj, elastic: Obj, specs: dict[str, Obj]) -> list[Obj]:
    host = elastic.get("rdzvHost") or general_name(name_of(job), "worker", 0)
    port = elastic.get("rdzvPort")
    if port is None:
        port = container_port(specs.get("Worker"), "pytorch", "pytorchjob-port")
        if port is None:
            raise SpecError(
                "spec.pytorchReplicaSpecs[Worker]: container 'pytorch' has no port named "
                "'pytorchjob-port'; add it or set spec.elasticPolicy.rdzvPort"
            )
    out = [
        env("PET_RDZV_ENDPOINT", f"{host}:{port}"),
        env("PET_RDZV_BACKEND", elastic.get("rdzvBackend") or "c10d"),
    ]
    lo, hi = elastic.get("minReplicas"), elastic.get("maxReplicas")
    if lo is None and hi is None:
        out.append(env("PET_NNODES", str((specs.get("Worker") or {}).get("replicas"))))
    else:
        out.append(env("PET_NNODES", f"{lo}:{hi}"))
    if elastic.get("maxRestarts") is not None:
        out.append(env("PET_MAX_RESTARTS", str(elastic["maxRestarts"])))
    if elastic.get("nProcPerNode") is not None:
        out.append(env("PET_NPROC_PER_NODE", str(elastic["nProcPerNode"])))
    if elastic.get("rdzvId") is not None:
        out.append(env("PET_RDZV_ID", str(elastic["rdzvId"])))
    conf = elastic.get("rdzvConf")
    if conf:
        out.append(env("PET_RDZV_CONF", ",".join(f"{c['key']}={c['value']}" for c in conf)))
    if elastic.get("standalone"):
        out.append(env("PET_STANDALONE", ""))
    return out


def init_container(job: Obj, options: DomainOptions) -> Obj:
    """The ``init-pytorch`` container: waits until the master's service name resolves."""
    master = general_name(name_of(job), "master", 0)
    script = (
        f"err=1;for i in $(seq {options.pytorch_init_max_tries}); do if nslookup {master}; "
        f"then err=0 && break; fi;echo waiting for master; sleep 2; done; exit $err"
    )
    return {
        "name": INIT_CONTAINER_NAME,
        "image": options.pytorch_init_image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {
            "limits": {"cpu": "100m", "memory": "20Mi"},
            "requests": {"cpu": "50m", "memory": "10Mi"},
        },
        "command": ["sh", "-c", script],
    }


def hpa_for(job: Obj) -> Obj | None:
    """The autoscaling/v2 HPA of an elastic job with ``elasticPolicy.metrics``; None otherwise
    (and while suspended). ``job`` must be defaulted (min/max set)."""
    elastic = job.get("spec", {}).get("elasticPolicy")
    if not isinstance(elastic, dict) or not elastic.get("metrics"):
        return None
    if is_suspended_spec(job, PYTORCHJOB):
        return None
    name = name_of(job)
    spec: Obj = {
        "scaleTargetRef": {"kind": PYTORCHJOB.kind, "name": name, "apiVersion": API_VERSION},
        "maxReplicas": elastic.get("maxReplicas"),
        "metrics": elastic["metrics"],
    }
    if elastic.get("minReplicas") is not None:
        spec["minReplicas"] = elastic["minReplicas"]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": name,
            "namespace": namespace_of(job),
            "ownerReferences": [owner_reference(PYTORCHJOB, job)],
        },
        "spec": spec,
    }


class PyTorchAdapter(BaseAdapter):
    kind = PYTORCHJOB

    def is_master_role(self, job: Obj, rtype: str, index: int) -> bool:
        if "Master" in self.specs(job):
            return rtype == "Master"
        return rtype == "Worker" and index == 0

    def decorate_pod(
        self, job: Obj, rtype: str, index: int, pod: Obj, options: DomainOptions
    ) -> None:
        append_env(pod, pod_env(job, rtype, index))
        if rtype == "Worker" and "Master" in self.specs(job):
            spec = pod["spec"]
            spec["initContainers"] = [
                *(spec.get("initContainers") or []),
                init_container(job, options),
            ]

    def update_status(self, work: StatusWork, job: Obj, pods: list[Obj]) -> None:
        master_worker_status(
            work,
            job,
            self.specs(job),
            rtypes=("Master", "Worker"),
            any_worker_success=isinstance(job.get("spec", {}).get("elasticPolicy"), dict),
            short_running_message=True,
        )

    def extra_objects(self, job: Obj, pods: list[Obj], options: DomainOptions) -> list[Obj]:
        hpa = hpa_for(job)
        return [] if hpa is None else [hpa]

    def extra_objects_to_delete(self, job: Obj) -> list[tuple[str, str, str]]:
        elastic = job.get("spec", {}).get("elasticPolicy")
        if isinstance(elastic, dict) and elastic.get("metrics"):
            return [("autoscaling/v2", "HorizontalPodAutoscaler", name_of(job))]
        return []


PYTORCH = PyTorchAdapter()
