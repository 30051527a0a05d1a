"""``BaseAdapter``: the defaults most kinds share, and helpers for the adapters of ``kinds/``.

Each kind's adapter implements ``common/kind_adapter.py``'s ``KindAdapter`` and overrides only what
differs from these defaults; options from the operator's flags or environment arrive as
``DomainOptions``. Both are re-exported here, so an adapter module imports one toolkit.
"""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.common.decision import SpecError, StatusWork
from kubetrain.reconcilers.common.jobs import container_port, replica_specs
from kubetrain.reconcilers.common.kind_adapter import DomainOptions, KindAdapter
from kubetrain.reconcilers.common.naming import general_name

__all__ = ["BaseAdapter", "DomainOptions", "KindAdapter", "append_env", "env"]


class BaseAdapter:
    """Defaults shared by most kinds; concrete adapters override what differs."""

    kind: JobKind
    needs_services = True
    restarts_failed_pods = True

    def pod_name(self, job_name: str, rtype: str, index: int) -> str:
        return general_name(job_name, rtype, index)

    def is_master_role(self, job: Obj, rtype: str, index: int) -> bool:
        return False

    def pod_env(self, job: Obj, rtype: str, index: int) -> list[Obj]:
        """The env vars every container of the pod gets (none by default)."""
        return []

    def decorate_pod(
        self, job: Obj, rtype: str, index: int, pod: Obj, options: DomainOptions
    ) -> None:
        """Adds ``pod_env`` to every container; kinds that do more override this."""
        append_env(pod, self.pod_env(job, rtype, index))

    def update_status(self, work: StatusWork, job: Obj, pods: list[Obj]) -> None:
        return None

    def extra_objects(self, job: Obj, pods: list[Obj], options: DomainOptions) -> list[Obj]:
        return []

    def extra_objects_to_delete(self, job: Obj) -> list[tuple[str, str, str]]:
        return []

    # helpers for subclasses

    def specs(self, job: Obj) -> dict[str, Obj]:
        return replica_specs(job, self.kind)

    def required_port(self, job: Obj, rtype: str) -> int:
        """The default port of ``rtype``'s default container; SpecError when absent."""
        port = container_port(
            self.specs(job).get(rtype), self.kind.default_container, self.kind.default_port_name
        )
        if port is None:
            raise SpecError(
                f"spec.{self.kind.replica_field}[{rtype}]: container "
                f"{self.kind.default_container!r} has no port named "
                f"{self.kind.default_port_name!r}; add it (the default port is "
                f"{self.kind.default_port})"
            )
        return port


def env(name: str, value: str) -> Obj:
    return {"name": name, "value": value}


def append_env(pod: Obj, variables: list[Obj], *, container: str | None = None) -> None:
    """Append ``variables`` to every container of ``pod`` (or only the one named ``container``),
    after the user's own variables, as the reference does."""
    for c in pod["spec"].get("containers") or []:
        if container is not None and c.get("name") != container:
            continue
        c["env"] = [*(c.get("env") or []), *(dict(v) for v in variables)]
