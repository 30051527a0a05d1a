"""Query-string parsing shared by the handlers, with kube-apiserver's rules and messages.

Booleans follow kube's query conversion (``runtime.Convert_Slice_string_To_bool``, checked on
kube-apiserver v1.36.3): a present parameter is false only for ``0`` or ``false`` in any case and
true for anything else, the empty value included (``watch=``, ``watch=yes``, ``watch=f`` all
watch); an absent one takes the default. Integers must be decimal; bad values name the parameter.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

import orjson

from . import errors
from ._kubetext import go_quote

__all__ = [
    "decode_continue",
    "encode_continue",
    "parse_bool",
    "parse_dry_run",
    "parse_field_validation",
    "parse_int",
    "parse_resource_version",
]


def parse_bool(query: Mapping[str, str], name: str, default: bool = False) -> bool:
    """``query[name]`` as kube reads a boolean parameter: absent -> ``default``; present ->
    False only for ``0`` or ``false`` (any case), True otherwise (empty too). Never raises."""
    raw = query.get(name)
    if raw is None:
        return default
    return not (raw == "0" or raw.lower() == "false")


_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_DECIMAL = re.compile(r"[+-]?[0-9]+")
_UNSIGNED = re.compile(r"[0-9]+")


def parse_int(query: Mapping[str, str], name: str) -> int | None:
    """``query[name]`` as an int64 (Go's ``strconv.ParseInt``), None when absent or empty."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if not _DECIMAL.fullmatch(raw):
        raise errors.bad_request(
            f"strconv.ParseInt: parsing {go_quote(raw)}: invalid syntax (parameter {name})"
        )
    value = int(raw)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise errors.bad_request(
            f"strconv.ParseInt: parsing {go_quote(raw)}: value out of range (parameter {name})"
        )
    return value


def parse_resource_version(query: Mapping[str, str]) -> int | None:
    """``resourceVersion`` of a get, list or watch: None when absent, empty or "0" (any
    version); else the uint64 it must be. kube answers a malformed one with 500 (its storage's
    ``ParseResourceVersion`` error, kubernetes#101350); here it is the client's error, 400."""
    raw = query.get("resourceVersion")
    if raw is None or raw in ("", "0"):
        return None
    problem = None
    if not _UNSIGNED.fullmatch(raw):
        problem = "invalid syntax"
    elif int(raw) > (1 << 64) - 1:
        problem = "value out of range"
    if problem is not None:
        raise errors.bad_request(
            f"resourceVersion: Invalid value: {go_quote(raw)}: "
            f"strconv.ParseUint: parsing {go_quote(raw)}: {problem}"
        )
    return int(raw)


def parse_dry_run(query: Mapping[str, str]) -> bool:
    """``dryRun=All`` -> True; absent -> False; anything else is refused like kube."""
    getall = getattr(query, "getall", None)
    if getall is not None:
        values = [str(v) for v in getall("dryRun", [])]
    else:
        values = [query["dryRun"]] if "dryRun" in query else []
    if not values:
        return False
    for value in values:
        if value != "All":
            raise errors.invalid(
                "DryRun",
                "",
                "",
                [
                    {
                        "reason": "FieldValueNotSupported",
                        "message": f'Unsupported value: "{value}": supported values: "All"',
                        "field": "dryRun",
                    }
                ],
            )
    return True


def parse_field_validation(query: Mapping[str, str]) -> str:
    """Strict, Warn (the default) or Ignore."""
    raw = query.get("fieldValidation") or "Warn"
    if raw not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f"fieldValidation must be one of Ignore, Warn, or Strict, got {raw!r}"
        )
    return raw


def encode_continue(rv: int, last: tuple[str, str]) -> str:
    """An opaque continue token: base64 of {v, rv, start} (like kube's, "ns/name\\x00")."""
    start = f"{last[0]}/{last[1]}\x00" if last[0] else f"{last[1]}\x00"
    payload = {"v": "meta.k8s.io/v1", "rv": rv, "start": start, "k": [last[0], last[1]]}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    """(rv, last key) from a token; 400 when it is not one of ours."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data: Any = orjson.loads(base64.urlsafe_b64decode(padded))
        rv = int(data["rv"])
        ns, name = data["k"]
        return rv, (str(ns), str(name))
    except Exception:
        raise errors.bad_request(
            "continue key is not valid: illegal base64 data or not a continue token"
        ) from None
