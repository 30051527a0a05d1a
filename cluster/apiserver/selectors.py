"""Label and field selectors, parsed and matched exactly like apimachinery.

kubectl, client-go informers and the Kubeflow SDK filter lists and watches with
``labelSelector``/``fieldSelector`` query parameters, and ``metav1.LabelSelector`` dicts select
pods in PodGroups, Services and PDBs. The embedded API server must accept exactly the syntax a real
one accepts, reject the rest with the same message, and expose the equality terms so that the store
can answer ``job-name=x`` from an index instead of scanning every object.

Semantics follow ``k8s.io/apimachinery/pkg/labels/selector.go`` and ``pkg/fields/selector.go``:
requirements are sorted by key (labels) or by term text (fields), ``in``/``notin`` value sets are
deduplicated, ``notin``/``!=`` match objects that lack the key, and an empty selector matches
everything.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubetrain.cluster.apiserver._kubetext import (
    go_float,
    go_quote,
    go_string_slice,
    go_value,
    is_qualified_name,
    is_valid_label_value,
)

__all__ = [
    "FieldSelector",
    "LabelRequirement",
    "LabelSelector",
    "SelectorError",
    "label_selector_from_dict",
    "parse_field_selector",
    "parse_label_selector",
]


class SelectorError(ValueError):
    """A selector that does not parse or validate; the message is apimachinery's own text."""


# Label operators, spelled as apimachinery's ``selection.Operator`` values.
OP_EQUALS: Final = "="
OP_DOUBLE_EQUALS: Final = "=="
OP_NOT_EQUALS: Final = "!="
OP_IN: Final = "in"
OP_NOT_IN: Final = "notin"
OP_EXISTS: Final = "exists"
OP_DOES_NOT_EXIST: Final = "!"
OP_GREATER_THAN: Final = "gt"
OP_LESS_THAN: Final = "lt"

