"""XGBoostJob: rabit/LightGBM env and the master-decides rules (reference 1.4)."""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import XGBOOSTJOB
from kubetrain.reconcilers.common.decision import StatusWork
from kubetrain.reconcilers.common.jobs import name_of
from kubetrain.reconcilers.common.naming import general_name
from kubetrain.reconcilers.kinds.base import BaseAdapter, env


class XGBoostAdapter(BaseAdapter):
    kind = XGBOOSTJOB

    def is_master_role(self, job: Obj, rtype: str, index: int) -> bool:
        return rtype == "Master"

    def pod_env(self, job: Obj, rtype: str, index: int) -> list[Obj]:
        """MASTER_PORT, MASTER_ADDR, WORLD_SIZE, RANK, PYTHONUNBUFFERED [, WORKER_PORT,
        WORKER_ADDRS]. Raises SpecError when a needed port is missing."""
        specs = self.specs(job)
        name = name_of(job)
        rank = index + int(specs["Master"]["replicas"]) if rtype == "Worker" else index
        total = sum(int(s["replicas"]) for s in specs.values())
        out = [
            env("MASTER_PORT", str(self.required_port(job, "Master"))),
            env("MASTER_ADDR", general_name(name, "master", 0)),
            env("WORLD_SIZE", str(total)),
            env("RANK", str(rank)),
            env("PYTHONUNBUFFERED", "1"),
        ]
        if total > 1:
            addrs = ",".join(general_name(name, "worker", i) for i in range(total - 1))
            out += [
                env("WORKER_PORT", str(self.required_port(job, "Worker"))),
                env("WORKER_ADDRS", addrs),
            ]
        return out

    def update_status(self, work: StatusWork, job: Obj, pods: list[Obj]) -> None:
        """Master running -> Running; master succeeded -> Running re-asserted then Succeeded;
        any failed pod -> Restarting with ExitCode, else Failed."""
        name = name_of(job)
        specs = self.specs(job)
        for rtype in [t for t in self.kind.replica_types if t in specs]:
            rs = work.replica_status(rtype)
            succeeded, running, failed = (
                rs.get("succeeded", 0),
                rs.get("active", 0),
                rs.get("failed", 0),
            )
            if rtype == "Master":
                if running > 0:
                    work.running(f"XGBoostJob {name} is running.")
                if int(specs[rtype]["replicas"]) - succeeded == 0:
                    work.running(f"XGBoostJob {name} is running.")
                    work.succeed(f"XGBoostJob {name} is successfully completed.")
                    return
            if failed > 0:
                if specs[rtype].get("restartPolicy") == "ExitCode":
                    work.restart(
                        f"XGBoostJob {name} is restarting because {failed} {rtype} replica(s) failed."
                    )
                else:
                    work.fail(
                        f"XGBoostJob {name} is failed because {failed} {rtype} replica(s) failed."
                    )


XGBOOST = XGBoostAdapter()
