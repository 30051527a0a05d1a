"""JAXJob: coordinator env; worker 0 is the master role (reference 1.6). Unlike the reference,
``managedBy`` is honoured and validated (quirk 14 fixed in ``common/jobs`` and validation)."""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import JAXJOB
from kubetrain.reconcilers.common.decision import SpecError, StatusWork
from kubetrain.reconcilers.common.jobs import container_port, name_of
from kubetrain.reconcilers.common.naming import general_name
from kubetrain.reconcilers.kinds.base import BaseAdapter, env
from kubetrain.reconcilers.kinds.common_rules import master_worker_status


class JaxAdapter(BaseAdapter):
    kind = JAXJOB

    def is_master_role(self, job: Obj, rtype: str, index: int) -> bool:
        return index == 0

    def pod_env(self, job: Obj, rtype: str, index: int) -> list[Obj]:
        specs = self.specs(job)
        port = container_port(specs.get("Worker"), "jax", "jaxjob-port")
        if port is None:
            raise SpecError(
                "default container port is not exposed: spec.jaxReplicaSpecs[Worker] container "
                "'jax' needs a port named 'jaxjob-port'"
            )
        return [
            env("PYTHONUNBUFFERED", "1"),
            env("COORDINATOR_PORT", str(port)),
            env("COORDINATOR_ADDRESS", general_name(name_of(job), "worker", 0)),
            env("NUM_PROCESSES", str(sum(int(s["replicas"]) for s in specs.values()))),
            env("PROCESS_ID", str(index)),
        ]

    def update_status(self, work: StatusWork, job: Obj, pods: list[Obj]) -> None:
        master_worker_status(
            work,
            job,
            self.specs(job),
            rtypes=("Worker",),
            any_worker_success=False,
            short_running_message=False,
        )


JAX = JaxAdapter()
