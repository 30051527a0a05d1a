"""ObjectMeta validation, kube-apiserver's ``ValidateObjectMeta`` for every kind: the name on
create (a DNS subdomain; a DNS label for namespaces, a DNS-1035 label for services), label keys
and values, annotation keys and their total size, finalizer names. The causes are StatusCause
dicts for ``errors.invalid`` (422), worded as ``k8s.io/apimachinery`` words them. Types were
checked before (``decoding.py``): every value here is a string or None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ._kubetext import (
    DNS1123_SUBDOMAIN_FMT,
    LABEL_VALUE_FMT,
    QUALIFIED_NAME_FMT,
    go_quote,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
)

__all__ = ["TOTAL_ANNOTATION_SIZE_LIMIT", "object_meta_causes"]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024  # apimachinery's TotalAnnotationSizeLimitB

#: (group, plural) -> its name rule, for the kinds whose names are not DNS subdomains
_NAME_RULES: dict[tuple[str, str], Callable[[str], list[str]]] = {
    ("", "namespaces"): is_dns1123_label,
    ("", "services"): is_dns1035_label,
}


# the valid case in one match (every write checks its labels): a qualified name, a label value
_QUALIFIED = re.compile(f"(?:(?P<prefix>{DNS1123_SUBDOMAIN_FMT})/)?(?P<name>{QUALIFIED_NAME_FMT})")
_LABEL_VALUE = re.compile(LABEL_VALUE_FMT)


# Keys and values found valid lately. Why: every write checks its labels, and they repeat (a
# job's pods share their label keys and most values); a set lookup costs a small fraction of
# the match (the qualified-name pattern backtracks: about 1.5 us per key). Bounded: cleared
# when full.
_VALID_MEMO_SIZE = 4096
_valid_keys: set[str] = set()
_valid_values: set[str] = set()


def _remember_valid(memo: set[str], text: str) -> None:
    if len(memo) >= _VALID_MEMO_SIZE:
        memo.clear()
    memo.add(text)


def _key_problems(key: str) -> list[str]:
    """``is_qualified_name(key)``, at the cost of one match when valid (a lookup when seen)."""
    if key in _valid_keys:
        return []
    m = _QUALIFIED.fullmatch(key)
    if m is not None and len(m["name"]) <= 63 and len(m["prefix"] or "") <= 253:
        _remember_valid(_valid_keys, key)
        return []
    return is_qualified_name(key)


def _value_problems(value: str) -> list[str]:
    """``is_valid_label_value(value)``, at the cost of one match when valid (a lookup when
    seen)."""
    if value in _valid_values:
        return []
    if len(value) <= 63 and _LABEL_VALUE.fullmatch(value):
        _remember_valid(_valid_values, value)
        return []
    return is_valid_label_value(value)


def _invalid(path: str, value: str, msg: str) -> dict[str, str]:
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {go_quote(value)}: {msg}",
        "field": path,
    }


def object_meta_causes(
    storage_key: tuple[str, str], meta: Mapping[str, Any], *, creating: bool
) -> list[dict[str, str]]:
    """Every ObjectMeta problem of ``meta`` (a resource under ``storage_key``); [] if valid."""
    causes: list[dict[str, str]] = []
    if creating:
        name = meta.get("name") or ""
        rule = _NAME_RULES.get(storage_key, is_dns1123_subdomain)
        problems = rule(name)
        if problems:
            causes.extend(_invalid("metadata.name", name, msg) for msg in problems)
    labels = meta.get("labels")
    if labels:
        for key, value in labels.items():
            text = value or ""
            for msg in _key_problems(key):
                causes.append(_invalid("metadata.labels", key, msg))
            for msg in _value_problems(text):
                causes.append(_invalid("metadata.labels", text, msg))
    annotations = meta.get("annotations")
    if annotations:
        size = 0
        for key, value in annotations.items():
            for msg in _key_problems(key.lower()):
                causes.append(_invalid("metadata.annotations", key, msg))
            size += len(key) + len(value or "")
        if size > TOTAL_ANNOTATION_SIZE_LIMIT // 4:  # characters: at most 4 bytes each
            size = sum(len(k.encode()) + len((v or "").encode()) for k, v in annotations.items())
        if size > TOTAL_ANNOTATION_SIZE_LIMIT:
            causes.append(
                {
                    "reason": "FieldValueTooLong",
                    "message": f"Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes",
                    "field": "metadata.annotations",
                }
            )
    for finalizer in meta.get("finalizers") or ():
        text = finalizer or ""
        for msg in _key_problems(text):
            causes.append(_invalid("metadata.finalizers", text, msg))
    return causes
