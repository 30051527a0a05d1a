"""The per-kind seam of the pure job domain: ``KindAdapter`` says only what differs between kinds,
``DomainOptions`` what the operator's flags and environment give the domain.

The common machinery (``common/``) builds pods and services, counts replicas, runs the status
state machine and the run policy; it asks the adapter for names, the master role, the pod
decoration (env, init containers, volumes), the success/failure rules and any extra objects
(MPI ConfigMap and RBAC, PyTorch HPA). The protocol lives here, beside its callers, so ``common/``
never imports ``kinds/``; the adapters (``kinds/``) implement it and are stateless singletons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.common.decision import StatusWork
from kubetrain.reconcilers.gang.flavour import GangScheduler

__all__ = ["DomainOptions", "KindAdapter"]


@dataclass(frozen=True, slots=True)
class DomainOptions:
    """Operator-wide settings the pure domain needs. Defaults are the reference's flag defaults.

    ``cluster_domain``: the reference's ``CUSTOM_CLUSTER_DOMAIN`` env of the operator process,
    appended to TF_CONFIG host names (``<pod>.<ns>.svc.<domain>``); "" = none. The controller
    reads the environment once at start-up and passes it here.
    ``pytorch_init_image`` / ``pytorch_init_max_tries``: ``--pytorch-init-container-image`` and
    ``--pytorch-init-container-max-tries`` (the worker pods' wait-for-master init container).
    ``mpi_kubectl_delivery_image``: ``--mpi-kubectl-delivery-image`` (v1.9.4 default).
    ``gang``: ``--gang-scheduler-name`` read once (``gang.gang_scheduler_from_flag``); None: off.
    """

    cluster_domain: str = ""
    pytorch_init_image: str = "alpine:3.10"
    pytorch_init_max_tries: int = 100
    mpi_kubectl_delivery_image: str = "ghcr.io/kubeflow/training-v1/kubectl-delivery:latest"
    gang: GangScheduler | None = None


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
