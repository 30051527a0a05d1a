"""PaddleJob: collective or PS-mode env (reference 1.5). ``elasticPolicy`` is defaulted but has
no effect, as in the reference (quirk 14 kept: no env, no HPA)."""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import PADDLEJOB
from kubetrain.reconcilers.common.decision import StatusWork
from kubetrain.reconcilers.common.jobs import container_port, name_of
from kubetrain.reconcilers.common.naming import general_name
from kubetrain.reconcilers.kinds.base import BaseAdapter, env
from kubetrain.reconcilers.kinds.common_rules import master_worker_status


class PaddleAdapter(BaseAdapter):
    kind = PADDLEJOB

    def is_master_role(self, job: Obj, rtype: str, index: int) -> bool:
        return rtype == "Master"

    def pod_env(self, job: Obj, rtype: str, index: int) -> list[Obj]:
        """PYTHONUNBUFFERED, PADDLE_JOB_ID, PADDLE_NNODES, [POD_IP_DUMMY], PADDLE_MASTER,
        [PADDLE_SERVER_NUM | PADDLE_TRAINER_NUM in PS mode]."""
        specs = self.specs(job)
        name = name_of(job)
        ps_mode = "Master" in specs
        rdzv_type = "Master" if ps_mode else "Worker"
        port = container_port(specs.get(rdzv_type), "paddle", "master") or PADDLEJOB.default_port
        rdzv_pod = general_name(name, rdzv_type, 0)
        out = [
            env("PYTHONUNBUFFERED", "1"),
            env("PADDLE_JOB_ID", name),
            env("PADDLE_NNODES", str(sum(int(s["replicas"]) for s in specs.values()))),
        ]
        if rtype == rdzv_type and index == 0:
            out.append(
                {"name": "POD_IP_DUMMY", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
            )
            out.append(env("PADDLE_MASTER", f"$(POD_IP_DUMMY):{port}"))
        else:
            out.append(env("PADDLE_MASTER", f"{rdzv_pod}:{port}"))
        if ps_mode:
            if rtype == "Master":
                out.append(env("PADDLE_SERVER_NUM", "1"))
            elif rtype == "Worker":
                out.append(env("PADDLE_TRAINER_NUM", "1"))
        return out

    def update_status(self, work: StatusWork, job: Obj, pods: list[Obj]) -> None:
        master_worker_status(
            work,
            job,
            self.specs(job),
            rtypes=("Master", "Worker"),
            any_worker_success=False,
            short_running_message=False,
        )


PADDLE = PaddleAdapter()
