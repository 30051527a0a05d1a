"""Gang scheduling (``--gang-scheduler-name``, reference section 3), as pure functions.

A distributed job's pods are useful only together; a gang scheduler (Volcano, or
scheduler-plugins' coscheduling) places a PodGroup's pods all or none. This package decides, per
job, the PodGroup to have, how each pod joins it, and whether pod creation waits for Volcano to
admit the group; ``common/status.py`` calls it and the job controller applies the result. It
imports only the leaf modules of ``common/`` (``jobs``, ``naming``, ``conditions``,
``decision``), never ``common/status.py`` or ``kind_adapter.py``, which import it. One concept
per file:

- ``flavour.py``: the flag's value -> ``GangScheduler`` (Volcano or scheduler-plugins);
- ``view.py``: ``GangView``, what the cluster shows (the cached PodGroup, PriorityClass values);
- ``quantity.py``: exact sums of resource quantities;
- ``podgroup.py``: minMember, minResources, the queue and the PodGroup of each flavour;
- ``decorate.py``: a pod's schedulerName and group annotations or label;
- ``admission.py``: Volcano's wait for the PodGroup's phase, and how the job shows it.
"""

from .admission import podgroup_phase, pods_wait_for_podgroup, show_podgroup_wait
from .decorate import decorate_pod_for_gang
from .flavour import VOLCANO_SCHEDULER, GangScheduler, gang_scheduler_from_flag
from .podgroup import desired_podgroup, min_member, min_resources, podgroup_reference
from .view import NO_VIEW, GangView, PriorityLookup

__all__ = [
    "NO_VIEW",
    "VOLCANO_SCHEDULER",
    "GangScheduler",
    "GangView",
    "PriorityLookup",
    "decorate_pod_for_gang",
    "desired_podgroup",
    "gang_scheduler_from_flag",
    "min_member",
    "min_resources",
    "podgroup_phase",
    "podgroup_reference",
    "pods_wait_for_podgroup",
    "show_podgroup_wait",
]
