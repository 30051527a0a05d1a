"""Success/failure rules shared by PyTorchJob, PaddleJob and JAXJob (reference 1.3, 1.5, 1.6).

With a Master type: Running while the master runs, Succeeded when it succeeded. Without: Succeeded
when every worker succeeded (or, PyTorch elastic, any worker did), Running while any worker runs.
Failure for a type with ``failed > 0 and replicas > succeeded + running``: restartPolicy other than
Never -> Restarting, Never -> Failed.
"""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common.decision import StatusWork
from kubetrain.reconcilers.common.jobs import name_of, namespace_of


def master_worker_status(
    work: StatusWork,
    job: Obj,
    specs: dict[str, Obj],
    *,
    rtypes: tuple[str, ...],
    any_worker_success: bool,
    short_running_message: bool,
) -> None:
    """Apply the rules to ``work`` for the replica types in ``rtypes`` order."""
    kind = work.kind.kind
    name, ns = name_of(job), namespace_of(job)
    has_master = "Master" in specs
    for rtype in [t for t in rtypes if t in specs]:
        rs = work.replica_status(rtype)
        succeeded, running, failed = (
            rs.get("succeeded", 0),
            rs.get("active", 0),
            rs.get("failed", 0),
        )
        replicas = int(specs[rtype]["replicas"])
        expected = replicas - succeeded
        if has_master:
            if rtype == "Master":
                if running > 0:
                    msg = (
                        f"{kind} {name} is running."
                        if short_running_message
                        else f"{kind} {ns}/{name} is running."
                    )
                    work.running(msg)
                if expected == 0:
                    work.succeed(f"{kind} {ns}/{name} successfully completed.")
                    return
        elif rtype == "Worker":
            if expected == 0 or (any_worker_success and succeeded > 0):
                work.succeed(f"{kind} {ns}/{name} successfully completed.")
                return
            if running > 0:
                work.running(f"{kind} {ns}/{name} is running.")
        if failed > 0 and replicas > succeeded + running:
            if specs[rtype].get("restartPolicy") != "Never":
                work.restart(
                    f"{kind} {name} is restarting because {failed} {rtype} replica(s) failed."
                )
            else:
                work.fail(f"{kind} {name} is failed because {failed} {rtype} replica(s) failed.")
