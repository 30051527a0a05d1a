"""Structural CRD schemas: validation, pruning and defaulting of custom resources.

Every custom-resource write (create, update, patch, status) goes through the CRD's
``openAPIV3Schema``: unknown fields are pruned, defaults applied, then the object is validated and
a 422 lists every violation. Clients and users see those messages, so they follow
kube-apiserver word for word (kube-openapi's validator as converted to ``field.Error`` by
apiextensions-apiserver). The schema is compiled once into a tree of :class:`_Node` objects with
everything precomputed, and each operation walks the object exactly once.

Call order, as kube-apiserver does: :meth:`StructuralSchema.prune`, then
:meth:`StructuralSchema.apply_defaults`, then :meth:`StructuralSchema.validate`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from kubetrain.base.objects import json_type
from kubetrain.cluster.apiserver._kubetext import go_float, go_quote, go_syntax, go_value

__all__ = ["Cause", "SchemaError", "StructuralSchema"]


class SchemaError(ValueError):
    """The schema itself is unusable (e.g. a pattern that does not compile); names the node."""


@dataclass(frozen=True, slots=True)
class Cause:
    """One violation, as a ``StatusCause`` of a 422 ``Invalid`` status.

    ``message`` is what follows ``<field>: `` in kube's message; ``field`` is the dotted path with
    list indexes (``spec.containers[0].name``).
    """

    reason: str
    message: str
    field: str

    def to_dict(self) -> dict[str, str]:
        """The ``StatusCause`` dict (``reason``, ``message``, ``field``)."""
        return {"reason": self.reason, "message": self.message, "field": self.field}


# Kubernetes field.ErrorType reasons.
REASON_INVALID = "FieldValueInvalid"
REASON_REQUIRED = "FieldValueRequired"
REASON_NOT_SUPPORTED = "FieldValueNotSupported"
REASON_DUPLICATE = "FieldValueDuplicate"
REASON_TOO_LONG = "FieldValueTooLong"
REASON_TOO_MANY = "FieldValueTooMany"
REASON_TYPE_INVALID = "FieldValueTypeInvalid"

_RESOURCE_ROOT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
)
_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STRING_FORMATS: dict[str, re.Pattern[str]] = {"date-time": _RFC3339, "date": _FULL_DATE}


def _type_ok(types: tuple[str, ...], value: Any) -> bool:
    kind = json_type(value)
    if kind in types:
        return True
    if kind == "number" and "integer" in types:
        return bool(value.is_integer())  # 3.0 is an integer for kube-openapi
    return kind == "integer" and "number" in types


def _enum_key(value: Any) -> Any:
    """A hashable, type-exact key (``True`` must not equal ``1``; ``1`` equals ``1.0``)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    return ("j", repr(value))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(REASON_INVALID, f"Invalid value: {go_value(value)}: {path} in body {detail}", path)


