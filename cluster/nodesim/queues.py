"""Volcano Queues as the simulated scheduler reads them: whether a queue admits a PodGroup
(state, capability), in what order queues take room that frees (weight, share), and the status a
Queue shows.

Why a book of its own: Volcano's ``proportion`` plugin decides against what each queue holds
(``allocated``: its groups' pods that hold a node) and reserves (``inqueue``: admitted groups'
``minResources`` not placed yet). Summing those over pods at each decision would scan pods, so
each pod that holds capacity is *charged* to its group's queue when it starts holding and
uncharged when it stops, and each group's phase is counted under its queue as it changes.

The rules follow volcano-sh/volcano:

- ``pkg/scheduler/plugins/proportion/proportion.go`` ``JobEnqueueableFn``: a queue whose
  ``status.state`` is not ``Open`` admits nothing (an unset state counts as Open here: the
  simulator is also the queue controller that sets it); a group without ``minResources`` is
  admitted; else ``minResources + allocated + inqueue`` must stay within ``spec.capability`` in
  every resource ``minResources`` names (a resource the capability does not name, or a cpu or
  memory capability <= 0, is not capped). The refusal's wording is the plugin's event:
  ``queue resource quota insufficient: insufficient nvidia.com/gpu``.
- ``OnSessionOpen``: ``deserved`` is the cluster total split by ``spec.weight`` (default 1)
  among the queues that have groups, each capped by its capability and its request (what it
  holds plus what its waiting groups ask), the rest split again until nothing is left or nobody
  wants more; ``share`` is the largest ``allocated / deserved`` over resources. ``QueueOrderFn``:
  higher ``spec.priority`` first, then the lower share.
- ``pkg/controllers/queue/state/open.go``: state Open stays Open; Closed becomes Closing while
  the queue still has PodGroups, Closing becomes Closed once it has none. Counts per PodGroup
  phase as the queue controller kept them (``pending``, ``inqueue``, ``running``,
  ``completed``, ``unknown``; zero omitted) and ``allocated`` as
  ``pkg/scheduler/framework/session.go`` ``updateQueueStatus`` writes it (cpu and memory always,
  every other resource held).

A group naming a queue that does not exist stays Pending: Volcano's scheduler ignores it (its
cache logs "The Queue <q> of Job <ns/g> does not exist, ignore it."); the condition says so in
the words of Volcano's PodGroup admission webhook, ``unable to find queue: ...``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubetrain.informers.resource import ResourceRef

from .podgroup import GroupKey, GroupSpec
from .quantity import PODS, Resources, add_into, milli, subtract_into

__all__ = [
    "QUEUES",
    "QueueBook",
    "QueueSpec",
    "format_quantity",
    "queue_status",
    "refusal",
    "waiting_demand",
]

QUEUES = ResourceRef("scheduling.volcano.sh", "v1beta1", "queues", False, "Queue")
_CPU, _MEMORY = "cpu", "memory"
_PHASE_COUNTS = (
    ("pending", "Pending"),
    ("inqueue", "Inqueue"),
    ("running", "Running"),
    ("completed", "Completed"),
    ("unknown", "Unknown"),
)


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """What a Queue says: ``capability`` (only the resources it caps), ``weight``,
    ``priority``, and its ``status.state`` as observed ("" while unset)."""

    weight: int = 1
    capability: Resources = field(default_factory=dict)
    priority: int = 0
    state: str = ""

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> QueueSpec:
        spec = obj.get("spec") or {}
        capability: Resources = {}
        for name, value in (spec.get("capability") or {}).items():
            try:
                amount = milli(value, field=f"spec.capability[{name}]")
            except ValueError:
                continue  # an unreadable cap caps nothing
            if amount <= 0 and name in (_CPU, _MEMORY):
                continue  # Volcano: a cpu or memory capability <= 0 is unlimited
            capability[str(name)] = amount
        return cls(
            weight=max(1, _int(spec.get("weight"), 1)),
            capability=capability,
            priority=_int(spec.get("priority"), 0),
            state=str((obj.get("status") or {}).get("state") or ""),
        )

    @property
    def open(self) -> bool:
        return self.state in ("", "Open")


def refusal(
    name: str, queue: QueueSpec | None, group: GroupSpec, held: Resources, inqueue: Resources
) -> tuple[str, str] | None:
    """Why queue ``name`` does not admit ``group`` now, as (reason, message); None when it
    does. ``held``: what the queue's groups hold; ``inqueue``: what its admitted groups still
    reserve."""
    if queue is None:
        return (
            "QueueNotFound",
            f'unable to find queue: queues.scheduling.volcano.sh "{name}" not found',
        )
    if not queue.open:
        return (
            "QueueClosed",
            f"can only submit PodGroup to queue with state `Open`, queue `{name}` status is "
            f"`{queue.state}`",
        )
    if group.min_resources is None:
        return None
    short = [
        resource
        for resource, want in sorted(group.min_resources.items())
        if resource in queue.capability
        and want + held.get(resource, 0) + inqueue.get(resource, 0) > queue.capability[resource]
    ]
    if not short:
        return None
    insufficient = ", ".join(f"insufficient {resource}" for resource in short)
    return "NotEnoughResources", f"queue resource quota insufficient: {insufficient}"


@dataclass(slots=True)
class _Queue:
    spec: QueueSpec
    obj: Mapping[str, Any]


class QueueBook:
    """Queues by name, what each holds (charged per pod) and its groups per phase."""

    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}
        # Invariant: ``_held[q]`` is the sum of the requests charged to q in ``_charged``.
        self._held: dict[str, Resources] = {}
        self._charged: dict[str, tuple[str, Resources]] = {}
        # Invariant: ``_phases[q][p]`` counts the groups of ``_group_phase`` at (q, p).
        self._group_phase: dict[GroupKey, tuple[str, str]] = {}
        self._phases: dict[str, dict[str, int]] = {}
        self.dirty: set[str] = set()
        """Queues whose status may have changed since last written."""

    # -- queues --------------------------------------------------------------------------------

    def observe(self, name: str, obj: Mapping[str, Any]) -> bool:
        """File the Queue's latest object; True when it is new or what it admits changed."""
        spec = QueueSpec.of(obj)
        queue = self._queues.get(name)
        changed = queue is None or queue.spec != spec
        self._queues[name] = _Queue(spec, obj)
        if changed:
            self.dirty.add(name)
        return changed

    def forget(self, name: str) -> None:
        self._queues.pop(name, None)
        self.dirty.discard(name)

    def spec(self, name: str) -> QueueSpec | None:
        queue = self._queues.get(name)
        return queue.spec if queue is not None else None

    def obj(self, name: str) -> Mapping[str, Any] | None:
        queue = self._queues.get(name)
        return queue.obj if queue is not None else None

    # -- what queues hold ----------------------------------------------------------------------

    def charge(self, pod_key: str, queue: str, requests: Resources) -> None:
        """``pod_key`` holds ``requests`` for a group of ``queue`` (moved if charged before)."""
        self.uncharge(pod_key)
        self._charged[pod_key] = (queue, requests)
        add_into(self._held.setdefault(queue, {}), requests)
        self.dirty.add(queue)

    def uncharge(self, pod_key: str) -> None:
        entry = self._charged.pop(pod_key, None)
        if entry is None:
            return
        queue, requests = entry
        held = self._held[queue]
        subtract_into(held, requests)
        if not held:
            del self._held[queue]
        self.dirty.add(queue)

    def charged_to(self, pod_key: str) -> str | None:
        entry = self._charged.get(pod_key)
        return entry[0] if entry is not None else None

    def held(self, queue: str) -> Resources:
        """What the queue's groups hold now (never copy-free: do not change it)."""
        return self._held.get(queue) or {}

    # -- groups per phase ----------------------------------------------------------------------

    def set_phase(self, group: GroupKey, queue: str, phase: str) -> None:
        before = self._group_phase.get(group)
        if before == (queue, phase):
            return
        self.forget_group(group)
        self._group_phase[group] = (queue, phase)
        counts = self._phases.setdefault(queue, {})
        counts[phase] = counts.get(phase, 0) + 1
        self.dirty.add(queue)

    def forget_group(self, group: GroupKey) -> None:
        before = self._group_phase.pop(group, None)
        if before is None:
            return
        queue, phase = before
        counts = self._phases[queue]
        counts[phase] -= 1
        if not counts[phase]:
            del counts[phase]
        if not counts:
            del self._phases[queue]
        self.dirty.add(queue)

    def phases(self, queue: str) -> Mapping[str, int]:
        return self._phases.get(queue) or {}

    # -- order ---------------------------------------------------------------------------------

    def deserved(
        self, total: Resources, waiting: Mapping[str, Resources]
    ) -> dict[str, dict[str, float]]:
        """Each queue's deserved share of ``total``, as ``proportion`` computes it, among the
        queues that hold something or have groups waiting (``waiting``: what those ask)."""
        names = {q for q in self._held if q in self._queues}
        names.update(q for q in waiting if q in self._queues)
        request: dict[str, dict[str, float]] = {}
        for name in names:
            want = dict(self.held(name))
            add_into(want, waiting.get(name) or {})
            request[name] = {r: float(v) for r, v in want.items()}
        deserved: dict[str, dict[str, float]] = {name: {} for name in names}
        remaining = {r: float(v) for r, v in total.items() if v > 0}
        met: set[str] = set()
        while True:
            weight = sum(self._queues[n].spec.weight for n in names if n not in met)
            if weight == 0:
                break
            before = dict(remaining)
            increased: dict[str, float] = {}
            decreased: dict[str, float] = {}
            for name in sorted(names - met):
                spec = self._queues[name].spec
                old = deserved[name]
                new = dict(old)
                for r, v in remaining.items():
                    new[r] = new.get(r, 0.0) + v * spec.weight / weight
                for r in list(new):
                    cap = min(spec.capability.get(r, float("inf")), float(total.get(r, 0)))
                    new[r] = min(new[r], cap, request[name].get(r, 0.0))
                deserved[name] = new
                if all(v <= new.get(r, 0.0) for r, v in request[name].items()) or new == old:
                    met.add(name)
                for r in set(new) | set(old):
                    diff = new.get(r, 0.0) - old.get(r, 0.0)
                    if diff > 0:
                        increased[r] = increased.get(r, 0.0) + diff
                    elif diff < 0:
                        decreased[r] = decreased.get(r, 0.0) - diff
            for r, v in decreased.items():
                remaining[r] = remaining.get(r, 0.0) + v
            for r, v in increased.items():
                remaining[r] = remaining.get(r, 0.0) - v
            remaining = {r: v for r, v in remaining.items() if v > 1e-9}
            if not remaining or remaining == before:
                break
        return deserved

    def share(self, name: str, deserved: Mapping[str, float]) -> float:
        """The largest ``allocated / deserved`` over resources (Volcano's ``helpers.Share``:
        holding what is not deserved counts 1)."""
        held = self.held(name)
        share = 0.0
        for r in set(deserved) | set(held):
            have, due = float(held.get(r, 0)), deserved.get(r, 0.0)
            part = (have / due) if due > 0 else (1.0 if have > 0 else 0.0)
            share = max(share, part)
        return share

    def order_key(self, name: str, deserved: Mapping[str, Mapping[str, float]]) -> tuple[Any, ...]:
        """``QueueOrderFn``: higher priority first, then the lower share, then the name."""
        spec = self.spec(name)
        priority = spec.priority if spec is not None else 0
        return (-priority, self.share(name, deserved.get(name) or {}), name)


