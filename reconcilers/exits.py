"""``ExitedWithCode`` events once per container termination, not once per reconcile.

The reference records ``ExitedWithCode`` for every pod whose default container is terminated on
*every* reconcile of a running job, so a long job with one finished worker repeats the event (an
API write each time) until it ends. kubetrain records it on the transition instead: the pod
informer's handler sees the old and the new pod, notes a termination when the default container's
``state.terminated`` appears or belongs to a new run (another ``restartCount`` or exit code), and
the job's next reconcile records the noted events. Pods replayed from an initial list are not
noted (their termination happened before this operator started; the operator that saw it recorded
it). The cached finished pod keeps ``state.terminated.exitCode`` and ``restartCount``
(``common/compact.py``), so the pod's compaction on finishing is not a new termination.
"""

from __future__ import annotations

from kubetrain.base.objects import Obj

__all__ = ["ExitLog", "termination_of"]


def termination_of(pod: Obj, container: str) -> tuple[int, int] | None:
    """``(restartCount, exitCode)`` of ``container`` when it is terminated, else None."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or ():
        if cs.get("name") != container:
            continue
        term = (cs.get("state") or {}).get("terminated")
        if not isinstance(term, dict):
            return None
        return int(cs.get("restartCount") or 0), int(term.get("exitCode") or 0)
    return None


class ExitLog:
    """Terminations of ``container`` noted per controlling job UID until taken.

    Invariant: ``_pending[uid]`` holds (pod name, exit code) in the order seen, each termination
    once; entries of a job leave by ``take`` (its reconcile) or ``forget`` (the job is gone).
    """

    __slots__ = ("_container", "_pending")

    def __init__(self, container: str) -> None:
        self._container = container
        self._pending: dict[str, list[tuple[str, int]]] = {}

    def note(self, job_uid: str, old: Obj | None, new: Obj) -> None:
        """Record ``new``'s termination if ``old`` (None: a pod not seen before) did not have it."""
        now = termination_of(new, self._container)
        if now is None or (old is not None and termination_of(old, self._container) == now):
            return
        name = str((new.get("metadata") or {}).get("name") or "")
        self._pending.setdefault(job_uid, []).append((name, now[1]))

    def take(self, job_uid: str) -> list[tuple[str, int]]:
        """The terminations noted for the job since the last ``take``, oldest first."""
        return self._pending.pop(job_uid, [])

    def forget(self, job_uid: str) -> None:
        self._pending.pop(job_uid, None)

    def __len__(self) -> int:
        return sum(len(v) for v in self._pending.values())