class _Node:
    """One compiled schema node. All attributes are fixed after compilation."""

    __slots__ = (
        "additional",
        "all_of",
        "any_of",
        "default",
        "defaulted",
        "embedded",
        "enum",
        "enum_text",
        "exclusive_maximum",
        "exclusive_minimum",
        "format",
        "format_re",
        "has_default",
        "items",
        "list_map_keys",
        "list_type",
        "max_items",
        "max_length",
        "max_properties",
        "maximum",
        "min_items",
        "min_length",
        "min_properties",
        "minimum",
        "multiple_of",
        "not_",
        "nullable",
        "one_of",
        "pattern",
        "pattern_text",
        "plain_type",
        "preserve_unknown",
        "properties",
        "required",
        "types",
        "unique_items",
    )

    def __init__(self, schema: Mapping[str, Any], where: str) -> None:
        type_name = schema.get("type")
        if schema.get("x-kubernetes-int-or-string"):
            self.types: tuple[str, ...] = ("integer", "string")
        elif type_name:
            self.types = (str(type_name),)
        else:
            self.types = ()
        self.nullable: bool = bool(schema.get("nullable", False))
        self.has_default: bool = "default" in schema
        self.default: Any = schema.get("default")
        self.preserve_unknown: bool = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        self.embedded: bool = bool(schema.get("x-kubernetes-embedded-resource"))
        props = schema.get("properties") or {}
        self.properties: dict[str, _Node] = {
            key: _Node(sub, _join(where, key)) for key, sub in props.items()
        }
        # Invariant: exactly the properties that carry a default, in declaration order.
        self.defaulted: tuple[tuple[str, _Node], ...] = tuple(
            (key, node) for key, node in self.properties.items() if node.has_default
        )
        self.required: tuple[str, ...] = tuple(schema.get("required") or ())
        additional = schema.get("additionalProperties")
        # Invariant: None (not given), True/False, or a node for every unnamed key.
        self.additional: _Node | bool | None = (
            _Node(additional, _join(where, "*")) if isinstance(additional, Mapping) else additional
        )
        items = schema.get("items")
        self.items: _Node | None = (
            _Node(items, f"{where}[*]") if isinstance(items, Mapping) else None
        )
        enum = schema.get("enum")
        self.enum: frozenset[Any] | None = (
            frozenset(_enum_key(v) for v in enum) if enum is not None else None
        )
        self.enum_text: str = ", ".join(
            go_quote(v if isinstance(v, str) else _json_text(v)) for v in (enum or ())
        )
        self.format: str = str(schema.get("format") or "")
        self.format_re: re.Pattern[str] | None = _STRING_FORMATS.get(self.format)
        self.maximum: float | None = schema.get("maximum")
        self.minimum: float | None = schema.get("minimum")
        self.exclusive_maximum: bool = bool(schema.get("exclusiveMaximum", False))
        self.exclusive_minimum: bool = bool(schema.get("exclusiveMinimum", False))
        self.multiple_of: float | None = schema.get("multipleOf")
        self.max_length: int | None = schema.get("maxLength")
        self.min_length: int | None = schema.get("minLength")
        pattern = schema.get("pattern")
        self.pattern_text: str = str(pattern or "")
        try:
            self.pattern: re.Pattern[str] | None = re.compile(pattern) if pattern else None
        except re.error as err:
            raise SchemaError(
                f"{where or '<root>'}: pattern {pattern!r} does not compile: {err}"
            ) from None
        self.max_items: int | None = schema.get("maxItems")
        self.min_items: int | None = schema.get("minItems")
        self.unique_items: bool = bool(schema.get("uniqueItems", False))
        self.max_properties: int | None = schema.get("maxProperties")
        self.min_properties: int | None = schema.get("minProperties")
        self.list_type: str = str(schema.get("x-kubernetes-list-type") or "")
        self.list_map_keys: tuple[str, ...] = tuple(schema.get("x-kubernetes-list-map-keys") or ())
        self.all_of: tuple[_Node, ...] = tuple(_Node(s, where) for s in schema.get("allOf") or ())
        self.any_of: tuple[_Node, ...] = tuple(_Node(s, where) for s in schema.get("anyOf") or ())
        self.one_of: tuple[_Node, ...] = tuple(_Node(s, where) for s in schema.get("oneOf") or ())
        not_schema = schema.get("not")
        self.not_: _Node | None = _Node(not_schema, where) if not_schema else None
        # Invariant: set only when a value of exactly this type can break no rule of this node.
        self.plain_type: type | None = self._plain_type()

    def _plain_type(self) -> type | None:
        """The Python type whose values need no check beyond their type, if this node has one."""
        if len(self.types) != 1 or self.types[0] not in _PLAIN_TYPES:
            return None
        if self.enum is not None or self.format_re is not None or self.pattern is not None:
            return None
        bounds = (self.maximum, self.minimum, self.multiple_of, self.max_length, self.min_length)
        if any(b is not None for b in bounds) or self.all_of or self.any_of or self.one_of:
            return None
        return None if self.not_ is not None else _PLAIN_TYPES[self.types[0]]

    def child(self, key: str) -> _Node | None:
        """The schema for property ``key``, or None when the key is unknown."""
        node = self.properties.get(key)
        if node is not None:
            return node
        additional = self.additional
        return additional if isinstance(additional, _Node) else None

    # -- validation ----------------------------------------------------------------------------

    def validate(self, value: Any, path: str, errs: list[Cause]) -> None:
        """Append every violation of ``value`` (found at ``path``) to ``errs``."""
        plain = self.plain_type
        if plain is not None and type(value) is plain:
            return  # the common case: a scalar of exactly the right type and no other rule
        if value is None:
            if self.nullable or not self.types:
                return
            errs.append(_type_error(path, "null", ",".join(self.types)))
            return
        if self.types and not _type_ok(self.types, value):
            errs.append(_type_error(path, json_type(value), ",".join(self.types)))
            return
        if self.enum is not None and _enum_key(value) not in self.enum:
            errs.append(
                Cause(
                    REASON_NOT_SUPPORTED,
                    f"Unsupported value: {go_value(value)}: supported values: {self.enum_text}",
                    path,
                )
            )
        if isinstance(value, dict):
            self._validate_object(value, path, errs)
        elif isinstance(value, list):
            self._validate_array(value, path, errs)
        elif isinstance(value, str):
            self._validate_string(value, path, errs)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._validate_number(value, path, errs)
        if self.all_of or self.any_of or self.one_of or self.not_ is not None:
            self._validate_combinators(value, path, errs)

    def _validate_object(self, value: dict[str, Any], path: str, errs: list[Cause]) -> None:
        for key in self.required:
            present = value.get(key, _MISSING)
            if present is _MISSING or (present is None and _drops_null(self.properties.get(key))):
                errs.append(Cause(REASON_REQUIRED, "Required value", _join(path, key)))
        count = len(value)
        if self.max_properties is not None and count > self.max_properties:
            errs.append(_too_many(path, count, self.max_properties))
        if self.min_properties is not None and count < self.min_properties:
            errs.append(
                _invalid(path, count, f"should have at least {self.min_properties} properties")
            )
        properties = self.properties
        additional = self.additional if isinstance(self.additional, _Node) else None
        for key, item in value.items():
            node = properties.get(key, additional)
            if node is not None:
                if item is None and _drops_null(node):
                    continue  # kube prunes such nulls before validating
                node.validate(item, f"{path}.{key}" if path else key, errs)

    def _validate_array(self, value: list[Any], path: str, errs: list[Cause]) -> None:
        size = len(value)
        if self.max_items is not None and size > self.max_items:
            errs.append(_too_many(path, size, self.max_items))
        if self.min_items is not None and size < self.min_items:
            errs.append(_invalid(path, size, f"should have at least {self.min_items} items"))
        if self.unique_items and len({_canonical(v) for v in value}) != size:
            errs.append(
                Cause(
                    REASON_INVALID,
                    f'Invalid value: "": {path} in body shouldn\'t contain duplicates',
                    path,
                )
            )
        items = self.items
        if items is not None:
            for i, item in enumerate(value):
                items.validate(item, f"{path}[{i}]", errs)
        if self.list_type == "set":
            seen: set[Any] = set()
            for i, item in enumerate(value):
                key = _canonical(item)
                if key in seen:
                    errs.append(
                        Cause(
                            REASON_DUPLICATE, f"Duplicate value: {go_value(item)}", f"{path}[{i}]"
                        )
                    )
                seen.add(key)
        elif self.list_type == "map" and self.list_map_keys:
            seen_keys: set[Any] = set()
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    continue
                key_fields = {k: item[k] for k in self.list_map_keys if k in item}
                key = _canonical(key_fields)
                if key in seen_keys:
                    errs.append(
                        Cause(
                            REASON_DUPLICATE,
                            f"Duplicate value: {go_syntax(key_fields)}",
                            f"{path}[{i}]",
                        )
                    )
                seen_keys.add(key)

    def _validate_string(self, value: str, path: str, errs: list[Cause]) -> None:
        if self.max_length is not None and len(value) > self.max_length:
            unit = "byte" if self.max_length == 1 else "bytes"
            errs.append(
                Cause(
                    REASON_TOO_LONG,
                    f"Too long: may not be more than {self.max_length} {unit}",
                    path,
                )
            )
        if self.min_length is not None and len(value) < self.min_length:
            errs.append(_invalid(path, value, f"should be at least {self.min_length} chars long"))
        if self.pattern is not None and self.pattern.search(value) is None:
            errs.append(_invalid(path, value, f"should match '{self.pattern_text}'"))
        if self.format_re is not None and not self.format_re.fullmatch(value):
            errs.append(_type_error(path, value, self.format, bad_value=value))

    def _validate_number(self, value: float, path: str, errs: list[Cause]) -> None:
        if self.maximum is not None:
            if self.exclusive_maximum and value >= self.maximum:
                errs.append(_invalid(path, value, f"should be less than {_num(self.maximum)}"))
            elif not self.exclusive_maximum and value > self.maximum:
                errs.append(
                    _invalid(path, value, f"should be less than or equal to {_num(self.maximum)}")
                )
        if self.minimum is not None:
            if self.exclusive_minimum and value <= self.minimum:
                errs.append(_invalid(path, value, f"should be greater than {_num(self.minimum)}"))
            elif not self.exclusive_minimum and value < self.minimum:
                errs.append(
                    _invalid(
                        path, value, f"should be greater than or equal to {_num(self.minimum)}"
                    )
                )
        if self.multiple_of:
            ratio = value / self.multiple_of
            if abs(ratio - round(ratio)) > 1e-9:
                errs.append(
                    _invalid(path, value, f"should be a multiple of {_num(self.multiple_of)}")
                )

    def _validate_combinators(self, value: Any, path: str, errs: list[Cause]) -> None:
        # kube-openapi reports these as plain errors, which apiextensions turns into
        # ``<nil>: Invalid value: ""`` causes carrying the quoted path.
        quoted = go_quote(path)
        if self.all_of:
            valid = 0
            for node in self.all_of:
                sub: list[Cause] = []
                node.validate(value, path, sub)
                errs.extend(sub)
                valid += not sub
            if valid != len(self.all_of):
                extra = ". None validated" if valid == 0 else ""
                errs.append(_composite(f"{quoted} must validate all the schemas (allOf){extra}"))
        if self.any_of:
            best: list[Cause] | None = None
            for node in self.any_of:
                sub = []
                node.validate(value, path, sub)
                if not sub:
                    best = None
                    break
                if best is None or len(sub) < len(best):
                    best = sub
            else:
                errs.append(_composite(f"{quoted} must validate at least one schema (anyOf)"))
                if best:
                    errs.extend(best)
        if self.one_of:
            valid = 0
            best = None
            for node in self.one_of:
                sub = []
                node.validate(value, path, sub)
                if not sub:
                    valid += 1
                elif best is None or len(sub) < len(best):
                    best = sub
            if valid == 0:
                errs.append(
                    _composite(
                        f"{quoted} must validate one and only one schema (oneOf). Found none valid"
                    )
                )
                if best:
                    errs.extend(best)
            elif valid > 1:
                errs.append(
                    _composite(
                        f"{quoted} must validate one and only one schema (oneOf). "
                        f"Found {valid} valid alternatives"
                    )
                )
        if self.not_ is not None:
            sub = []
            self.not_.validate(value, path, sub)
            if not sub:
                errs.append(_composite(f"{quoted} must not validate the schema (not)"))

    # -- pruning -------------------------------------------------------------------------------

    def prune(self, value: Any, path: str, removed: list[str], *, keep_meta: bool) -> None:
        """Drop fields the schema does not know, recording their paths in ``removed``."""
        if isinstance(value, dict):
            properties = self.properties
            additional = self.additional
            add_node = additional if isinstance(additional, _Node) else None
            keep_unknown = self.preserve_unknown or additional is True
            keep_meta = keep_meta or self.embedded
            doomed: list[str] = []
            for key, item in value.items():
                if keep_meta and key in _RESOURCE_ROOT_FIELDS:
                    continue  # ObjectMeta is the server's to check, never pruned by the schema
                node = properties.get(key, add_node)
                if node is None:
                    if not keep_unknown:
                        doomed.append(key)
                    continue
                if isinstance(item, dict | list):
                    child_path = f"{path}.{key}" if path else key
                    node.prune(item, child_path, removed, keep_meta=False)
            for key in doomed:
                del value[key]
                removed.append(f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            items = self.items
            if items is not None:
                for i, item in enumerate(value):
                    if isinstance(item, dict | list):
                        items.prune(item, f"{path}[{i}]", removed, keep_meta=False)

    # -- defaulting ----------------------------------------------------------------------------

    def fill_defaults(self, value: Any) -> None:
        """Apply defaults below ``value`` in place and drop nulls kube drops."""
        if isinstance(value, dict):
            properties = self.properties
            for key, defaulted in self.defaulted:
                current = value.get(key, _MISSING)
                if current is _MISSING or (current is None and not defaulted.nullable):
                    value[key] = copy.deepcopy(defaulted.default)
            additional = self.additional if isinstance(self.additional, _Node) else None
            nulls: list[str] = []
            for key, item in value.items():
                node = properties.get(key, additional)
                if node is None:
                    continue
                if item is None:
                    if not node.nullable:
                        nulls.append(key)
                elif isinstance(item, dict | list):
                    node.fill_defaults(item)
            for key in nulls:
                del value[key]
        elif isinstance(value, list):
            items = self.items
            if items is not None:
                for i, item in enumerate(value):
                    if item is None and items.has_default and not items.nullable:
                        value[i] = copy.deepcopy(items.default)
                    elif isinstance(item, dict | list):
                        items.fill_defaults(item)


_MISSING: Any = object()
_PLAIN_TYPES: dict[str, type] = {"string": str, "integer": int, "boolean": bool}


def _drops_null(node: _Node | None) -> bool:
    """Whether kube drops a null at this node before validation (not nullable, no default)."""
    return node is not None and not node.nullable and not node.has_default


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _canonical(value: Any) -> Any:
    """A hashable form of a JSON value for duplicate detection (type-exact)."""
    if isinstance(value, dict):
        return ("o", tuple(sorted((k, _canonical(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("a", tuple(_canonical(v) for v in value))
    return _enum_key(value)


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else go_float(float(value))


def _type_error(path: str, actual: str, expected: str, *, bad_value: str | None = None) -> Cause:
    shown = actual if bad_value is None else bad_value
    return Cause(
        REASON_TYPE_INVALID,
        f"Invalid value: {go_quote(shown)}: {path} in body must be of type {expected}: "
        f"{go_quote(shown)}",
        path,
    )


def _too_many(path: str, actual: int, maximum: int) -> Cause:
    unit = "item" if maximum == 1 else "items"
    return Cause(REASON_TOO_MANY, f"Too many: {actual}: must have at most {maximum} {unit}", path)


def _composite(message: str) -> Cause:
    return Cause(REASON_INVALID, f'Invalid value: "": {message}', "<nil>")


class StructuralSchema:
    """A CRD version's ``openAPIV3Schema``, compiled once.

    Supports type (object, array, string, integer, number, boolean), nullable, properties,
    additionalProperties, items, required, enum, format (``date-time``/``date`` checked; int32,
    int64 and others type-compatible only), numeric/string/array/object bounds, pattern,
    uniqueItems, allOf/anyOf/oneOf/not (validation only), default,
    x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string,
    x-kubernetes-embedded-resource, x-kubernetes-list-type set/map (+ list-map-keys).
    Not supported: CEL ``x-kubernetes-validations``, ``$ref``, ratcheting on update.
    """

    __slots__ = ("_root",)

    def __init__(self, openapi_v3_schema: Mapping[str, Any]) -> None:
        """Compile ``openapi_v3_schema``; raises :class:`SchemaError` for an unusable node."""
        self._root = _Node(openapi_v3_schema, "")

    def validate(self, obj: Mapping[str, Any]) -> list[Cause]:
        """Every violation in ``obj`` (empty when valid), in schema walk order.

        The resource root's ``metadata`` is validated only as far as the schema declares it;
        ObjectMeta rules are the server's business.
        """
        errs: list[Cause] = []
        self._root.validate(obj, "", errs)
        return errs

    def prune(self, obj: dict[str, Any]) -> list[str]:
        """Remove unknown fields in place; return the removed paths, sorted.

        ``apiVersion``, ``kind`` and ``metadata`` are kept at the root and in embedded
        resources; content under ``x-kubernetes-preserve-unknown-fields`` is kept.
        """
        removed: list[str] = []
        self._root.prune(obj, "", removed, keep_meta=True)
        removed.sort()
        return removed

    def apply_defaults(self, obj: dict[str, Any]) -> None:
        """Apply ``default`` values in place, then drop nulls of non-nullable fields.

        A default fills a missing field, or a null one that is not nullable; defaults are
        deep-copied and defaulted in turn. Nulls in non-nullable fields without a default are
        removed, as kube-apiserver does before validation.
        """
        self._root.fill_defaults(obj)
