"""The per-kind seam: ``KindAdapter`` says only what differs between kinds.

The common machinery (``common/``) builds pods and services, counts replicas, runs the status
state machine and the run policy; it asks the adapter for names, the master role, the pod
decoration (env, init containers, volumes), the success/failure rules and any extra objects
(MPI ConfigMap and RBAC, PyTorch HPA). Adapters are stateless singletons; options that come from
the operator's flags or environment arrive as ``DomainOptions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.common.decision import SpecError, StatusWork
from kubetrain.reconcilers.common.jobs import container_port, replica_specs
from kubetrain.reconcilers.common.naming import general_name

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DomainOptions:
    """Operator-wide settings the pure domain needs. Defaults are the reference's flag defaults.

    ``cluster_domain``: the reference's ``CUSTOM_CLUSTER_DOMAIN`` env of the operator process,
    appended to TF_CONFIG host names (``<pod>.<ns>.svc.<domain>``); "" = none. The controller
    reads the environment once at start-up and passes it here.
    ``pytorch_init_image`` / ``pytorch_init_max_tries``: ``--pytorch-init-container-image`` and
    ``--pytorch-init-container-max-tries`` (the worker pods' wait-for-master init container).
    ``mpi_kubectl_delivery_image``: ``--mpi-kubectl-delivery-image`` (v1.9.4 default).
    """

    cluster_domain: str = ""
    pytorch_init_image: str = "alpine:3.10"
    pytorch_init_max_tries: int = 100
    mpi_kubectl_delivery_image: str = "ghcr.io/kubeflow/training-v1/kubectl-delivery:latest"


class KindAdapter(Protocol):
    """What one kind adds to the common job machinery. All methods are pure.

    ``job`` is always the *defaulted* job (``api.defaults.default_job``); ``rtype`` the canonical
    replica type (``Worker``); ``pod`` a freshly built pod dict owned by the caller (safe to
    mutate). ``decorate_pod`` raises ``SpecError`` (message names the field and the fix) when
    the spec cannot be turned into pods.
    """

    kind: JobKind
    needs_services: bool
    restarts_failed_pods: bool

    def pod_name(self, job_name: str, rtype: str, index: int) -> str: ...

    def is_master_role(self, job: Obj, rtype: str, index: int) -> bool: ...

    def decorate_pod(
        self, job: Obj, rtype: str, index: int, pod: Obj, options: DomainOptions
    ) -> None: ...

    def update_status(self, work: StatusWork, job: Obj, pods: list[Obj]) -> None: ...

    def extra_objects(self, job: Obj, pods: list[Obj], options: DomainOptions) -> list[Obj]: ...

    def extra_objects_to_delete(self, job: Obj) -> list[tuple[str, str, str]]: ...


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