def queue_status(
    known: Mapping[str, Any], spec: QueueSpec, phases: Mapping[str, int], held: Resources
) -> dict[str, Any]:
    """The status the queue controller and the scheduler would leave on a Queue; other fields of
    ``known`` are kept, so the result equals ``known`` when nothing changed."""
    counted = {name for name, _ in _PHASE_COUNTS}
    status = {k: v for k, v in known.items() if k not in counted | {"state", "allocated"}}
    has_groups = any(phases.values())
    if spec.state in ("", "Open"):
        state = "Open"
    elif spec.state in ("Closed", "Closing"):
        state = "Closing" if has_groups else "Closed"
    else:
        state = spec.state
    status["state"] = state
    for name, phase in _PHASE_COUNTS:
        if phases.get(phase):
            status[name] = phases[phase]
    allocated = {_CPU: "0", _MEMORY: "0"}
    for resource, amount in sorted(held.items()):
        allocated[resource] = format_quantity(resource, amount)
    status["allocated"] = allocated
    return status


def format_quantity(resource: str, amount: int) -> str:
    """``amount`` milli-units of ``resource`` as Volcano's ``ConvertRes2ResList`` renders it:
    memory in bytes (binary suffixes), ``pods`` in units, the rest in milli-units (decimal)."""
    if resource == _MEMORY:
        value = -(-amount // 1000)
        for suffix, power in (
            ("Ei", 60),
            ("Pi", 50),
            ("Ti", 40),
            ("Gi", 30),
            ("Mi", 20),
            ("Ki", 10),
        ):
            if value and value % (1 << power) == 0:
                return f"{value >> power}{suffix}"
        return str(value)
    if resource == PODS or amount % 1000 == 0:
        value = amount // 1000 if amount % 1000 == 0 else -(-amount // 1000)
        for suffix, power in (("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3)):
            if value and value % 10**power == 0:
                return f"{value // 10**power}{suffix}"
        return str(value)
    return f"{amount}m"


def waiting_demand(groups: Iterable[tuple[str, Resources]]) -> dict[str, Resources]:
    """Per queue, the sum of what its waiting groups ask: (queue, asks) pairs summed."""
    out: dict[str, Resources] = {}
    for queue, asks in groups:
        add_into(out.setdefault(queue, {}), asks)
    return out


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
