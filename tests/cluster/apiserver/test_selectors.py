"""Label and field selectors behave and fail like apimachinery's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubetrain.cluster.apiserver.selectors import (
    SelectorError,
    label_selector_from_dict,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "n": "5"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web,db)", True),
        ("app in (db)", False),
        ("app notin (db)", True),
        ("app notin (web)", False),
        ("missing notin (x)", True),
        ("missing in (x)", False),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=front", True),
        ("app=web, tier=back", False),
        ("  app = web  ,  tier  in  ( front , x )  ", True),
        ("n>4", True),
        ("n>5", False),
        ("n<6", True),
        ("app>1", False),
        ("missing=", False),
        ("missing in ()", False),
        ("app in (in, notin, web)", True),
    ],
)
def test_label_selector_matches(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


def test_empty_selector_and_missing_labels() -> None:
    assert parse_label_selector(None).empty
    assert parse_label_selector("  ").empty
    assert not parse_label_selector("a").empty
    assert parse_label_selector("!a").matches(None)
    assert not parse_label_selector("a=b").matches(None)
    # "k=" and "k in ()" select the empty value
    assert parse_label_selector("k=").matches({"k": ""})
    assert parse_label_selector("k in ()").matches({"k": ""})


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("z=1,a in (y,x,x),!m,b", "a in (x,y),b,!m,z=1"),
        ("x==y", "x==y"),
        ("x != y", "x!=y"),
        ("k notin (b,a)", "k notin (a,b)"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("n>3,n<9", "n>3,n<9"),
        ("example.com/role=master", "example.com/role=master"),
    ],
)
def test_label_selector_string_is_canonical(text: str, canonical: str) -> None:
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x=a,", "found '', expected: identifier after ','"),
        ("x=a b", "found 'b', expected: ',' or 'end of string'"),
        ("=x", "found '=', expected: !, identifier, or 'end of string'"),
        ("x in a", "unable to parse requirement: found 'a' expected: '('"),
        ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
        ("x (a)", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"),
        ("x=(", "unable to parse requirement: found '(', expected: identifier"),
        ("!x=y", "found '=', expected: ',' or 'end of string'"),
        (
            "x>a",
            'unable to parse requirement: values[0]: Invalid value: "a": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "-x=y",
            'unable to parse requirement: <nil>: Invalid value: "-x": name part must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
            "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        (
            "x=-y",
            'unable to parse requirement: values[0][x]: Invalid value: "-y": a valid label must be '
            "an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
            "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
        (
            "Bad_/x",
            'unable to parse requirement: <nil>: Invalid value: "Bad_/x": prefix part a lowercase '
            "RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        (
            "x=" + "v" * 64,
            'unable to parse requirement: values[0][x]: Invalid value: "'
            + "v" * 64
            + '": must be no more than 63 characters',
        ),
    ],
)
def test_label_selector_errors_match_apimachinery(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    assert str(info.value) == message


def test_equality_requirements() -> None:
    sel = parse_label_selector("b in (x),a=1,c==2,d!=3,e in (p,q),f")
    assert sel.equality_requirements() == {"a": "1", "b": "x", "c": "2"}


def test_label_selector_from_dict() -> None:
    nothing = label_selector_from_dict(None)
    assert not nothing.empty
    assert not nothing.matches({})
    assert nothing.equality_requirements() == {}
    everything = label_selector_from_dict({})
    assert everything.empty and everything.matches({"a": "b"})
    sel = label_selector_from_dict(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "gone", "operator": "DoesNotExist"},
                {"key": "n", "operator": "Exists", "values": []},
            ],
        }
    )
    assert str(sel) == "app=web,!gone,n,tier in (back,front)"
    assert sel.matches(LABELS)
    assert not sel.matches({**LABELS, "gone": "1"})
    assert sel.equality_requirements() == {"app": "web"}


@pytest.mark.parametrize(
    ("sel", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            '"Gt" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist',
        ),
        ({"matchLabels": {"a b": "c"}}, 'key: Invalid value: "a b": name part must consist'),
    ],
)
def test_label_selector_from_dict_errors(sel: dict[str, object], message: str) -> None:
    with pytest.raises(SelectorError) as info:
        label_selector_from_dict(sel)
    assert str(info.value).startswith(message)


_keys = st.from_regex(r"\A([a-z]{1,5}\.)?[a-z]{1,3}/?[a-z][a-z0-9]{0,4}\Z")
_values = st.one_of(st.just(""), st.from_regex(r"\A[a-z0-9]([a-z0-9._-]{0,5}[a-z0-9])?\Z"))


@st.composite
def _requirement_texts(draw: st.DrawFn) -> str:
    key = draw(_keys)
    kind = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!", ">", "<"]))
    if kind == "exists":
        return key
    if kind == "!":
        return "!" + key
    if kind in (">", "<"):
        return f"{key}{kind}{draw(st.integers(0, 10**6))}"
    if kind in ("in", "notin"):
        # Only non-empty values: apimachinery itself rejects some empty-value spellings ("(,,)").
        values = draw(st.lists(_values.filter(bool), min_size=1, max_size=4))
        return f"{key} {kind} ({','.join(values)})"
    return f"{key}{kind}{draw(_values)}"


@given(st.lists(_requirement_texts(), max_size=5))
def test_label_selector_string_round_trips(parts: list[str]) -> None:
    sel = parse_label_selector(",".join(parts))
    again = parse_label_selector(str(sel))
    assert again == sel
    assert str(again) == str(sel)


@given(
    st.lists(_requirement_texts(), min_size=1, max_size=4),
    st.dictionaries(st.sampled_from(["a", "b", "x.y/z", "k"]), _values, max_size=4),
)
def test_label_selector_is_a_conjunction(parts: list[str], labels: dict[str, str]) -> None:
    whole = parse_label_selector(",".join(parts)).matches(labels)
    each = all(parse_label_selector(part).matches(labels) for part in parts)
    assert whole == each


POD = {
    "metadata": {"name": "p-0", "namespace": "ns"},
    "spec": {"nodeName": "node-1", "unschedulable": True, "n": 3},
    "status": {"phase": "Running"},
}
SUPPORTED = {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase",
             "spec.unschedulable", "spec.n", "spec.missing"}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("metadata.name=p-0", True),
        ("metadata.name==p-0", True),
        ("metadata.name=p-1", False),
        ("metadata.name!=p-1", True),
        ("status.phase!=Running", False),
        ("spec.nodeName=node-1,metadata.namespace=ns", True),
        ("spec.nodeName=node-1,metadata.namespace=other", False),
        ("spec.missing=", True),
        ("spec.missing!=", False),
        ("spec.nodeName=", False),
        ("spec.unschedulable=true", True),
        ("spec.n=3", True),
        ("metadata.name=p-0,,", True),
    ],
)
def test_field_selector_matches(text: str, expected: bool) -> None:
    assert parse_field_selector(text, supported=SUPPORTED).matches(POD) is expected


def test_field_selector_escapes_and_string() -> None:
    sel = parse_field_selector(r"metadata.name=a\,b\=c\\d", supported=SUPPORTED)
    assert sel.matches({"metadata": {"name": "a,b=c\\d"}})
    assert str(sel) == r"metadata.name=a\,b\=c\\d"
    sel = parse_field_selector("status.phase!=x,metadata.name==y", supported=SUPPORTED)
    assert str(sel) == "metadata.name=y,status.phase!=x"
    assert sel.equality_requirements() == {"metadata.name": "y"}
    assert parse_field_selector(None, supported=()).empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spec.foo=x", "field label not supported: spec.foo"),
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("metadata.name=a=b", "invalid field selector: unescaped character ="),
        (r"metadata.name=a\x", "invalid field selector: invalid escape sequence: \\x"),
        ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
        ("metadata.name = x", "field label not supported: metadata.name "),
    ],
)
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_field_selector(text, supported=SUPPORTED)
    assert str(info.value) == message


@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(SUPPORTED)),
            st.sampled_from(["=", "!="]),
            st.text(st.characters(codec="ascii", exclude_characters="\x00"), max_size=6),
        ),
        max_size=4,
    )
)
def test_field_selector_string_round_trips(terms: list[tuple[str, str, str]]) -> None:
    from kubetrain.cluster.apiserver.selectors import escape_field_value

    text = ",".join(f"{f}{op}{escape_field_value(v)}" for f, op, v in terms)
    sel = parse_field_selector(text, supported=SUPPORTED)
    assert sorted((t.field, t.equals, t.value) for t in sel) == sorted(
        (f, op == "=", v) for f, op, v in terms
    )
    assert parse_field_selector(str(sel), supported=SUPPORTED) == sel
