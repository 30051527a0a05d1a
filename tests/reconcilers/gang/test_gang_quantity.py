"""Exact quantity sums printed as Go prints them (``reconcilers/gang/quantity.py``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kubetrain.reconcilers.gang.quantity import ResourceSum, format_quantity, parse_quantity


@pytest.mark.parametrize(
    ("raw", "amount", "binary"),
    [
        ("500m", Decimal("0.5"), False),
        ("2", Decimal(2), False),
        (2, Decimal(2), False),
        (0.5, Decimal("0.5"), False),
        ("1.5", Decimal("1.5"), False),
        ("4Gi", Decimal(4 * 2**30), True),
        ("1e3", Decimal(1000), False),
        ("100M", Decimal(100_000_000), False),
        ("250n", Decimal("0.000000250"), False),
    ],
)
def test_parse(raw: object, amount: Decimal, binary: bool) -> None:
    assert parse_quantity(raw, field_path="f") == (amount, binary)


@pytest.mark.parametrize("raw", ["", "abc", "1Xi", True, None, "1.2.3"])
def test_parse_refuses_what_is_not_a_quantity_naming_the_field(raw: object) -> None:
    with pytest.raises(ValueError, match=r"^spec\.x\[cpu\]"):
        parse_quantity(raw, field_path="spec.x[cpu]")


@pytest.mark.parametrize(
    ("amount", "binary", "text"),
    [
        (Decimal(2), False, "2"),
        (Decimal("1.5"), False, "1500m"),
        (Decimal(2000), False, "2k"),
        (Decimal(0), False, "0"),
        (Decimal(2 * 2**30), True, "2Gi"),
        (Decimal(1536 * 2**20), True, "1536Mi"),
        (Decimal(1500), True, "1500"),  # not a multiple of 1024: plain
        (Decimal(512), True, "512"),
        (Decimal("1e-10"), False, "1n"),  # rounds up
    ],
)
def test_format(amount: Decimal, binary: bool, text: str) -> None:
    assert format_quantity(amount, binary=binary) == text


def test_a_sum_keeps_the_format_of_its_first_summand() -> None:
    total = ResourceSum()
    total.add({"cpu": "500m", "memory": "1Gi"}, field_path="a")
    total.add({"cpu": "1500m", "memory": "1Gi", "nvidia.com/gpu": 1}, field_path="b")
    assert total.as_resource_list() == {"cpu": "2", "memory": "2Gi", "nvidia.com/gpu": "1"}
