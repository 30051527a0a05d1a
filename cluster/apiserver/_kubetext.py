"""Kubernetes' wording for validation failures, shared by selectors and schemas.

Clients (kubectl, the SDKs, tests written against a real cluster) show and sometimes match the
API server's error text, so the embedded server must word failures exactly as apimachinery does:
Go's ``%q`` quoting, ``field.Error`` bodies (``Invalid value: "x": detail``), and the name/label
checks of ``k8s.io/apimachinery/pkg/util/validation``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

import orjson

_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    """Return ``text`` quoted like Go's ``strconv.Quote`` (``%q``) for printable input."""
    out = ['"']
    for ch in text:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x80:
                out.append(f"\\x{code:02x}")
            elif code <= 0xFFFF:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_value(value: Any) -> str:
    """Format a bad value the way ``field.Error.ErrorBody`` prints it.

    Strings are ``%q``-quoted, numbers and booleans printed with ``%v``, ``None`` becomes the
    quoted string ``"null"`` (as apimachinery substitutes it), maps and lists use Go's ``%#v``
    (``[]interface {}{...}``, ``map[string]interface {}{...}``) as for decoded JSON.
    """
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    return go_syntax(value)


def typed_value(value: Any, *, sort_keys: bool = True) -> str:
    """A bad value as ``field.Error`` prints a *typed* Go value: booleans and numbers with
    ``%v``, strings ``%q``-quoted, anything else (a struct, a map) as JSON, the closest text to
    Go's struct printing (byte-identical for scalars only)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    option = orjson.OPT_SORT_KEYS if sort_keys else 0
    return orjson.dumps(value, option=option).decode()


def go_syntax(value: Any) -> str:
    """Go's ``%#v`` for a value decoded from JSON into ``interface{}``."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, list | tuple):
        return "[]interface {}{" + ", ".join(go_syntax(v) for v in value) + "}"
    if isinstance(value, dict):
        items = ", ".join(f"{go_quote(k)}:{go_syntax(value[k])}" for k in sorted(value))
        return "map[string]interface {}{" + items + "}"
    return go_quote(str(value))


def go_string_slice(values: list[str] | None) -> str:
    """Go's ``%#v`` for a ``[]string`` (``[]string(nil)`` when absent)."""
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def go_float(value: float) -> str:
    """Format a float64 like Go's ``%v`` (shortest digits; exponent form below 1e-4 or from 1e6)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    exp10 = len(text) + exponent - 1
    prefix = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    return prefix + format(Decimal(text).scaleb(exponent), "f")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's ``validation.RegexError`` (note the double space before ``or``)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    parts = [msg, " (e.g. "]
    for i, example in enumerate(examples):
        if i > 0:
            parts.append(" or ")
        parts.append(f"'{example}', ")
    parts.append(f"regex used for validation is '{fmt}')")
    return "".join(parts)


def max_len_error(length: int) -> str:
    """apimachinery's ``validation.MaxLenError``."""
    return f"must be no more than {length} characters"


_QNAME_CHAR = "[A-Za-z0-9]"
_QNAME_EXT_CHAR = "[-A-Za-z0-9_.]"
QUALIFIED_NAME_FMT = f"({_QNAME_CHAR}{_QNAME_EXT_CHAR}*)?{_QNAME_CHAR}"
_QUALIFIED_NAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_QUALIFIED_NAME_MAX = 63
_QUALIFIED_NAME_RE = re.compile(QUALIFIED_NAME_FMT)

LABEL_VALUE_FMT = f"({QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MAX = 63
_LABEL_VALUE_RE = re.compile(LABEL_VALUE_FMT)

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = f"{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MAX = 253
_DNS1123_SUBDOMAIN_RE = re.compile(DNS1123_SUBDOMAIN_FMT)


_DNS1123_LABEL_ERR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_MAX = 63
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_ERR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)


def is_dns1123_label(value: str) -> list[str]:
    """apimachinery's ``IsDNS1123Label`` (namespace names): the problems, empty when valid."""
    errs: list[str] = []
    if len(value) > _DNS1123_LABEL_MAX:
        errs.append(max_len_error(_DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_LABEL_ERR, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """apimachinery's ``IsDNS1035Label`` (service names): the problems, empty when valid."""
    errs: list[str] = []
    if len(value) > _DNS1123_LABEL_MAX:
        errs.append(max_len_error(_DNS1123_LABEL_MAX))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_ERR, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """apimachinery's ``IsDNS1123Subdomain``: the problems, empty when valid."""
    errs: list[str] = []
    if len(value) > _DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(_DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """apimachinery's ``IsQualifiedName`` (label keys, annotation keys, finalizers)."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + msg for msg in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > _QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(_QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append(
            "name part "
            + regex_error(_QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """apimachinery's ``IsValidLabelValue``: the problems, empty when valid."""
    errs: list[str] = []
    if len(value) > _LABEL_VALUE_MAX:
        errs.append(max_len_error(_LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_ERR, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs
