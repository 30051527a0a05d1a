"""Summing Kubernetes resource quantities (``"500m"``, ``"4Gi"``, ``2``) into a ``minResources`` map.

Why here: a PodGroup's computed ``minResources`` is a sum of container requests, and the result
is written back as quantity strings the scheduler parses. Sums are exact (``Decimal``), and each
total is printed as Go's ``resource.Quantity`` prints a sum: in the format of its first summand
(binary ``Ki``..``Ei`` when that used one and the total is a whole multiple of 1024, else the
largest decimal suffix that keeps the number whole), so ``1Gi + 1Gi`` is ``"2Gi"`` and
``500m + 1500m`` is ``"2"``. The operator's own copy: ``reconcilers`` may not import the node
simulator's (``cluster/``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, InvalidOperation

__all__ = ["ResourceSum", "format_quantity", "parse_quantity"]

_BINARY: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL: dict[str, int] = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_QUANTITY = re.compile(r"^([+-]?[0-9]*\.?[0-9]+|[+-]?[0-9]+\.)([eE][+-]?[0-9]+|[a-zA-Z]{0,2})$")


def parse_quantity(value: object, *, field_path: str) -> tuple[Decimal, bool]:
    """``(amount, binary)``: the quantity's exact value and whether it used a binary suffix.

    Raises ``ValueError`` naming ``field_path`` when ``value`` is not a quantity.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{field_path}: {value!r} is not a quantity (e.g. '500m', '2', '4Gi')")
    if isinstance(value, int | float):
        return Decimal(str(value)), False
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise ValueError(f"{field_path}: {value!r} is not a quantity (e.g. '500m', '2', '4Gi')")
    digits, suffix = match.groups()
    try:
        number = Decimal(digits)
    except InvalidOperation:
        raise ValueError(f"{field_path}: {value!r} is not a number") from None
    if suffix[:1] in ("e", "E"):
        return number.scaleb(int(suffix[1:])), False
    if suffix in _BINARY:
        return number * (1 << _BINARY[suffix]), True
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix]), False
    raise ValueError(
        f"{field_path}: {value!r} has an unknown suffix {suffix!r} "
        f"(one of {', '.join(s for s in (*_DECIMAL, *_BINARY) if s)})"
    )


def format_quantity(amount: Decimal, *, binary: bool) -> str:
    """``amount`` as a canonical quantity string (see the module docstring); amounts below a
    nano-unit round up to ``1n``, as Go's quantities do."""
    if binary and amount == amount.to_integral_value() and abs(amount) >= 1024:
        whole = int(amount)
        for suffix, bits in reversed(_BINARY.items()):
            if whole % (1 << bits) == 0:
                return f"{whole >> bits}{suffix}"
        return str(whole)
    nanos = int((amount * 10**9).to_integral_value(rounding=ROUND_CEILING))
    if nanos == 0:
        return "0"
    for suffix, exponent in sorted(_DECIMAL.items(), key=lambda item: -item[1]):
        scale = 10 ** (exponent + 9)
        if nanos % scale == 0:
            return f"{nanos // scale}{suffix}"
    raise AssertionError("unreachable: 1n divides every whole number of nanos")


@dataclass(slots=True)
class ResourceSum:
    """A running per-resource total; each resource keeps the format of its first summand."""

    amounts: dict[str, Decimal] = field(default_factory=dict)
    binary: dict[str, bool] = field(default_factory=dict)

    def add(self, resources: Mapping[str, object], *, field_path: str) -> None:
        """Add every ``name: quantity`` of ``resources``; ``ValueError`` names a bad one."""
        for name, raw in resources.items():
            amount, is_binary = parse_quantity(raw, field_path=f"{field_path}[{name}]")
            self.amounts[name] = self.amounts.get(name, Decimal(0)) + amount
            self.binary.setdefault(name, is_binary)

    def as_resource_list(self) -> dict[str, str]:
        """The totals as a ``ResourceList`` (resource name -> quantity string), names sorted."""
        return {
            name: format_quantity(self.amounts[name], binary=self.binary[name])
            for name in sorted(self.amounts)
        }
