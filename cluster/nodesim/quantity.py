"""Kubernetes resource quantities as integers, and a pod's resource request as kube computes it.

The scheduler compares what pods request with what nodes offer. Quantities arrive as strings
(``"500m"``, ``"1.5"``, ``"64Gi"``, ``"1e3"``) or numbers; we hold every resource in *milli-units*
(integers, rounded up like ``resource.Quantity.MilliValue``), so cpu, memory and extended resources
such as ``nvidia.com/gpu`` share one arithmetic and sums never drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

__all__ = ["PODS", "Resources", "add_into", "milli", "pod_requests", "subtract_into"]

Resources = dict[str, int]
"""Resource name -> milli-units. Absent means 0."""

PODS = "pods"
"""The pseudo-resource each pod consumes one of (1000 milli-units)."""

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[a-zA-Z]{0,2})$")


def milli(value: Any, *, field: str = "quantity") -> int:
    """``value`` (a kube quantity string or a number) in milli-units, rounded up.

    Raises ``ValueError`` naming ``field`` when the text is not a quantity.
    """
    if isinstance(value, bool):
        raise ValueError(f"{field}: {value!r} is not a quantity (use e.g. '500m', '2', '4Gi')")
    if isinstance(value, int | float):
        number = Decimal(str(value))
    else:
        match = _QUANTITY.match(str(value).strip())
        if match is None:
            raise ValueError(f"{field}: {value!r} is not a quantity (use e.g. '500m', '2', '4Gi')")
        digits, suffix = match.groups()
        try:
            number = Decimal(digits)
            if suffix[:1] in ("e", "E"):
                number *= Decimal(10) ** int(suffix[1:])
            elif suffix in _SUFFIXES:
                number *= _SUFFIXES[suffix]
            else:
                raise ValueError(
                    f"{field}: {value!r} has an unknown suffix {suffix!r} "
                    f"(one of {', '.join(s for s in _SUFFIXES if s)})"
                )
        except InvalidOperation:
            raise ValueError(f"{field}: {value!r} is not a number") from None
    return int((number * 1000).to_integral_value(rounding=ROUND_CEILING))


def _container_requests(container: Mapping[str, Any], where: str) -> Resources:
    """A container's requests; a resource with a limit but no request uses the limit (kube's
    defaulting of requests from limits)."""
    resources = container.get("resources") or {}
    out: Resources = {}
    for source in ("limits", "requests"):  # requests override limits
        for name, value in (resources.get(source) or {}).items():
            out[name] = milli(value, field=f"{where}.resources.{source}[{name}]")
    return out


def add_into(total: Resources, more: Mapping[str, int]) -> None:
    """``total += more``, per resource."""
    for name, value in more.items():
        total[name] = total.get(name, 0) + value


def subtract_into(total: Resources, less: Mapping[str, int]) -> None:
    """``total -= less``, per resource (entries reaching 0 are removed)."""
    for name, value in less.items():
        left = total.get(name, 0) - value
        if left:
            total[name] = left
        else:
            total.pop(name, None)


def _max_into(total: Resources, other: Mapping[str, int]) -> None:
    for name, value in other.items():
        if value > total.get(name, 0):
            total[name] = value


def pod_requests(pod: Mapping[str, Any]) -> Resources:
    """What a pod needs from a node, as the kube scheduler computes it.

    ``max(sum of the containers' requests, max of each init container's requests)`` per resource,
    plus ``spec.overhead``, plus one ``pods``. Requests fall back to limits when absent.
    Raises ``ValueError`` naming the field for a malformed quantity.
    """
    spec = pod.get("spec") or {}
    total: Resources = {}
    for i, c in enumerate(_list(spec.get("containers"))):
        add_into(total, _container_requests(c, f"spec.containers[{i}]"))
    for i, c in enumerate(_list(spec.get("initContainers"))):
        _max_into(total, _container_requests(c, f"spec.initContainers[{i}]"))
    for name, value in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + milli(value, field=f"spec.overhead[{name}]")
    total[PODS] = total.get(PODS, 0) + 1000
    return {k: v for k, v in total.items() if v}


def _list(value: Any) -> Iterable[Mapping[str, Any]]:
    return [c for c in value or [] if isinstance(c, Mapping)]