_EXACT_OPS = frozenset({OP_EQUALS, OP_DOUBLE_EQUALS, OP_NOT_EQUALS})
_SET_OPS = frozenset({OP_IN, OP_NOT_IN})
_UNARY_OPS = frozenset({OP_EXISTS, OP_DOES_NOT_EXIST})
_ORDER_OPS = frozenset({OP_GREATER_THAN, OP_LESS_THAN})
_OP_TEXT = {
    OP_EQUALS: "=",
    OP_DOUBLE_EQUALS: "==",
    OP_NOT_EQUALS: "!=",
    OP_IN: " in ",
    OP_NOT_IN: " notin ",
    OP_GREATER_THAN: ">",
    OP_LESS_THAN: "<",
}


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    """One ``key <op> values`` term of a label selector.

    Invariant: ``values`` is non-empty for ``in``/``notin``, has exactly one element for the
    exact-match and ordering operators (an integer for ``gt``/``lt``) and is empty for
    ``exists``/``!``. Construct through the parse functions, which check this.
    """

    key: str
    operator: str
    values: tuple[str, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement (apimachinery ``Requirement.Matches``)."""
        op = self.operator
        if op in (OP_EQUALS, OP_DOUBLE_EQUALS, OP_IN):
            value = labels.get(self.key)
            return value is not None and value in self.values
        if op in (OP_NOT_EQUALS, OP_NOT_IN):
            value = labels.get(self.key)
            return value is None or value not in self.values
        if op == OP_EXISTS:
            return self.key in labels
        if op == OP_DOES_NOT_EXIST:
            return self.key not in labels
        value = labels.get(self.key)
        if value is None:
            return False
        try:
            have, want = _parse_int64(value), _parse_int64(self.values[0])
        except ValueError:
            return False
        return have > want if op == OP_GREATER_THAN else have < want

    def __str__(self) -> str:
        if self.operator == OP_DOES_NOT_EXIST:
            return "!" + self.key
        if self.operator == OP_EXISTS:
            return self.key
        text = self.key + _OP_TEXT[self.operator]
        values = ",".join(sorted(self.values))
        if self.operator in _SET_OPS:
            return f"{text}({values})"
        return text + values


class LabelSelector:
    """A conjunction of label requirements.

    ``empty`` is True when the selector places no restriction (matches everything). The special
    *nothing* selector (from a ``None`` ``metav1.LabelSelector``) has ``empty`` False, no
    requirements, and matches no object.
    """

    __slots__ = ("_matches_nothing", "empty", "requirements")

    def __init__(
        self, requirements: Collection[LabelRequirement] = (), *, matches_nothing: bool = False
    ) -> None:
        # Invariant: sorted by key (stable), as apimachinery's ByKey sort, for a canonical str().
        self.requirements: tuple[LabelRequirement, ...] = tuple(
            sorted(requirements, key=lambda r: r.key)
        )
        self._matches_nothing = matches_nothing
        self.empty: bool = not self.requirements and not matches_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with ``labels`` (None: no labels) is selected."""
        if self._matches_nothing:
            return False
        present: Mapping[str, str] = labels if labels is not None else {}
        return all(req.matches(present) for req in self.requirements)

    def equality_requirements(self) -> dict[str, str]:
        """The ``key=value`` terms (``=``, ``==`` or single-valued ``in``) for index lookups.

        A necessary condition only: callers must still call :meth:`matches` on what an index
        returns. For a key with several requirements, the first one decides (like
        ``RequiresExactMatch``). The nothing selector returns ``{}``.
        """
        found: dict[str, str] = {}
        seen: set[str] = set()
        for req in self.requirements:
            if req.key in seen:
                continue
            seen.add(req.key)
            if req.operator in (OP_EQUALS, OP_DOUBLE_EQUALS, OP_IN) and len(req.values) == 1:
                found[req.key] = req.values[0]
        return found

    def __str__(self) -> str:
        return ",".join(str(req) for req in self.requirements)

    def __repr__(self) -> str:
        if self._matches_nothing:
            return "LabelSelector(<nothing>)"
        return f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return (
            self.requirements == other.requirements
            and self._matches_nothing == other._matches_nothing
        )

    def __hash__(self) -> int:
        return hash((self.requirements, self._matches_nothing))


def _parse_int64(text: str) -> int:
    """Go's ``strconv.ParseInt(text, 10, 64)``: optional sign, decimal digits, 64-bit range."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(text)
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(text)
    return value


# ---------------------------------------------------------------------------------------------
# Label selector text: the lexer and recursive-descent parser of apimachinery, token for token.

_T_END = "end"
_T_CLOSE = ")"
_T_COMMA = ","
_T_NOT = "!"
_T_DOUBLE_EQ = "=="
_T_EQ = "="
_T_GT = ">"
_T_IDENT = "ident"
_T_IN = "in"
_T_LT = "<"
_T_NOT_EQ = "!="
_T_NOT_IN = "notin"
_T_OPEN = "("

_KEYWORDS = {
    ")": _T_CLOSE,
    ",": _T_COMMA,
    "!": _T_NOT,
    "==": _T_DOUBLE_EQ,
    "=": _T_EQ,
    ">": _T_GT,
    "in": _T_IN,
    "<": _T_LT,
    "!=": _T_NOT_EQ,
    "notin": _T_NOT_IN,
    "(": _T_OPEN,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_BINARY_OPERATORS_TEXT = "in, notin, =, ==, !=, gt, lt"


def _lex(text: str) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            items.append((_T_END, ""))
            return items
        if text[pos] in _SPECIAL:
            # Longest run of special symbols that is still a token ("!=" but "=" then "(").
            last: tuple[str, str] | None = None
            buf = ""
            while pos < end and text[pos] in _SPECIAL:
                buf += text[pos]
                token = _KEYWORDS.get(buf)
                if token is not None:
                    last = (token, buf)
                    pos += 1
                elif last is not None:
                    break
                else:
                    pos += 1
            # Every single special symbol is a token, so ``last`` is always set here.
            assert last is not None
            items.append(last)
            continue
        start = pos
        while pos < end and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        items.append((_KEYWORDS.get(word, _T_IDENT), word))


class _LabelParser:
    """apimachinery's ``Parser``: ``in``/``notin`` read as identifiers in value position."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.position = 0

    def lookahead(self, *, values: bool) -> tuple[str, str]:
        tok, lit = self.items[self.position]
        if values and tok in (_T_IN, _T_NOT_IN):
            tok = _T_IDENT
        return tok, lit

    def consume(self, *, values: bool) -> tuple[str, str]:
        tok, lit = self.lookahead(values=values)
        self.position += 1
        return tok, lit

    def parse(self) -> list[LabelRequirement]:
        requirements: list[LabelRequirement] = []
        while True:
            tok, lit = self.lookahead(values=True)
            if tok in (_T_IDENT, _T_NOT):
                try:
                    requirements.append(self.parse_requirement())
                except SelectorError as err:
                    raise SelectorError(f"unable to parse requirement: {err}") from None
                tok, lit = self.consume(values=True)
                if tok == _T_END:
                    return requirements
                if tok == _T_COMMA:
                    tok2, lit2 = self.lookahead(values=True)
                    if tok2 not in (_T_IDENT, _T_NOT):
                        raise SelectorError(f"found '{lit2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok == _T_END:
                return requirements
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> LabelRequirement:
        key, operator = self.parse_key_and_infer_operator()
        if operator in _UNARY_OPS:
            return _new_requirement(key, operator, [], path=None)
        operator = self.parse_operator()
        values = self.parse_values() if operator in _SET_OPS else self.parse_exact_value()
        return _new_requirement(key, operator, sorted(values), path=None)

    def parse_key_and_infer_operator(self) -> tuple[str, str]:
        operator = ""
        tok, literal = self.consume(values=True)
        if tok == _T_NOT:
            operator = OP_DOES_NOT_EXIST
            tok, literal = self.consume(values=True)
        if tok != _T_IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        errs = is_qualified_name(literal)
        if errs:
            raise SelectorError(_invalid(None, literal, "; ".join(errs)))
        nxt, _ = self.lookahead(values=True)
        if nxt in (_T_END, _T_COMMA) and operator != OP_DOES_NOT_EXIST:
            operator = OP_EXISTS
        return literal, operator

    def parse_operator(self) -> str:
        tok, lit = self.consume(values=False)
        operator = {
            _T_IN: OP_IN,
            _T_EQ: OP_EQUALS,
            _T_DOUBLE_EQ: OP_DOUBLE_EQUALS,
            _T_GT: OP_GREATER_THAN,
            _T_LT: OP_LESS_THAN,
            _T_NOT_IN: OP_NOT_IN,
            _T_NOT_EQ: OP_NOT_EQUALS,
        }.get(tok)
        if operator is None:
            raise SelectorError(f"found '{lit}', expected: {_BINARY_OPERATORS_TEXT}")
        return operator

    def parse_values(self) -> set[str]:
        tok, lit = self.consume(values=True)
        if tok != _T_OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(values=True)
        if tok in (_T_IDENT, _T_COMMA):
            values = self.parse_identifiers_list()
            tok, _ = self.consume(values=True)
            if tok != _T_CLOSE:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == _T_CLOSE:
            self.consume(values=True)
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume(values=True)
            if tok == _T_IDENT:
                values.add(lit)
                tok2, lit2 = self.lookahead(values=True)
                if tok2 == _T_COMMA:
                    continue
                if tok2 == _T_CLOSE:
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _T_COMMA:
                if not values:
                    values.add("")  # "(,"
                tok2, _ = self.lookahead(values=True)
                if tok2 == _T_CLOSE:
                    values.add("")  # ",)"
                    return values
                if tok2 == _T_COMMA:
                    self.consume(values=True)
                    values.add("")  # ",,"
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        tok, _ = self.lookahead(values=True)
        if tok in (_T_END, _T_COMMA):
            return {""}
        tok, lit = self.consume(values=True)
        if tok == _T_IDENT:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def _path_text(path: str | None) -> str:
    return "<nil>" if path is None else path


def _invalid(path: str | None, value: str | list[str] | None, detail: str) -> str:
    """A ``field.Invalid`` error's text (``[]string`` values printed with ``%#v``)."""
    shown = go_value(value) if isinstance(value, str) else go_string_slice(value)
    return f"{_path_text(path)}: Invalid value: {shown}: {detail}"


def _child(path: str | None, name: str) -> str:
    return name if path is None else f"{path}.{name}"


def _new_requirement(
    key: str, operator: str, values: list[str] | None, *, path: str | None
) -> LabelRequirement:
    """apimachinery's ``NewRequirement``: validate and build, or raise with the aggregate text."""
    shown_values = values
    values = values or []
    errs: list[str] = []
    key_errs = is_qualified_name(key)
    if key_errs:
        errs.append(_invalid(_child(path, "key"), key, "; ".join(key_errs)))
    values_path = _child(path, "values")
    if operator in _SET_OPS:
        if not values:
            errs.append(
                _invalid(
                    values_path, values, "for 'in', 'notin' operators, values set can't be empty"
                )
            )
    elif operator in _EXACT_OPS:
        if len(values) != 1:
            errs.append(
                _invalid(
                    values_path, shown_values, "exact-match compatibility requires one single value"
                )
            )
    elif operator in _UNARY_OPS:
        if values:
            errs.append(
                _invalid(
                    values_path,
                    shown_values,
                    "values set must be empty for exists and does not exist",
                )
            )
    elif operator in _ORDER_OPS:
        if len(values) != 1:
            errs.append(
                _invalid(
                    values_path,
                    shown_values,
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                )
            )
        for i, value in enumerate(values):
            try:
                _parse_int64(value)
            except ValueError:
                errs.append(
                    _invalid(
                        f"{values_path}[{i}]",
                        value,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                )
    for i, value in enumerate(values):
        value_errs = is_valid_label_value(value)
        if value_errs:
            errs.append(_invalid(f"{values_path}[{i}][{key}]", value, "; ".join(value_errs)))
    if errs:
        raise SelectorError(_aggregate(errs))
    return LabelRequirement(key, operator, tuple(values))


def _aggregate(errs: list[str]) -> str:
    """``utilerrors.Aggregate.Error()``: one message alone, several deduplicated in brackets."""
    unique = list(dict.fromkeys(errs))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a ``labelSelector`` query parameter (``labels.Parse``).

    Full syntax: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``,
    ``k>1``, ``k<1``, comma-separated, whitespace between tokens. None or blank selects everything.
    Raises :class:`SelectorError` with apimachinery's message on bad syntax or invalid keys/values.
    """
    if not text:
        return LabelSelector()
    return LabelSelector(_LabelParser(text).parse())


_METAV1_OPERATORS = {
    "In": OP_IN,
    "NotIn": OP_NOT_IN,
    "Exists": OP_EXISTS,
    "DoesNotExist": OP_DOES_NOT_EXIST,
}


def label_selector_from_dict(sel: Mapping[str, Any] | None) -> LabelSelector:
    """Convert a ``metav1.LabelSelector`` dict (``LabelSelectorAsSelector``).

    ``None`` selects NOTHING (a nil selector in apimachinery) while ``{}`` (no matchLabels and no
    matchExpressions) selects EVERYTHING: callers that treat an absent selector differently (e.g.
    a Service without ``spec.selector``) must decide before calling. Raises
    :class:`SelectorError` for an unknown operator or invalid keys/values.
    """
    if sel is None:
        return LabelSelector(matches_nothing=True)
    match_labels = sel.get("matchLabels") or {}
    match_expressions = sel.get("matchExpressions") or []
    if not match_labels and not match_expressions:
        return LabelSelector()
    requirements: list[LabelRequirement] = []
    for key, value in match_labels.items():
        requirements.append(_new_requirement(key, OP_EQUALS, [value], path=None))
    for expr in match_expressions:
        op_text = expr.get("operator")
        operator = _METAV1_OPERATORS.get(op_text) if isinstance(op_text, str) else None
        if operator is None:
            raise SelectorError(
                f"{go_quote(str(op_text or ''))} is not a valid label selector operator"
            )
        raw_values = expr.get("values")
        values = None if raw_values is None else [str(v) for v in raw_values]
        requirements.append(_new_requirement(str(expr.get("key", "")), operator, values, path=None))
    return LabelSelector(requirements)


# ---------------------------------------------------------------------------------------------
# Field selectors.


@dataclass(frozen=True, slots=True)
class FieldTerm:
    """``field=value`` (``equals`` True) or ``field!=value`` on a dotted field path."""

    field: str
    value: str
    equals: bool
    path: tuple[str, ...]

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (_field_text(obj, self.path) == self.value) is self.equals

    def __str__(self) -> str:
        return f"{self.field}{'=' if self.equals else '!='}{escape_field_value(self.value)}"


def _field_text(obj: Mapping[str, Any], path: tuple[str, ...]) -> str:
    """The field's value as the string a selector compares; missing or null is ``""``."""
    node: Any = obj
    for part in path:
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
        if node is None:
            return ""
    if isinstance(node, str):
        return node
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, int):
        return str(node)
    if isinstance(node, float):
        return str(go_float(node))
    return str(go_value(node))


class FieldSelector:
    """A conjunction of field terms; ``empty`` means no restriction (matches everything)."""

    __slots__ = ("empty", "terms")

    def __init__(self, terms: Collection[FieldTerm] = ()) -> None:
        # Invariant: in apimachinery's order (terms sorted by their source text).
        self.terms: tuple[FieldTerm, ...] = tuple(terms)
        self.empty: bool = not self.terms

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` satisfies every term."""
        return all(term.matches(obj) for term in self.terms)

    def equality_requirements(self) -> dict[str, str]:
        """The ``field=value`` terms (first per field) for index lookups; still call matches."""
        found: dict[str, str] = {}
        for term in self.terms:
            if term.equals and term.field not in found:
                found[term.field] = term.value
        return found

    def __iter__(self) -> Iterator[FieldTerm]:
        return iter(self.terms)

    def __str__(self) -> str:
        return ",".join(str(term) for term in self.terms)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self.terms == other.terms

    def __hash__(self) -> int:
        return hash(self.terms)


def escape_field_value(value: str) -> str:
    """``fields.EscapeValue``: backslash-escape ``\\``, ``,`` and ``=``."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(text: str) -> str:
    if not any(ch in text for ch in "\\,="):
        return text
    out: list[str] = []
    in_slash = False
    for ch in text:
        if in_slash:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            raise SelectorError(f"invalid field selector: unescaped character {ch}")
        else:
            out.append(ch)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_field_terms(text: str) -> list[str]:
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


_FIELD_OPERATORS = ("!=", "==", "=")


def parse_field_selector(text: str | None, *, supported: Collection[str]) -> FieldSelector:
    """Parse a ``fieldSelector`` query parameter (``fields.ParseSelector``) for one resource.

    Syntax: ``f=v``, ``f==v``, ``f!=v``, comma-separated; in values, ``\\,``, ``\\=`` and ``\\\\``
    escape. No whitespace trimming (as in kube). ``supported`` lists the field paths the resource
    accepts; kube-apiserver accepts ``metadata.name`` and ``metadata.namespace`` for every
    resource, so callers include them. Values compare as strings; a missing field reads as ``""``.
    Raises :class:`SelectorError` (``field label not supported: <f>`` for unknown fields).
    """
    if not text:
        return FieldSelector()
    terms: list[FieldTerm] = []
    for part in sorted(_split_field_terms(text)):
        if not part:
            continue
        for i in range(len(part)):
            op = next((op for op in _FIELD_OPERATORS if part.startswith(op, i)), None)
            if op is not None:
                field, raw = part[:i], part[i + len(op) :]
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        value = _unescape_field_value(raw)
        terms.append(FieldTerm(field, value, op != "!=", tuple(field.split("."))))
    for term in terms:
        if term.field not in supported:
            raise SelectorError(f"field label not supported: {term.field}")
    return FieldSelector(terms)
