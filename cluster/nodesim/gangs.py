"""The gang book: PodGroups the simulated scheduler knows, their members and member counts.

Kept incrementally from pod and PodGroup events, like ``NodeCapacity``: each member pod is filed
under its group with its state, and each group keeps the count per state, so deciding for a
group, or computing its status, never scans pods. Members are filed even while their group is
not known yet (the pod's watch event may come before the group's), so the counts are right
the moment the group appears. Which members wait for the scheduler (filed here by the scheduler
when it decided they wait) is kept apart from the member state (what the pod says).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .podgroup import VOLCANO, Counts, GroupKey, GroupSpec, MemberState

__all__ = ["GangBook", "Group"]


@dataclass(slots=True)
class Group:
    """A PodGroup as last observed, plus what the scheduler decided about it."""

    key: GroupKey
    spec: GroupSpec
    obj: Mapping[str, Any]
    seq: int
    """Order first seen: older groups go first among equal priorities."""
    admitted: bool = False
    """Volcano: room was found for its ``minResources`` (phase Inqueue or later)."""
    reason: str = ""
    """Why it does not run yet (``NotEnoughResources``, ``NotEnoughTasks``, ``QueueNotFound``,
    ``QueueClosed``), "" if nothing."""
    message: str = ""
    """The condition's message when ``reason`` is not the gang plugin's own ("" for that)."""


class GangBook:
    """Groups by key, members by group, waiting members by group (oldest first)."""

    def __init__(self) -> None:
        self._groups: dict[GroupKey, Group] = {}
        # Invariant: ``_counts[g][s]`` is the number of keys in ``_members[g]`` with state s.
        self._members: dict[GroupKey, dict[str, MemberState]] = {}
        self._counts: dict[GroupKey, dict[str, int]] = {}
        self._member_group: dict[str, GroupKey] = {}
        # Members the scheduler decided wait, oldest first; a key is filed under its own group.
        self._filed: dict[GroupKey, dict[str, None]] = {}
        self._seq = 0

    # -- groups -------------------------------------------------------------------------------

    def group(self, key: GroupKey) -> Group | None:
        return self._groups.get(key)

    def groups(self) -> Iterator[Group]:
        return iter(self._groups.values())

    def observe_group(self, key: GroupKey, obj: Mapping[str, Any]) -> tuple[Group, bool]:
        """File the group's latest object; True when it is new or its spec changed."""
        spec = GroupSpec.of(obj, volcano=key[0] == VOLCANO)
        group = self._groups.get(key)
        if group is None:
            self._seq += 1
            phase = (obj.get("status") or {}).get("phase")
            group = self._groups[key] = Group(
                key, spec, obj, self._seq, admitted=phase in ("Inqueue", "Running", "Unknown")
            )
            return group, True
        changed = group.spec != spec
        group.spec = spec
        group.obj = obj
        return group, changed

    def forget_group(self, key: GroupKey) -> Group | None:
        """The PodGroup is gone; its members stay filed (a group of that name may come back)."""
        return self._groups.pop(key, None)

    # -- members ------------------------------------------------------------------------------

    def group_of_member(self, pod_key: str) -> GroupKey | None:
        return self._member_group.get(pod_key)

    def set_member(self, pod_key: str, key: GroupKey | None, state: MemberState | None) -> bool:
        """File ``pod_key`` under ``key`` with ``state``; ``key`` or ``state`` None: not a member
        (any more). True when anything changed."""
        old = self._member_group.get(pod_key)
        dropped = old is not None and (old != key or state is None)
        if dropped:
            self._drop(pod_key, old)  # type: ignore[arg-type]
        if key is None or state is None:
            return dropped
        members = self._members.setdefault(key, {})
        counts = self._counts.setdefault(key, {})
        previous = members.get(pod_key)
        if previous == state:
            return False
        if previous is not None:
            counts[previous] -= 1
        members[pod_key] = state
        counts[state] = counts.get(state, 0) + 1
        self._member_group[pod_key] = key
        return True

    def _drop(self, pod_key: str, key: GroupKey) -> None:
        self.unfile(pod_key)
        del self._member_group[pod_key]
        members = self._members[key]
        state = members.pop(pod_key)
        self._counts[key][state] -= 1
        if not members:
            del self._members[key]
            del self._counts[key]

    def state(self, pod_key: str) -> MemberState | None:
        key = self._member_group.get(pod_key)
        return self._members[key].get(pod_key) if key is not None else None

    def counts(self, key: GroupKey) -> Counts:
        return Counts.of(self._counts.get(key) or {})

    def members(self, key: GroupKey) -> list[str]:
        return list(self._members.get(key) or ())

    # -- waiting members ----------------------------------------------------------------------

    def file(self, pod_key: str) -> None:
        """The scheduler decided this member waits (it keeps its place if filed already)."""
        key = self._member_group.get(pod_key)
        if key is not None:
            self._filed.setdefault(key, {})[pod_key] = None

    def unfile(self, pod_key: str) -> None:
        key = self._member_group.get(pod_key)
        filed = self._filed.get(key) if key is not None else None
        if filed is not None and pod_key in filed:
            del filed[pod_key]
            if not filed:
                del self._filed[key]  # type: ignore[arg-type]

    def is_filed(self, pod_key: str) -> bool:
        key = self._member_group.get(pod_key)
        return key is not None and pod_key in (self._filed.get(key) or ())

    def filed(self, key: GroupKey) -> list[str]:
        """The group's waiting members, oldest first."""
        return list(self._filed.get(key) or ())

    def with_filed(self) -> list[GroupKey]:
        """Groups that have waiting members."""
        return list(self._filed)
