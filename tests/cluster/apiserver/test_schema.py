"""CRD structural schemas: kube-apiserver's messages, pruning and defaulting."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

# pytest puts this directory on sys.path (rootdir-relative "prepend" import mode).
from pytorchjob_schema import PYTORCHJOB_SCHEMA, pytorchjob

from kubetrain.cluster.apiserver.schema import Cause, SchemaError, StructuralSchema

SCHEMA = StructuralSchema(PYTORCHJOB_SCHEMA)
WORKER = ("spec", "pytorchReplicaSpecs", "Worker")
CONTAINER = "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0]"


def _at(obj: dict[str, Any], *path: str | int) -> Any:
    for part in path:
        obj = obj[part]  # type: ignore[index]
    return obj


def _container(job: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _at(job, *WORKER, "template", "spec", "containers", 0)
    return result


def test_valid_job_has_no_causes() -> None:
    assert SCHEMA.validate(pytorchjob()) == []


def test_type_error_is_worded_like_kube_apiserver() -> None:
    job = pytorchjob()
    job["spec"]["runPolicy"]["backoffLimit"] = "3"
    (cause,) = SCHEMA.validate(job)
    assert cause == Cause(
        "FieldValueTypeInvalid",
        'Invalid value: "string": spec.runPolicy.backoffLimit in body must be of type integer: '
        '"string"',
        "spec.runPolicy.backoffLimit",
    )
    assert cause.to_dict() == {
        "reason": "FieldValueTypeInvalid",
        "message": cause.message,
        "field": "spec.runPolicy.backoffLimit",
    }


def _mutate_and_validate(change: Any) -> list[Cause]:
    job = pytorchjob()
    change(job)
    return SCHEMA.validate(job)


@pytest.mark.parametrize(
    ("change", "reason", "field", "message"),
    [
        (
            lambda j: j["spec"].pop("pytorchReplicaSpecs"),
            "FieldValueRequired", "spec.pytorchReplicaSpecs", "Required value",
        ),
        (
            lambda j: _container(j).pop("name"),
            "FieldValueRequired", f"{CONTAINER}.name", "Required value",
        ),
        (
            lambda j: _at(j, *WORKER).update(restartPolicy="Sometimes"),
            "FieldValueNotSupported", "spec.pytorchReplicaSpecs.Worker.restartPolicy",
            'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never", '
            '"ExitCode"',
        ),
        (
            lambda j: _container(j)["ports"][0].update(name="x" * 16),
            "FieldValueTooLong", f"{CONTAINER}.ports[0].name",
            "Too long: may not be more than 15 bytes",
        ),
        (
            lambda j: _container(j)["ports"][0].update(containerPort=0),
            "FieldValueInvalid", f"{CONTAINER}.ports[0].containerPort",
            f"Invalid value: 0: {CONTAINER}.ports[0].containerPort in body should be greater than "
            "or equal to 1",
        ),
        (
            lambda j: _container(j)["ports"][0].update(containerPort=70000),
            "FieldValueInvalid", f"{CONTAINER}.ports[0].containerPort",
            f"Invalid value: 70000: {CONTAINER}.ports[0].containerPort in body should be less "
            "than or equal to 65535",
        ),
        (
            lambda j: j["spec"]["runPolicy"].update(activeDeadlineSeconds=0),
            "FieldValueInvalid", "spec.runPolicy.activeDeadlineSeconds",
            "Invalid value: 0: spec.runPolicy.activeDeadlineSeconds in body should be greater "
            "than 0",
        ),
        (
            lambda j: j["spec"].update(nprocPerNode="many"),
            "FieldValueInvalid", "spec.nprocPerNode",
            "Invalid value: \"many\": spec.nprocPerNode in body should match "
            "'^(auto|cpu|gpu|[0-9]+)$'",
        ),
        (
            lambda j: j["spec"].update(elasticPolicy={"metrics": [{}] * 5}),
            "FieldValueTooMany", "spec.elasticPolicy.metrics",
            "Too many: 5: must have at most 4 items",
        ),
        (
            lambda j: _container(j)["env"].append({"name": "LOGLEVEL", "value": "x"}),
            "FieldValueDuplicate", f"{CONTAINER}.env[2]",
            'Duplicate value: map[string]interface {}{"name":"LOGLEVEL"}',
        ),
        (
            lambda j: _container(j)["resources"]["limits"].update(cpu=True),
            "FieldValueTypeInvalid", f"{CONTAINER}.resources.limits.cpu",
            f'Invalid value: "boolean": {CONTAINER}.resources.limits.cpu in body must be of type '
            'integer,string: "boolean"',
        ),
        (
            lambda j: j["spec"]["runPolicy"].update(ttlSecondsAfterFinished=None, backoffLimit=None),
            None, None, None,  # non-nullable nulls are dropped, not errors
        ),
        (
            lambda j: j["spec"].update(pytorchReplicaSpecs=None),
            "FieldValueRequired", "spec.pytorchReplicaSpecs", "Required value",
        ),
        (
            lambda j: j["spec"]["runPolicy"].update(backoffLimit=2.0),
            None, None, None,  # an integral float is an integer for kube-openapi
        ),
        (
            lambda j: j["spec"]["runPolicy"].update(backoffLimit=2.5),
            "FieldValueTypeInvalid", "spec.runPolicy.backoffLimit",
            'Invalid value: "number": spec.runPolicy.backoffLimit in body must be of type '
            'integer: "number"',
        ),
    ],
)  # fmt: skip
def test_violation_messages(
    change: Any, reason: str | None, field: str | None, message: str | None
) -> None:
    causes = _mutate_and_validate(change)
    if reason is None:
        assert causes == []
    else:
        assert causes == [Cause(reason, message or "", field or "")]


def test_all_errors_are_reported() -> None:
    def change(job: dict[str, Any]) -> None:
        job["spec"]["runPolicy"]["backoffLimit"] = -1
        job["spec"]["nprocPerNode"] = "x"
        _container(job)["imagePullPolicy"] = "Sometimes"

    fields = {c.field for c in _mutate_and_validate(change)}
    assert fields == {"spec.runPolicy.backoffLimit", "spec.nprocPerNode",
                      f"{CONTAINER}.imagePullPolicy"}  # fmt: skip


def test_scalar_keywords() -> None:
    schema = StructuralSchema({
        "type": "object",
        "properties": {
            "s": {"type": "string", "minLength": 2, "format": "date-time"},
            "n": {"type": "number", "multipleOf": 0.5, "maximum": 10, "exclusiveMaximum": True},
            "set": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"},
                    "minItems": 1},
            "m": {"type": "object", "maxProperties": 1, "minProperties": 1,
                  "additionalProperties": {"type": "integer", "enum": [1, 2]}},
            "nul": {"type": "string", "nullable": True},
            "any": {"x-kubernetes-preserve-unknown-fields": True},
        },
    })  # fmt: skip
    ok = {"s": "2024-01-02T03:04:05Z", "n": 9.5, "set": ["a"], "m": {"a": 1}, "nul": None,
          "any": {"x": [1]}}  # fmt: skip
    assert schema.validate(ok) == []
    bad = {"s": "x", "n": 10, "set": ["a", "b", "a"], "m": {"a": True, "b": 3}}
    assert [(c.reason, c.field, c.message) for c in schema.validate(bad)] == [
        ("FieldValueInvalid", "s", 'Invalid value: "x": s in body should be at least 2 chars long'),
        ("FieldValueTypeInvalid", "s", 'Invalid value: "x": s in body must be of type date-time: "x"'),
        ("FieldValueInvalid", "n", "Invalid value: 10: n in body should be less than 10"),
        ("FieldValueDuplicate", "set[2]", 'Duplicate value: "a"'),
        ("FieldValueTooMany", "m", "Too many: 2: must have at most 1 item"),
        ("FieldValueTypeInvalid", "m.a", 'Invalid value: "boolean": m.a in body must be of type integer: "boolean"'),
        ("FieldValueNotSupported", "m.b", 'Unsupported value: 3: supported values: "1", "2"'),
    ]  # fmt: skip
    assert [c.message for c in schema.validate({"n": 0.7, "set": [], "m": {}})] == [
        "Invalid value: 0.7: n in body should be a multiple of 0.5",
        "Invalid value: 0: set in body should have at least 1 items",
        "Invalid value: 0: m in body should have at least 1 properties",
    ]


def test_combinators() -> None:
    schema = StructuralSchema({
        "type": "object",
        "properties": {
            "one": {"type": "integer", "oneOf": [{"minimum": 5}, {"maximum": 10}]},
            "not": {"type": "string", "not": {"enum": ["forbidden"]}},
        },
    })  # fmt: skip
    assert schema.validate({"one": 1, "not": "ok"}) == []
    messages = [c.message for c in schema.validate({"one": 7, "not": "forbidden"})]
    assert messages == [
        'Invalid value: "": "one" must validate one and only one schema (oneOf). '
        "Found 2 valid alternatives",
        'Invalid value: "": "not" must not validate the schema (not)',
    ]


def test_prune_removes_unknown_fields_and_keeps_resource_fields() -> None:
    job = pytorchjob()
    job["spec"]["unknown"] = {"x": 1}
    job["spec"]["runPolicy"]["typo"] = 1
    _container(job)["bogus"] = True
    _container(job)["env"][0]["valueFrom"] = {"secretKeyRef": {"name": "s"}}  # preserved
    job["status"] = {"anything": {"goes": [1, 2]}}
    job["extra"] = 1
    removed = SCHEMA.prune(job)
    assert removed == [
        "extra",
        "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].bogus",
        "spec.runPolicy.typo",
        "spec.unknown",
    ]
    assert job["metadata"] == pytorchjob()["metadata"]  # root metadata never pruned
    assert job["status"] == {"anything": {"goes": [1, 2]}}
    assert _container(job)["env"][0]["valueFrom"] == {"secretKeyRef": {"name": "s"}}
    assert "bogus" not in _container(job)
    assert SCHEMA.prune(job) == []


def test_embedded_resource_keeps_type_and_object_meta() -> None:
    schema = StructuralSchema({
        "type": "object",
        "properties": {"tmpl": {"type": "object", "x-kubernetes-embedded-resource": True,
                                "properties": {"spec": {"type": "object"}}}},
    })  # fmt: skip
    obj = {"tmpl": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
                    "spec": {"x": 1}, "other": 1}}  # fmt: skip
    assert schema.prune(obj) == ["tmpl.other", "tmpl.spec.x"]
    assert obj == {"tmpl": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
                            "spec": {}}}  # fmt: skip


def test_defaults_fill_missing_and_null_fields_recursively() -> None:
    schema = StructuralSchema({
        "type": "object",
        "properties": {
            "policy": {"type": "object", "default": {},
                       "properties": {"mode": {"type": "string", "default": "auto"},
                                      "n": {"type": "integer", "default": 3}}},
            "keep": {"type": "string", "nullable": True, "default": "d"},
            "drop": {"type": "string"},
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "p": {"type": "string", "default": "TCP"}}}},
        },
    })  # fmt: skip
    obj: dict[str, Any] = {"keep": None, "drop": None, "items": [{}, {"p": "UDP"}]}
    schema.apply_defaults(obj)
    assert obj == {
        "policy": {"mode": "auto", "n": 3},
        "keep": None,
        "items": [{"p": "TCP"}, {"p": "UDP"}],
    }
    obj2: dict[str, Any] = {"policy": {"n": 1}}
    schema.apply_defaults(obj2)
    assert obj2["policy"] == {"n": 1, "mode": "auto"}
    # defaults are copies, never shared with the schema or between objects
    obj["policy"]["mode"] = "changed"
    obj3: dict[str, Any] = {}
    schema.apply_defaults(obj3)
    assert obj3["policy"] == {"mode": "auto", "n": 3}


def test_pytorchjob_defaults() -> None:
    job = pytorchjob()
    SCHEMA.apply_defaults(job)
    assert job["spec"]["runPolicy"]["cleanPodPolicy"] == "None"
    assert job["spec"]["runPolicy"]["suspend"] is False
    assert _container(job)["ports"][0]["protocol"] == "TCP"


def test_bad_pattern_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match=r"spec\.x: pattern"):
        StructuralSchema({"type": "object", "properties": {"spec": {"type": "object",
                          "properties": {"x": {"type": "string", "pattern": "("}}}}})  # fmt: skip


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["spec", "status", "runPolicy", "backoffLimit", "x", "metadata",
                         "pytorchReplicaSpecs", "Worker", "template", "replicas"]),
        inner, max_size=4),
    max_leaves=15,
)  # fmt: skip


@given(st.dictionaries(st.sampled_from(["spec", "status", "kind", "junk"]), _json, max_size=4))
def test_prune_is_idempotent_and_only_removes(obj: dict[str, Any]) -> None:
    before = copy.deepcopy(obj)
    first = SCHEMA.prune(obj)
    once = copy.deepcopy(obj)
    assert SCHEMA.prune(obj) == []
    assert obj == once
    assert len(first) == len(set(first))
    if not first:
        assert obj == before


@given(st.dictionaries(st.sampled_from(["spec", "status"]), _json, max_size=2))
def test_defaults_are_idempotent(obj: dict[str, Any]) -> None:
    SCHEMA.prune(obj)
    SCHEMA.apply_defaults(obj)
    once = copy.deepcopy(obj)
    SCHEMA.apply_defaults(obj)
    assert obj == once
