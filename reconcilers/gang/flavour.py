"""Which gang scheduler ``--gang-scheduler-name`` names, and so which PodGroup API kubetrain writes.

The reference decides it from the flag's value alone (section 3): ``volcano`` (any case) is
Volcano and its ``scheduling.volcano.sh/v1beta1`` PodGroup; any other non-empty name is a
scheduler of kubernetes-sigs/scheduler-plugins (coscheduling) and its
``scheduling.x-k8s.io/v1alpha1`` PodGroup, the name being the pods' ``schedulerName``; empty is
off. Everything else in this package takes the resulting ``GangScheduler`` and never re-reads the
flag, so the two flavours differ in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetrain.informers.resource import (
    PODGROUPS_SCHEDULER_PLUGINS,
    PODGROUPS_VOLCANO,
    ResourceRef,
)

__all__ = ["VOLCANO_SCHEDULER", "GangScheduler", "gang_scheduler_from_flag"]

VOLCANO_SCHEDULER = "volcano"
"""The flag value (case-insensitive) that selects Volcano, and Volcano's ``schedulerName``."""


@dataclass(frozen=True, slots=True)
class GangScheduler:
    """Gang scheduling as the operator was started with: the pods' ``schedulerName`` and
    whether that scheduler is Volcano (else scheduler-plugins)."""

    scheduler_name: str
    volcano: bool

    @property
    def podgroup_resource(self) -> ResourceRef:
        """The PodGroup resource of this flavour."""
        return PODGROUPS_VOLCANO if self.volcano else PODGROUPS_SCHEDULER_PLUGINS

    @property
    def crd_name(self) -> str:
        """The name of the CustomResourceDefinition that serves this flavour's PodGroups."""
        return self.podgroup_resource.group_resource

    @property
    def installer_hint(self) -> str:
        """Where a user gets that CRD."""
        if self.volcano:
            return "install Volcano (https://volcano.sh/en/docs/installation/)"
        return (
            "install scheduler-plugins' coscheduling PodGroup CRD "
            "(https://github.com/kubernetes-sigs/scheduler-plugins, manifests/coscheduling)"
        )


def gang_scheduler_from_flag(name: str) -> GangScheduler | None:
    """The gang scheduler ``--gang-scheduler-name=name`` selects; None when ``name`` is empty
    (gang scheduling off). Surrounding blanks are ignored; a scheduler-plugins name keeps its
    spelling (it must match the scheduler's profile name)."""
    name = name.strip()
    if not name:
        return None
    if name.lower() == VOLCANO_SCHEDULER:
        return GangScheduler(scheduler_name=VOLCANO_SCHEDULER, volcano=True)
    return GangScheduler(scheduler_name=name, volcano=False)
