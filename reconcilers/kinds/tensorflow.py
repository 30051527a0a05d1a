"""TFJob: TF_CONFIG, the master role and the success/failure rules (reference 1.2).

TF_CONFIG is byte-identical to the reference's Go ``json.Marshal`` output: struct fields in
declaration order (``cluster``, ``task``, ``environment``), map keys sorted, compact separators.
"""

from __future__ import annotations

import json
from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import TFJOB
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.decision import StatusWork
from kubetrain.reconcilers.common.jobs import (
    container_port,
    name_of,
    namespace_of,
    replicas_of,
)
from kubetrain.reconcilers.common.naming import general_name
from kubetrain.reconcilers.common.pods import default_container_exit_code, replica_index
from kubetrain.reconcilers.common.replica_status import pods_of_type
from kubetrain.reconcilers.kinds.base import BaseAdapter, DomainOptions, env

STATUS_ORDER = ("Chief", "Evaluator", "Master", "PS", "Worker")
SUCCESS_POLICY_ALL_WORKERS = "AllWorkers"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def is_distributed(job: Obj) -> bool:
    """False when the replicas of the known types sum to exactly 1 (nil counts as 1)."""
    specs = job.get("spec", {}).get("tfReplicaSpecs") or {}
    return sum(replicas_of(specs[t]) for t in STATUS_ORDER if specs.get(t) is not None) != 1


def cluster_spec(job: Obj, *, cluster_domain: str = "") -> dict[str, list[str]]:
    """``{lower(rtype): ["<job>-<rt>-<i>.<ns>.svc[.<domain>]:<port>", ...]}``, keys sorted."""
    specs: dict[str, Obj] = job.get("spec", {}).get("tfReplicaSpecs") or {}
    name, ns = name_of(job), namespace_of(job)
    suffix = f".{cluster_domain}" if cluster_domain else ""
    out: dict[str, list[str]] = {}
    for rtype in sorted(specs, key=str.lower):
        rt = rtype.lower()
        port = container_port(specs[rtype], TFJOB.default_container, TFJOB.default_port_name)
        port = TFJOB.default_port if port is None else port
        out[rt] = [
            f"{general_name(name, rt, i)}.{ns}.svc{suffix}:{port}"
            for i in range(replicas_of(specs[rtype]))
        ]
    return dict(sorted(out.items()))


def tf_config(job: Obj, rtype: str, index: int, *, cluster_domain: str = "") -> str:
    """The TF_CONFIG value for one pod (dense format, or sparse with enableDynamicWorker)."""
    cluster = cluster_spec(job, cluster_domain=cluster_domain)
    rt = rtype.lower()
    task = {"type": rt, "index": index}
    if not job.get("spec", {}).get("enableDynamicWorker"):
        return _dumps({"cluster": cluster, "task": task, "environment": "cloud"})
    # SparseClusterSpec{Worker map[int32]string `json:"worker"`; PS []string `json:"ps"`}.
    # A worker copies the cluster's ps list, which is nil (JSON null) when there is no PS.
    worker: dict[str, str] = {}
    ps: list[str] | None = []
    if rt == "ps":
        ps = [cluster["ps"][index]]
    elif rt == "worker":
        ps = cluster.get("ps")
        worker[str(index)] = cluster["worker"][index]
    return _dumps({"cluster": {"worker": dict(sorted(worker.items())), "ps": ps}, "task": task})


class TensorFlowAdapter(BaseAdapter):
    kind = TFJOB

    def is_master_role(self, job: Obj, rtype: str, index: int) -> bool:
        specs = self.specs(job)
        if "Chief" in specs or "Master" in specs:
            return rtype in ("Chief", "Master")
        return rtype == "Worker" and index == 0

    def decorate_pod(
        self, job: Obj, rtype: str, index: int, pod: Obj, options: DomainOptions
    ) -> None:
        """TF_CONFIG into the ``tensorflow`` container only, and only for distributed jobs."""
        if not is_distributed(job):
            return
        value = tf_config(job, rtype, index, cluster_domain=options.cluster_domain)
        for c in pod["spec"].get("containers") or []:
            if c.get("name") == TFJOB.default_container:
                c["env"] = [*(c.get("env") or []), env("TF_CONFIG", value)]
                break

    def update_status(self, work: StatusWork, job: Obj, pods: list[Obj]) -> None:
        specs = self.specs(job)
        name, ns = name_of(job), namespace_of(job)
        chief_or_master = "Chief" in specs or "Master" in specs
        for rtype in [t for t in STATUS_ORDER if t in specs]:
            rs = work.replica_status(rtype)
            succeeded, running, failed = (
                rs.get("succeeded", 0),
                rs.get("active", 0),
                rs.get("failed", 0),
            )
            expected = int(specs[rtype]["replicas"]) - succeeded
            if chief_or_master:
                if rtype in ("Chief", "Master"):
                    if running > 0:
                        work.running(f"TFJob {ns}/{name} is running.")
                    if expected == 0:
                        work.succeed(f"TFJob {ns}/{name} successfully completed.")
            elif rtype == "Worker":
                policy = job.get("spec", {}).get("successPolicy") or ""
                if expected == 0 or (
                    self._worker0_completed(pods) and policy != SUCCESS_POLICY_ALL_WORKERS
                ):
                    work.succeed(f"TFJob {ns}/{name} successfully completed.")
                elif running > 0:
                    work.running(f"TFJob {ns}/{name} is running.")
            if failed > 0:
                restarting = cond.get_condition(
                    work.status.get("conditions") or [], cond.RESTARTING
                )
                if restarting is not None:
                    continue  # restarting: ReconcilePods already recorded it
                if job.get("spec", {}).get("enableDynamicWorker") and rtype == "Worker":
                    continue
                work.fail(
                    f"TFJob {ns}/{name} has failed because {failed} {rtype} replica(s) failed."
                )

    @staticmethod
    def _worker0_completed(pods: list[Obj]) -> bool:
        for pod in pods_of_type(pods, "Worker"):
            if replica_index(pod) == 0 and pod.get("status", {}).get("phase") == "Succeeded":
                return default_container_exit_code(pod, TFJOB.default_container) == 0
        return False


TENSORFLOW = TensorFlowAdapter()

__all__ = ["TENSORFLOW", "cluster_spec", "is_distributed", "tf_config"]
