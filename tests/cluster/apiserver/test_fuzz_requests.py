"""Bad input to the embedded API server, fuzzed with hypothesis (issue 15).

Malformed JSON and YAML, wrong types, deep nesting, invalid names and labels, bodies over
kube-apiserver's 3 MiB request limit, unknown fields, patches that do not apply and bad query
parameters, against built-in resources (pods, configmaps, namespaces, services) and custom
resources (the helpers' Widget CRD and the operator's PyTorchJob CRD). Every refused request
must be answered with a 4xx whose body is a kube ``Status`` (``kind: Status``, ``apiVersion:
v1``, ``status: Failure``, a message, a reason, ``code`` equal to the HTTP status): never a 500,
never a crash or a hang. Afterwards the server still answers, and the store is unchanged: the
store's resourceVersion (a LIST's ``metadata.resourceVersion``) and the target's seed object
(its stored bytes) are what they were before the request.

One EmbeddedCluster serves the whole module (starting one per example would be too slow);
hypothesis examples reach it over real HTTP. Fuzz cases per run (``max_examples``; times
``KUBETRAIN_FUZZ_SCALE`` for a longer hunt):

==============================================================  ========
property                                                        examples
==============================================================  ========
test_random_bytes_are_refused                                         60
test_malformed_json_is_refused                                        60
test_malformed_yaml_is_refused                                        40
test_json_of_a_wrong_top_level_type_is_refused                        30
test_fields_of_a_wrong_type_are_refused                               80
test_deep_nesting_is_refused                                          20
test_moderate_nesting_is_answered                                     20
test_arbitrary_objects_never_fail_the_server                          80
test_invalid_names_are_refused                                        40
test_invalid_names_in_the_path_are_not_found                          20
test_invalid_labels_annotations_finalizers_are_refused                60
test_unknown_fields_are_refused_under_strict                          30
test_kind_version_name_namespace_mismatches_are_refused               40
test_bodies_over_the_limit_are_refused_with_413                        8
test_json_patches_that_do_not_apply_are_refused                       60
test_merge_and_strategic_patches_that_do_not_apply_are_refused        50
test_apply_patches_that_do_not_apply_are_refused                      40
test_unsupported_patch_content_types_are_refused                      20
test_selectors_and_paging_parameters_never_fail_the_server            60
test_bad_write_and_delete_parameters_are_refused                      50
test_bad_watch_parameters_are_refused_before_streaming                20
==============================================================  ========

888 fuzzed requests in all, plus fixed cases: ``NASTY_YAML`` (25 documents, each POSTed, PUT
and applied to a configmap and a widget: 150 requests) and ``REGRESSIONS`` (34, each bug the
fuzzing found with the answer it got before its fix) and a few focused tests.
"""

from __future__ import annotations

import copy
import os
import re
import string
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
import pytest_asyncio
import yaml
from apiserver_helpers import Raw, create_crd, widget, widget_crd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.reconcilers.api.crds import crd as job_crd
from kubetrain.reconcilers.api.kinds import PYTORCHJOB

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.embedded_only(reason="one embedded server for the module, its limits and fixes"),
]

LIMIT = 3 * 1024 * 1024  # kube-apiserver's MaxRequestBodyBytes
JSON = "application/json"
YAML = "application/yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
NS = "fuzz"  # the namespace of the namespaced targets


#: multiplies every property's examples (``KUBETRAIN_FUZZ_SCALE=20`` for a long hunt)
FUZZ_SCALE = int(os.environ.get("KUBETRAIN_FUZZ_SCALE", "1"))


def fuzz_settings(examples: int) -> settings:
    """``examples`` fuzz cases (times ``FUZZ_SCALE``), no per-example deadline (a shared 2-core
    machine), no example database written into the checkout."""
    return settings(
        max_examples=examples * FUZZ_SCALE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- targets -----------------------------------------------------------------------------------

EXAMPLE_JOB = Path(__file__).parents[3] / "kubetrain" / "examples" / "pytorchjob.yaml"


def _pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "fuzz"}, "annotations": {"note": "x"}},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1.36",
                    "ports": [{"containerPort": 80}],
                    "resources": {"limits": {"cpu": "1", "memory": "64Mi"}},
                }
            ],
            "terminationGracePeriodSeconds": 5,
        },
    }


def _configmap(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "fuzz"}},
        "data": {"key": "value"},
    }


def _namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app": "fuzz"}},
        "spec": {"finalizers": ["kubernetes"]},
    }


def _service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": "fuzz"}},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "fuzz"}},
    }


def _widget(name: str) -> dict[str, Any]:
    body = widget(name, size=3, free={"any": ["thing"]})
    body["metadata"]["labels"] = {"app": "fuzz"}
    return body


def _job(name: str) -> dict[str, Any]:
    job: dict[str, Any] = yaml.safe_load(EXAMPLE_JOB.read_text())
    job["metadata"] = {"name": name, "labels": {"app": "fuzz"}}
    return job


@dataclass(frozen=True)
class Target:
    """A resource under test: where to POST, its seed object (PUT/PATCH/DELETE target), a
    valid body for a name, and the paths whose type the server checks (with ``metadata``'s)."""

    resource: str
    collection: str
    seed: str
    body: Callable[[str], dict[str, Any]]
    builtin: bool
    typed: tuple[tuple[str | int, ...], ...]
    namespaced: bool = True

    @property
    def seed_name(self) -> str:
        return self.seed.rsplit("/", 1)[1]

    def item(self, name: str) -> str:
        return f"{self.collection}/{quote(name, safe='')}"


_META_TYPED: tuple[tuple[str | int, ...], ...] = (
    ("apiVersion",),
    ("kind",),
    ("metadata",),
    ("metadata", "name"),
    ("metadata", "labels"),
    ("metadata", "labels", "app"),
    ("metadata", "finalizers"),
    ("metadata", "ownerReferences"),
    ("metadata", "generation"),
)
_CORE = "/api/v1"
TARGETS: dict[str, Target] = {
    "pods": Target(
        "pods",
        f"{_CORE}/namespaces/{NS}/pods",
        f"{_CORE}/namespaces/{NS}/pods/seed",
        _pod,
        True,
        (
            ("metadata", "annotations"),
            ("metadata", "annotations", "note"),
            ("spec",),
            ("spec", "containers"),
            ("spec", "containers", 0),
            ("spec", "containers", 0, "name"),
            ("spec", "containers", 0, "image"),
            ("spec", "containers", 0, "ports"),
            ("spec", "containers", 0, "ports", 0),
            ("spec", "containers", 0, "ports", 0, "containerPort"),
            ("spec", "containers", 0, "resources"),
            ("spec", "containers", 0, "resources", "limits"),
            ("spec", "terminationGracePeriodSeconds"),
        ),
    ),
    "configmaps": Target(
        "configmaps",
        f"{_CORE}/namespaces/{NS}/configmaps",
        f"{_CORE}/namespaces/{NS}/configmaps/seed",
        _configmap,
        True,
        (("data",), ("data", "key")),
    ),
    "namespaces": Target(
        "namespaces",
        f"{_CORE}/namespaces",
        f"{_CORE}/namespaces/fuzz-seed",
        _namespace,
        True,
        (("spec",), ("spec", "finalizers"), ("spec", "finalizers", 0)),
        namespaced=False,
    ),
    "services": Target(
        "services",
        f"{_CORE}/namespaces/{NS}/services",
        f"{_CORE}/namespaces/{NS}/services/seed",
        _service,
        True,
        (
            ("spec",),
            ("spec", "ports"),
            ("spec", "ports", 0),
            ("spec", "ports", 0, "port"),
            ("spec", "selector"),
            ("spec", "selector", "app"),
        ),
    ),
    "widgets": Target(
        "widgets",
        f"/apis/example.com/v1/namespaces/{NS}/widgets",
        f"/apis/example.com/v1/namespaces/{NS}/widgets/seed",
        _widget,
        False,
        (("spec",), ("spec", "size"), ("spec", "free")),
    ),
    "pytorchjobs": Target(
        "pytorchjobs",
        f"/apis/kubeflow.org/v1/namespaces/{NS}/pytorchjobs",
        f"/apis/kubeflow.org/v1/namespaces/{NS}/pytorchjobs/seed",
        _job,
        False,
        (
            ("spec",),
            ("spec", "pytorchReplicaSpecs"),
            ("spec", "pytorchReplicaSpecs", "Master"),
            ("spec", "pytorchReplicaSpecs", "Master", "replicas"),
            ("spec", "pytorchReplicaSpecs", "Master", "template", "spec", "containers"),
        ),
    ),
}
BUILTIN = [t for t in TARGETS.values() if t.builtin]
CUSTOM = [t for t in TARGETS.values() if not t.builtin]
targets = st.sampled_from(list(TARGETS.values()))


@dataclass
class Env:
    raw: Raw
    cluster: EmbeddedCluster


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> AsyncIterator[Env]:
    """One cluster for the module, the CRDs served and every target's seed object created."""
    async with EmbeddedCluster() as cluster, aiohttp.ClientSession() as session:
        raw = Raw(cluster.url, session)
        await create_crd(raw, widget_crd())
        await create_crd(raw, job_crd(PYTORCHJOB))
        status, body, _ = await raw.post(f"{_CORE}/namespaces", _namespace(NS))
        assert status == 201, body
        for target in TARGETS.values():
            status, body, _ = await raw.post(target.collection, target.body(target.seed_name))
            assert status == 201, body
        yield Env(raw, cluster)


# -- the checks ---------------------------------------------------------------------------------


async def snapshot(env: Env, target: Target) -> tuple[str, bytes]:
    """The store's resourceVersion (a LIST's) and the seed object's bytes; asserts both are
    answered, i.e. that the server still serves."""
    async with env.raw.session.get(env.raw.base + target.collection, params={"limit": "1"}) as r:
        assert r.status == 200, await r.text()
        listed = orjson.loads(await r.read())
    async with env.raw.session.get(env.raw.base + target.seed) as r:
        assert r.status == 200, await r.text()
        seed = await r.read()
    return listed["metadata"]["resourceVersion"], seed


def assert_status(status: int, body: Any, codes: frozenset[int] | None = None) -> None:
    """``status`` is a 4xx (one of ``codes`` when given) and ``body`` the kube Status for it."""
    seen = f"{status} {body!r}"[:3000]  # in full: pytest would shorten the values
    assert 400 <= status < 500, seen
    if codes is not None:
        assert status in codes, seen
    assert isinstance(body, dict), seen
    assert body.get("kind") == "Status", seen
    assert body.get("apiVersion") == "v1", seen
    assert body.get("status") == "Failure", seen
    assert isinstance(body.get("message"), str) and body["message"], seen
    assert isinstance(body.get("reason"), str) and body["reason"], seen
    assert body.get("code") == status, seen


async def refused(
    env: Env,
    target: Target,
    method: str,
    path: str,
    data: bytes | None,
    *,
    content_type: str | None = JSON,
    params: dict[str, str] | None = None,
    codes: frozenset[int] | None = None,
) -> dict[str, Any]:
    """Send the request; assert a 4xx Status (``codes`` when given) and an unchanged store;
    return the Status."""
    before = await snapshot(env, target)
    headers = {"Content-Type": content_type} if content_type is not None else {}
    skip = ("Content-Type",) if content_type is None else ()
    async with env.raw.session.request(
        method,
        env.raw.base + path,
        data=data,
        params=params,
        headers=headers,
        skip_auto_headers=skip,
        timeout=aiohttp.ClientTimeout(total=15),
    ) as resp:
        text = await resp.read()
        status = resp.status
    try:
        body = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        body = text[:300]
    assert_status(status, body, codes)
    assert await snapshot(env, target) == before, f"{method} {path} changed the store"
    return dict(body)


BAD_REQUEST = frozenset({400})
REFUSED_BODY = frozenset({400, 422})
INVALID = frozenset({422})


async def current(env: Env, target: Target) -> dict[str, Any]:
    """The seed object as stored now."""
    status, body, _ = await env.raw.get(target.seed)
    assert status == 200, body
    return dict(body)


def json_bytes(value: Any) -> bytes:
    return orjson.dumps(value)


# -- strategies -----------------------------------------------------------------------------------

_INT = st.integers(-(2**63), 2**63 - 1)  # what JSON carries to Go's int64
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def wrong_for(value: Any) -> st.SearchStrategy[Any]:
    """Values whose JSON type is not ``value``'s (never null: Go decodes it as the zero
    value, so it is no type error)."""
    kind = _json_kind(value)
    options: list[st.SearchStrategy[Any]] = []
    if kind != "bool":
        options.append(st.booleans())
    if kind != "number":
        options.append(st.integers(-1000, 10**12))
    if kind != "string":
        options.append(st.text(max_size=6))
    if kind != "array":
        options.append(st.lists(json_scalars.filter(lambda v: v is not None), max_size=2))
    if kind != "object":
        options.append(st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2))
    return st.one_of(options)


_ABSENT_META = {"finalizers": ["example.com/f"], "ownerReferences": [], "generation": 1}


def get_path(obj: Any, path: tuple[str | int, ...]) -> Any:
    """The value at ``path`` (a valid one for the metadata fields a valid body leaves out)."""
    if len(path) == 2 and path[0] == "metadata" and path[1] not in obj["metadata"]:
        return _ABSENT_META[str(path[1])]
    for part in path:
        obj = obj[part]
    return obj


def set_path(obj: Any, path: tuple[str | int, ...], value: Any) -> None:
    for part in path[:-1]:
        obj = obj[part]
    obj[path[-1]] = value


def json_pointer(path: tuple[str | int, ...]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def without_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without what the server sets (a body to send back as a whole)."""
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        meta.pop(key, None)
    out.pop("status", None)
    return out


# -- bodies that are not JSON or YAML objects ----------------------------------------------------


def _parses_to_object(data: bytes, content_type: str | None) -> bool:
    try:
        if content_type == YAML:
            return isinstance(yaml.safe_load(data), dict)
        return isinstance(orjson.loads(data), dict)
    except Exception:
        return False


@fuzz_settings(60)
@given(
    target=targets,
    method=st.sampled_from(["POST", "PUT"]),
    content_type=st.sampled_from([JSON, YAML, None]),
    data=st.binary(max_size=300) | st.text(max_size=200).map(str.encode),
)
async def test_random_bytes_are_refused(
    env: Env, target: Target, method: str, content_type: str | None, data: bytes
) -> None:
    assume(not _parses_to_object(data, content_type))
    path = target.collection if method == "POST" else target.seed
    await refused(env, target, method, path, data, content_type=content_type, codes=BAD_REQUEST)


_STRUCTURAL = ["{", "}", "[", "]", ",", ":", '"', "'", "\\", "\x00", "NaN", "//", "\n", "tru"]


@st.composite
def malformed_json(draw: st.DrawFn, target: Target) -> bytes:
    """A valid body of ``target`` broken: cut short, or a structural character put in, taken
    out or doubled, or trailing garbage."""
    text = orjson.dumps(target.body("fuzz-json")).decode()
    how = draw(st.sampled_from(["truncate", "insert", "delete", "trail"]))
    if how == "truncate":
        return text[: draw(st.integers(0, len(text) - 1))].encode()
    at = draw(st.integers(0, len(text) - 1))
    if how == "insert":
        return (text[:at] + draw(st.sampled_from(_STRUCTURAL)) + text[at:]).encode()
    if how == "delete":
        return (text[:at] + text[at + 1 :]).encode()
    return (text + draw(st.sampled_from([*_STRUCTURAL, "x", "{}", " 1"]))).encode()


@fuzz_settings(60)
@given(data=st.data(), target=targets, method=st.sampled_from(["POST", "PUT"]))
async def test_malformed_json_is_refused(
    env: Env, data: st.DataObject, target: Target, method: str
) -> None:
    body = data.draw(malformed_json(target))
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    else:
        assume(False)  # still JSON: not this property's input
    path = target.collection if method == "POST" else target.seed
    await refused(env, target, method, path, body, codes=BAD_REQUEST)


#: YAML documents that must never get through: malformed, unsafe tags, alias bombs, recursion,
#: nesting deeper than any parser stack, values JSON cannot hold.
NASTY_YAML: dict[str, bytes] = {
    "unclosed flow mapping": b"metadata: {name: x\n",
    "unclosed flow sequence": b"spec: [1, 2\n",
    "bad indentation": b"metadata:\n  name: x\n    labels: y\n",
    "tab indentation": b"metadata:\n\tname: x\n",
    "unclosed quote": b'metadata: {name: "x}\n',
    "undefined alias": b"metadata: *nothing\n",
    "duplicate anchor use before definition": b"a: *x\nb: &x 1\n",
    "python object tag": b"metadata: !!python/object:os.system {}\n",
    "python name tag": b"metadata: !!python/name:os.system\n",
    "unknown tag": b"metadata: !kubetrain {name: x}\n",
    "two documents": b"metadata: {name: a}\n---\nmetadata: {name: b}\n",
    "recursive alias": b"a: &a [*a]\nmetadata: {name: x}\n",
    "recursive mapping alias": b"a: &a {b: *a}\nmetadata: {name: x}\n",
    "billion laughs": (
        b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            b"%s: &%s [%s]\n" % (n, n, b", ".join([b"*" + p] * 10))
            for p, n in zip(
                [b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h"],
                [b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"i"],
                strict=True,
            )
        )
        + b"metadata: {name: x}\n"
    ),
    "deep flow nesting": b"spec: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "deep block nesting": b"".join(b"  " * i + b"a:\n" for i in range(3000))
    + b"  " * 3000
    + b"1\n",
    "binary value": b"metadata: {name: x}\ndata: !!binary aGVsbG8=\n",
    "set value": b"metadata: {name: x}\nspec: !!set {a, b}\n",
    "complex key": b"metadata: {name: x}\n? [a, b]\n: c\n",
    "a list": b"- metadata: {name: x}\n",
    "a scalar": b"just a string\n",
    "a number": b"42\n",
    "null document": b"~\n",
    "not utf-8": b"metadata: {name: \xff\xfe}\n",
    "date as the name": b"metadata: {name: 2020-01-01, labels: {a: b c}}\n",
}


@pytest.mark.parametrize("case", sorted(NASTY_YAML))
@pytest.mark.parametrize("resource", ["configmaps", "widgets"])
async def test_nasty_yaml_is_refused(env: Env, case: str, resource: str) -> None:
    target = TARGETS[resource]
    for method, path, ctype in (
        ("POST", target.collection, YAML),
        ("PUT", target.seed, YAML),
        ("PATCH", target.seed + "?fieldManager=fuzz", APPLY),
    ):
        await refused(env, target, method, path, NASTY_YAML[case], content_type=ctype)


@st.composite
def malformed_yaml(draw: st.DrawFn, target: Target) -> bytes:
    """A valid YAML body of ``target`` with a structural character put in or trailing."""
    text = yaml.safe_dump(target.body("fuzz-yaml"))
    at = draw(st.integers(0, len(text) - 1))
    junk = draw(
        st.sampled_from(
            ["{", "[", "]", "}", '"', "'", "\t", ": :", "&", "*", "!", "%", "@", "`", "|\n x"]
        )
    )
    if draw(st.booleans()):
        return (text[:at] + junk + text[at:]).encode()
    return (text + junk).encode()


@fuzz_settings(40)
@given(data=st.data(), target=targets, method=st.sampled_from(["POST", "PUT", "APPLY"]))
async def test_malformed_yaml_is_refused(
    env: Env, data: st.DataObject, target: Target, method: str
) -> None:
    body = data.draw(malformed_yaml(target))
    try:
        yaml.safe_load(body)
    except yaml.YAMLError:
        pass
    else:
        assume(False)
    if method == "APPLY":
        await refused(
            env, target, "PATCH", target.seed, body, content_type=APPLY,
            params={"fieldManager": "fuzz"}, codes=BAD_REQUEST,
        )  # fmt: skip
    else:
        path = target.collection if method == "POST" else target.seed
        await refused(env, target, method, path, body, content_type=YAML, codes=BAD_REQUEST)


@fuzz_settings(30)
@given(
    target=targets,
    method=st.sampled_from(["POST", "PUT"]),
    content_type=st.sampled_from([JSON, YAML]),
    value=json_scalars | st.lists(json_values, max_size=3),
)
async def test_json_of_a_wrong_top_level_type_is_refused(
    env: Env, target: Target, method: str, content_type: str, value: Any
) -> None:
    data = json_bytes(value)  # JSON is YAML too
    path = target.collection if method == "POST" else target.seed
    await refused(env, target, method, path, data, content_type=content_type, codes=BAD_REQUEST)


# -- fields of the wrong type ----------------------------------------------------------------------

VERBS = ["POST", "PUT", "MERGE", "JSONPATCH", "STRATEGIC", "APPLY"]


async def send_modified(
    env: Env,
    target: Target,
    verb: str,
    path: tuple[str | int, ...],
    value: Any,
    *,
    codes: frozenset[int] | None,
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Set ``path`` to ``value`` in a body of ``target`` sent by ``verb`` (a create, an update
    of the seed, or a patch of the seed of each kind); assert it is refused."""
    extra = dict(params or {})
    if verb == "POST":
        body = target.body("fuzz-new")
        set_path(body, path, value)
        return await refused(
            env, target, "POST", target.collection, json_bytes(body), params=extra, codes=codes
        )
    seed = await current(env, target)
    if verb == "JSONPATCH":
        ops = [{"op": "add", "path": json_pointer(path), "value": value}]
        return await refused(
            env, target, "PATCH", target.seed, json_bytes(ops),
            content_type=JSON_PATCH, params=extra, codes=codes,
        )  # fmt: skip
    body = without_server_fields(seed)
    if verb == "PUT":
        body["metadata"]["resourceVersion"] = seed["metadata"]["resourceVersion"]
    set_path(body, path, value)
    if verb == "PUT":
        return await refused(
            env, target, "PUT", target.seed, json_bytes(body), params=extra, codes=codes
        )
    if verb == "APPLY":
        extra.update(fieldManager="fuzz", force="true")
        return await refused(
            env, target, "PATCH", target.seed, yaml.safe_dump(body).encode(),
            content_type=APPLY, params=extra, codes=codes,
        )  # fmt: skip
    ctype = MERGE if verb == "MERGE" else STRATEGIC
    if ctype == STRATEGIC and not target.builtin:
        codes = frozenset({415})  # no strategic merge patch for custom resources, as kube
    return await refused(
        env, target, "PATCH", target.seed, json_bytes(body),
        content_type=ctype, params=extra, codes=codes,
    )  # fmt: skip


@st.composite
def typed_field(draw: st.DrawFn) -> tuple[Target, tuple[str | int, ...], Any]:
    target = draw(targets)
    path = draw(st.sampled_from(_META_TYPED + target.typed))
    valid = get_path(target.body("fuzz-new"), path)
    return target, path, draw(wrong_for(valid))


@fuzz_settings(80)
@given(case=typed_field(), verb=st.sampled_from(VERBS))
async def test_fields_of_a_wrong_type_are_refused(
    env: Env, case: tuple[Target, tuple[str | int, ...], Any], verb: str
) -> None:
    target, path, value = case
    await send_modified(env, target, verb, path, value, codes=REFUSED_BODY)


# -- nesting ---------------------------------------------------------------------------------------


def nested(depth: int, leaf: Any, container: str) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if container == "list" else {"a": value}
    return value


NEST_PLACES: dict[str, tuple[str | int, ...]] = {
    "top level": ("deep",),
    "metadata": ("metadata", "annotations"),
    "labels": ("metadata", "labels", "app"),
    "spec": ("spec",),
}


@fuzz_settings(20)
@given(
    target=targets,
    depth=st.integers(1100, 6000),
    container=st.sampled_from(["list", "dict"]),
    place=st.sampled_from(sorted(NEST_PLACES)),
    verb=st.sampled_from(["POST", "PUT", "MERGE", "JSONPATCH", "YAML"]),
)
async def test_deep_nesting_is_refused(
    env: Env, target: Target, depth: int, container: str, place: str, verb: str
) -> None:
    """Thousands of levels: refused by the parser (orjson stops at 1024, the YAML parser at
    its stack), before anything walks the tree."""
    path = NEST_PLACES[place]
    value = nested(depth, "x", container)
    if verb == "YAML":  # flow-style YAML: the JSON text
        body = target.body("fuzz-deep")
        set_path(body, path, value)
        data = _deep_json(body)
        await refused(
            env, target, "POST", target.collection, data, content_type=YAML, codes=BAD_REQUEST
        )
        return
    await send_modified_raw(env, target, verb, path, value)


def _deep_json(value: Any) -> bytes:
    """JSON of ``value`` at any depth (orjson stops at 1024 levels)."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item.text)
        elif isinstance(item, dict):
            out.append("{")
            parts: list[Any] = []
            for i, (k, v) in enumerate(item.items()):
                if i:
                    parts.append(_Text(","))
                parts.extend([_Text(orjson.dumps(k).decode() + ":"), v])
            parts.append(_Text("}"))
            stack.extend(reversed(parts))
        elif isinstance(item, list):
            out.append("[")
            parts = []
            for i, v in enumerate(item):
                if i:
                    parts.append(_Text(","))
                parts.append(v)
            parts.append(_Text("]"))
            stack.extend(reversed(parts))
        else:
            out.append(orjson.dumps(item).decode())
    return "".join(out).encode()


@dataclass(frozen=True)
class _Text:
    text: str


async def send_modified_raw(
    env: Env, target: Target, verb: str, path: tuple[str | int, ...], value: Any
) -> None:
    """As ``send_modified`` for values orjson cannot serialize (too deep): JSON written here."""
    if verb == "POST":
        body = target.body("fuzz-deep")
        set_path(body, path, value)
        await refused(env, target, "POST", target.collection, _deep_json(body), codes=BAD_REQUEST)
        return
    seed = await current(env, target)
    if verb == "JSONPATCH":
        ops = [{"op": "add", "path": json_pointer(path), "value": value}]
        await refused(
            env, target, "PATCH", target.seed, _deep_json(ops),
            content_type=JSON_PATCH, codes=BAD_REQUEST,
        )  # fmt: skip
        return
    body = without_server_fields(seed)
    set_path(body, path, value)
    if verb == "PUT":
        await refused(env, target, "PUT", target.seed, _deep_json(body), codes=BAD_REQUEST)
        return
    await refused(
        env, target, "PATCH", target.seed, _deep_json(body), content_type=MERGE, codes=BAD_REQUEST
    )


@fuzz_settings(20)
@given(
    depth=st.integers(95, 105) | st.integers(50, 1023),
    container=st.sampled_from(["list", "dict"]),
    verb=st.sampled_from(["POST", "PUT", "MERGE", "JSONPATCH", "APPLY"]),
)
async def test_moderate_nesting_is_answered(
    env: Env, depth: int, container: str, verb: str
) -> None:
    """Up to a thousand levels under a Widget's ``spec.free`` (x-kubernetes-preserve-unknown-
    fields, where anything goes): stored up to the server's 100 levels, refused with a Status
    past them and the store left as it was; never a server error. (A create, or a write to an
    object created for the example, deleted after.)"""
    target = TARGETS["widgets"]
    name = "fuzz-moderate"
    value = nested(depth - 3, "x", container)  # the object, spec and spec.free hold it
    body = target.body(name)
    body["spec"]["free"] = {"deep": value}
    if verb != "POST":
        status, created, _ = await env.raw.post(target.collection, target.body(name))
        assert status == 201, created
        body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    item = target.item(name)
    requests: dict[str, tuple[str, str, bytes, str, dict[str, str] | None]] = {
        "POST": ("POST", target.collection, _deep_json(body), JSON, None),
        "PUT": ("PUT", item, _deep_json(body), JSON, None),
        "MERGE": ("PATCH", item, _deep_json({"spec": {"free": {"deep": value}}}), MERGE, None),
        "JSONPATCH": (
            "PATCH", item, _deep_json([{"op": "add", "path": "/spec/free/deep", "value": value}]),
            JSON_PATCH, None,
        ),
        "APPLY": ("PATCH", item, _deep_json(body), APPLY, {"fieldManager": "fuzz", "force": "1"}),
    }  # fmt: skip
    method, path, data, ctype, params = requests[verb]
    before = await snapshot(env, target)
    try:
        status, answer, _ = await env.raw.call(
            method, path, raw=data, content_type=ctype, params=params
        )
        if depth > 100:
            assert_status(status, answer, BAD_REQUEST)
            assert "exceeded max depth of 100" in answer["message"], answer
            assert await snapshot(env, target) == before
        else:
            assert status in (200, 201), answer
    finally:
        await env.raw.delete(item)


# -- anything at all -------------------------------------------------------------------------------

_META_FIELDS = [
    "name", "generateName", "namespace", "labels", "annotations", "finalizers",
    "ownerReferences", "managedFields", "resourceVersion", "uid", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "zz",
]  # fmt: skip
_TOP_FIELDS = ["apiVersion", "kind", "metadata", "spec", "status", "data", "zz"]
_victims = iter(range(10**9))


@st.composite
def anything(draw: st.DrawFn, target: Target) -> dict[str, Any]:
    """A valid body of ``target`` with random values in random metadata and top-level fields
    and random values deep in its spec: sometimes still valid, mostly not."""
    body = target.body("victim")
    for key, value in draw(st.dictionaries(st.sampled_from(_META_FIELDS), json_values, max_size=3)).items():  # fmt: skip
        body["metadata"][key] = value
    for key, value in draw(st.dictionaries(st.sampled_from(_TOP_FIELDS), json_values, max_size=2)).items():  # fmt: skip
        body[key] = value
    paths = [p for p in target.typed if p[0] in body and not isinstance(body[p[0]], str)]
    if paths and draw(st.booleans()):
        path = draw(st.sampled_from(paths))
        try:
            set_path(body, path, draw(json_values))
        except (KeyError, IndexError, TypeError):
            pass  # the path is gone: a random value replaced what held it
    return body


async def _remove(env: Env, path: str) -> None:
    """Delete the object at ``path`` now, finalizers and grace period notwithstanding."""
    await env.raw.delete(path, params={"gracePeriodSeconds": "0"})
    status, _, _ = await env.raw.get(path)
    if status == 200:
        await env.raw.patch(path, {"metadata": {"finalizers": None}})
        await env.raw.delete(path, params={"gracePeriodSeconds": "0"})
    status, body, _ = await env.raw.get(path)
    assert status == 404, body


@fuzz_settings(80)
@given(
    data=st.data(),
    target=st.sampled_from([t for t in TARGETS.values() if t.namespaced]),
    verb=st.sampled_from(["POST", "PUT", "MERGE", "STRATEGIC", "APPLY"]),
)
async def test_arbitrary_objects_never_fail_the_server(
    env: Env, data: st.DataObject, target: Target, verb: str
) -> None:
    """Random values anywhere in an object, written every way: accepted, or refused with a
    Status and the store unchanged; never a server error. (Writes go to an object made for
    the example, deleted after: namespaces are left out, their deletion is asynchronous.)"""
    body = data.draw(anything(target))
    name = f"victim-{next(_victims)}"
    if verb != "POST":
        status, created, _ = await env.raw.post(target.collection, target.body(name))
        assert status == 201, created
    item = target.item(name)
    meta = body.get("metadata")
    if isinstance(meta, dict) and verb != "POST":
        meta["name"] = name
    ctype, method, path, params = {
        "POST": (JSON, "POST", target.collection, {}),
        "PUT": (JSON, "PUT", item, {}),
        "MERGE": (MERGE, "PATCH", item, {}),
        "STRATEGIC": (STRATEGIC, "PATCH", item, {}),
        "APPLY": (APPLY, "PATCH", item, {"fieldManager": "fuzz", "force": "true"}),
    }[verb]
    before = await snapshot(env, target)
    status, answer, _ = await env.raw.call(
        method, path, raw=json_bytes(body), content_type=ctype, params=params
    )
    try:
        if status >= 400:
            assert_status(status, answer)
            assert await snapshot(env, target) == before
        else:
            assert status in (200, 201), answer
            if method == "POST":
                item = target.item(answer["metadata"]["name"])
    finally:
        if verb != "POST" or status == 201:
            await _remove(env, item)


# -- names, labels, annotations, finalizers -------------------------------------------------------

_UPPER = st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=3)
_LOWER = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=10)
invalid_names = st.one_of(
    st.tuples(_LOWER, _UPPER, _LOWER).map("".join),  # uppercase
    st.integers(254, 400).map(lambda n: "a" * n),  # too long for any kind
    st.tuples(_LOWER, st.sampled_from(["/", "_", " ", "%", ":", "..", "\n", "é"]), _LOWER).map(
        "".join
    ),
    st.sampled_from(["-a", "a-", ".a", "a.", "-", ".", "..", "a..b", "a_b"]),
)


_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@fuzz_settings(40)
@given(
    target=targets,
    name=invalid_names | st.just(""),
    field=st.sampled_from(["name", "generateName"]),
)
async def test_invalid_names_are_refused(env: Env, target: Target, name: str, field: str) -> None:
    """An invalid name, or a generateName that makes one (kube cuts a prefix to 58 characters
    and adds 5 of its own: a long or a trailing-dash prefix is fine)."""
    if field == "generateName":
        assume(name and not _DNS1123_SUBDOMAIN.fullmatch(name[:58] + "bcdfg"))
    body = target.body("x")
    del body["metadata"]["name"]
    body["metadata"][field] = name
    status = await refused(env, target, "POST", target.collection, json_bytes(body), codes=INVALID)
    assert status["details"]["causes"][0]["field"] == "metadata.name", status


@fuzz_settings(20)
@given(
    target=targets,
    name=invalid_names,
    method=st.sampled_from(["GET", "PUT", "PATCH", "DELETE"]),
)
async def test_invalid_names_in_the_path_are_not_found(
    env: Env, target: Target, name: str, method: str
) -> None:
    assume(name not in (".", ".."))  # a client's URL normalization would drop the segment
    body = json_bytes(target.body(name)) if method in ("PUT", "PATCH") else None
    ctype = MERGE if method == "PATCH" else JSON
    await refused(
        env, target, method, target.item(name), body, content_type=ctype,
        codes=frozenset({400, 404, 405}),
    )  # fmt: skip


_PREFIX = st.sampled_from(["", "example.com/", "kubetrain.dev/"])
_QNAME = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?", fullmatch=True)
invalid_keys = st.one_of(
    st.tuples(_PREFIX, _QNAME, st.sampled_from(["!", " ", "$", "é", "/x/"]), _QNAME).map("".join),
    st.tuples(_PREFIX, st.sampled_from(["-", "_", "."]), _QNAME).map("".join),
    st.tuples(_PREFIX, _QNAME, st.sampled_from(["-", "_", "."])).map("".join),
    st.integers(64, 100).map(lambda n: "k" * n),
    st.tuples(st.sampled_from(["UPPER.com/", "-x.com/", "/", "a..b/"]), _QNAME).map("".join),
    st.just(""),
)
invalid_values = st.one_of(
    st.integers(64, 100).map(lambda n: "v" * n),
    st.tuples(_QNAME, st.sampled_from(["!", " ", "/", "é", ":"]), _QNAME).map("".join),
    st.tuples(st.sampled_from(["-", "_", "."]), _QNAME).map("".join),
)


_NAME_PART = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


def _qualified_name(key: str) -> bool:
    """apimachinery's IsQualifiedName, for the one case a strategy must tell apart."""
    prefix, _, name = key.rpartition("/")
    if "/" in prefix or (key.count("/") == 1 and not prefix):
        return False
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_NAME_PART.fullmatch(name))


@st.composite
def bad_metadata(draw: st.DrawFn) -> tuple[str, dict[str, Any], str]:
    """(what, a metadata fragment with one invalid entry, the field the cause must name)."""
    what = draw(st.sampled_from(["label key", "label value", "annotation key", "finalizer"]))
    if what == "label key":
        return what, {"labels": {draw(invalid_keys): "v"}}, "metadata.labels"
    if what == "label value":
        return what, {"labels": {"app": draw(invalid_values)}}, "metadata.labels"
    if what == "annotation key":  # kube checks annotation keys lowercased
        key = draw(invalid_keys.filter(lambda k: not _qualified_name(k.lower())))
        return what, {"annotations": {key: "any value at all"}}, "metadata.annotations"
    return what, {"finalizers": [draw(invalid_keys)]}, "metadata.finalizers"


@fuzz_settings(60)
@given(target=targets, case=bad_metadata(), verb=st.sampled_from(["POST", "PUT", "MERGE"]))
async def test_invalid_labels_annotations_finalizers_are_refused(
    env: Env, target: Target, case: tuple[str, dict[str, Any], str], verb: str
) -> None:
    _, fragment, field = case
    if verb == "MERGE":
        data = json_bytes({"metadata": fragment})
        status = await refused(
            env, target, "PATCH", target.seed, data, content_type=MERGE, codes=INVALID
        )
    else:
        if verb == "POST":
            body = target.body("fuzz-meta")
        else:
            seed = await current(env, target)
            body = without_server_fields(seed)
            body["metadata"]["resourceVersion"] = seed["metadata"]["resourceVersion"]
        body["metadata"].update(fragment)
        path = target.collection if verb == "POST" else target.seed
        status = await refused(env, target, verb, path, json_bytes(body), codes=INVALID)
    assert field in {c["field"] for c in status["details"]["causes"]}, status


async def test_annotations_over_256_kib_are_refused(env: Env) -> None:
    target = TARGETS["configmaps"]
    body = target.body("fuzz-annotations")
    body["metadata"]["annotations"] = {f"k{i}": "v" * 100_000 for i in range(3)}
    status = await refused(env, target, "POST", target.collection, json_bytes(body), codes=INVALID)
    assert status["details"]["causes"][0]["reason"] == "FieldValueTooLong", status


# -- unknown fields, mismatches ------------------------------------------------------------------

_UNKNOWN = st.from_regex(r"[a-z][a-zA-Z]{2,12}", fullmatch=True).map(lambda s: "zz" + s)


#: Objects of each custom resource's schema (no maps, no preserve-unknown-fields below them)
_STRUCTS: dict[str, list[tuple[str | int, ...]]] = {
    "widgets": [("spec",)],
    "pytorchjobs": [
        ("spec",),
        ("spec", "pytorchReplicaSpecs", "Master"),
        ("spec", "pytorchReplicaSpecs", "Worker", "template"),
        ("spec", "pytorchReplicaSpecs", "Master", "template", "spec"),
        ("spec", "pytorchReplicaSpecs", "Worker", "template", "spec", "containers", 0),
    ],
}


@st.composite
def unknown_field(draw: st.DrawFn) -> tuple[Target, tuple[str | int, ...]]:
    """A custom resource target and a path to a field its schema does not know."""
    target = draw(st.sampled_from(CUSTOM))
    parent = draw(st.sampled_from(_STRUCTS[target.resource]))
    return target, (*parent, draw(_UNKNOWN))


@fuzz_settings(30)
@given(
    case=unknown_field(),
    value=json_values.filter(lambda v: v is not None),  # a null deletes (merge patch)
    verb=st.sampled_from(["POST", "PUT", "MERGE", "APPLY"]),
)
async def test_unknown_fields_are_refused_under_strict(
    env: Env, case: tuple[Target, tuple[str | int, ...]], value: Any, verb: str
) -> None:
    target, path = case
    status = await send_modified(
        env, target, verb, path, value, codes=BAD_REQUEST,
        params={"fieldValidation": "Strict"},
    )  # fmt: skip
    assert "strict decoding error: unknown field" in status["message"], status


@st.composite
def mismatch(draw: st.DrawFn) -> tuple[Target, str, tuple[str | int, ...], Any]:
    target = draw(targets)
    fields = ["kind", "apiVersion"] + (["namespace"] if target.namespaced else [])
    field = draw(st.sampled_from(["name", *fields]))
    text = draw(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True))
    if field == "kind":
        return target, "PUT-OR-POST", ("kind",), "Zz" + text
    if field == "apiVersion":
        return target, "PUT-OR-POST", ("apiVersion",), f"zz{text}.example.org/v9"
    if field == "namespace":
        return target, "PUT-OR-POST", ("metadata", "namespace"), "other-" + text
    return target, "PUT", ("metadata", "name"), "other-" + text


@fuzz_settings(40)
@given(case=mismatch(), post=st.booleans())
async def test_kind_version_name_namespace_mismatches_are_refused(
    env: Env, case: tuple[Target, str, tuple[str | int, ...], Any], post: bool
) -> None:
    target, verbs, path, value = case
    verb = "POST" if post and verbs == "PUT-OR-POST" else "PUT"
    status = await send_modified(env, target, verb, path, value, codes=BAD_REQUEST)
    assert "does not match" in status["message"], status


# -- size ------------------------------------------------------------------------------------------


@fuzz_settings(8)
@given(
    target=targets,
    size=st.integers(LIMIT + 1, LIMIT + 256 * 1024) | st.just(LIMIT + 1),
    verb=st.sampled_from(["POST", "PUT", MERGE, JSON_PATCH, STRATEGIC, APPLY]),
)
async def test_bodies_over_the_limit_are_refused_with_413(
    env: Env, target: Target, size: int, verb: str
) -> None:
    body = target.body("fuzz-big")
    body["metadata"]["annotations"] = {"pad": ""}
    fill = size - len(json_bytes(body))
    body["metadata"]["annotations"]["pad"] = "x" * fill
    data = json_bytes(body)
    assert len(data) == size
    if verb in ("POST", "PUT"):
        path = target.collection if verb == "POST" else target.seed
        status = await refused(env, target, verb, path, data, codes=frozenset({413}))
    else:
        status = await refused(
            env, target, "PATCH", target.seed, data, content_type=verb,
            params={"fieldManager": "fuzz"}, codes=frozenset({413}),
        )  # fmt: skip
    assert status["reason"] == "RequestEntityTooLarge", status
    assert status["message"] == f"Request entity too large: limit is {LIMIT}", status


async def test_a_body_of_exactly_the_limit_is_read(env: Env) -> None:
    """The limit is inclusive, as kube's ``limitedReadBody``: 3 MiB are read (and here stored:
    the embedded store has no etcd object limit)."""
    target = TARGETS["configmaps"]
    body = target.body("fuzz-at-limit")
    body["data"] = {"pad": ""}
    body["data"]["pad"] = "x" * (LIMIT - len(json_bytes(body)))
    data = json_bytes(body)
    assert len(data) == LIMIT
    status, answer, _ = await env.raw.call("POST", target.collection, raw=data)
    assert status == 201, answer
    status, answer, _ = await env.raw.delete(target.item("fuzz-at-limit"))
    assert status == 200, answer


# -- patches that do not apply --------------------------------------------------------------------

_MISSING = st.lists(
    st.from_regex(r"[a-z]{1,6}", fullmatch=True).map(lambda s: "zz" + s), min_size=1, max_size=3
)


@st.composite
def failing_json_patch(draw: st.DrawFn, target: Target) -> Any:
    """A JSON patch that cannot apply to the seed (or is no JSON patch at all)."""
    missing = "/spec/" + "/".join(draw(_MISSING)) + "/" + draw(_MISSING)[0]
    if target.resource == "configmaps":
        missing = missing.replace("/spec/", "/data/", 1).replace("/data/", "/zzdata/", 1)
    existing = draw(st.sampled_from(["/metadata/name", "/metadata/labels/app", "/kind"]))
    kind = draw(
        st.sampled_from(
            [
                "remove missing",
                "replace missing",
                "move from missing",
                "copy from missing",
                "test fails",
                "test missing",
                "bad op",
                "no op",
                "no path",
                "relative path",
                "bad index",
                "index out of range",
                "not a list",
                "op not an object",
                "value missing",
                "path not a string",
            ]
        )
    )
    value = draw(json_values)
    op: Any
    if kind == "remove missing":
        op = {"op": "remove", "path": missing}
    elif kind == "replace missing":
        op = {"op": "replace", "path": missing, "value": value}
    elif kind == "move from missing":
        op = {"op": "move", "from": missing, "path": "/metadata/labels/zz"}
    elif kind == "copy from missing":
        op = {"op": "copy", "from": missing, "path": "/metadata/labels/zz"}
    elif kind == "test fails":
        op = {
            "op": "test",
            "path": existing,
            "value": draw(st.text(max_size=5).map(lambda s: "zz" + s)),
        }
    elif kind == "test missing":
        op = {"op": "test", "path": missing, "value": value}
    elif kind == "bad op":
        op = {"op": draw(st.text(max_size=8).filter(lambda s: s not in ("add", "remove", "replace", "move", "copy", "test"))), "path": "/metadata/labels/zz", "value": "v"}  # fmt: skip
    elif kind == "no op":
        op = {"path": "/metadata/labels/zz", "value": "v"}
    elif kind == "no path":
        op = {"op": "add", "value": "v"}
    elif kind == "relative path":
        op = {"op": "add", "path": "metadata/labels/zz", "value": "v"}
    elif kind == "bad index":
        index = draw(st.sampled_from(["x", "-1", "01", "1.5", " 0", "+0"]))
        op = {"op": "add", "path": f"/metadata/finalizers/{index}", "value": "example.com/f"}
    elif kind == "index out of range":
        op = {"op": "replace", "path": f"/metadata/finalizers/{draw(st.integers(5, 10**20))}", "value": "x"}  # fmt: skip
    elif kind == "not a list":
        return draw(st.dictionaries(st.text(max_size=3), json_scalars, max_size=2) | json_scalars)
    elif kind == "op not an object":
        return [draw(json_scalars | st.lists(json_scalars, max_size=2))]
    elif kind == "value missing":
        op = {
            "op": draw(st.sampled_from(["add", "replace", "test"])),
            "path": "/metadata/labels/app",
        }
    else:
        op = {"op": "add", "path": draw(_INT | st.lists(st.text(max_size=2), max_size=2)), "value": "v"}  # fmt: skip
    prefix = (
        [{"op": "add", "path": "/metadata/labels/zzfirst", "value": "ok"}]
        if draw(st.booleans())
        else []
    )
    return [*prefix, op]


@fuzz_settings(60)
@given(data=st.data(), target=targets)
async def test_json_patches_that_do_not_apply_are_refused(
    env: Env, data: st.DataObject, target: Target
) -> None:
    patch = data.draw(failing_json_patch(target))
    await refused(
        env, target, "PATCH", target.seed, json_bytes(patch), content_type=JSON_PATCH,
        codes=frozenset({400, 409, 422}),
    )  # fmt: skip


@st.composite
def failing_merge_patch(draw: st.DrawFn, target: Target) -> tuple[str, Any]:
    """(content type, a merge or strategic merge patch that cannot apply)."""
    ctype = draw(st.sampled_from([MERGE, STRATEGIC] if target.builtin else [MERGE]))
    kind = draw(
        st.sampled_from(
            [
                "not an object",
                "wrong type",
                "rename",
                "bad label",
                "bad directive",
                "bad retain keys",
                "bad element order",
                "bad delete from list",
                "scalars for a keyed list",
            ]
        )
    )
    if kind == "not an object":
        return ctype, draw(st.lists(json_scalars, max_size=3) | _INT | st.text(max_size=5) | st.booleans())  # fmt: skip
    if kind == "wrong type":
        path = draw(st.sampled_from(_META_TYPED[2:] + target.typed))
        valid = get_path(target.body("x"), path)
        if any(isinstance(p, int) for p in path):
            path = path[: next(i for i, p in enumerate(path) if isinstance(p, int))]
            valid = get_path(target.body("x"), path)
        patch: dict[str, Any] = {}
        set_path_create(patch, path, draw(wrong_for(valid)))
        return ctype, patch
    if kind == "rename":
        return ctype, {"metadata": {"name": "zz" + draw(_LOWER)}}
    if kind == "bad label":
        return ctype, {"metadata": {"labels": {draw(invalid_keys): "v"}}}
    if ctype == MERGE:
        return ctype, {"metadata": draw(st.lists(json_scalars, min_size=1, max_size=2))}
    if kind == "bad directive":
        where = draw(st.sampled_from(["metadata", "spec", "labels"]))
        directive = {"$patch": draw(st.sampled_from(["bogus", "", "Replace", 5, None, [], {}]))}
        if where == "labels":
            return ctype, {"metadata": {"labels": directive}}
        if where == "spec" and target.resource != "configmaps":
            return ctype, {"spec": directive}
        return ctype, {"metadata": directive}
    if kind == "bad retain keys":
        return ctype, {"metadata": {"$retainKeys": draw(_INT | st.text(max_size=3) | st.just({"a": 1}))}}  # fmt: skip
    if kind == "bad element order":
        return ctype, {"metadata": {"$setElementOrder/finalizers": draw(_INT | st.text(max_size=3) | st.just({"a": 1}))}}  # fmt: skip
    if kind == "bad delete from list":
        return ctype, {"metadata": {"$deleteFromPrimitiveList/finalizers": draw(_INT | st.text(max_size=3) | st.just({"a": 1}))}}  # fmt: skip
    if target.resource == "pods":
        return ctype, {"spec": {"containers": draw(st.lists(json_scalars.filter(lambda v: v is not None), min_size=1, max_size=2))}}  # fmt: skip
    if target.resource == "services":
        return ctype, {"spec": {"ports": draw(st.lists(json_scalars.filter(lambda v: v is not None), min_size=1, max_size=2))}}  # fmt: skip
    return ctype, {"metadata": {"finalizers": [{"name": "x"}]}}


def set_path_create(obj: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    for part in path[:-1]:
        assert isinstance(part, str)
        obj = obj.setdefault(part, {})
    obj[str(path[-1])] = value


@fuzz_settings(50)
@given(data=st.data(), target=targets)
async def test_merge_and_strategic_patches_that_do_not_apply_are_refused(
    env: Env, data: st.DataObject, target: Target
) -> None:
    ctype, patch = data.draw(failing_merge_patch(target))
    await refused(
        env, target, "PATCH", target.seed, json_bytes(patch), content_type=ctype,
        codes=frozenset({400, 409, 422}),
    )  # fmt: skip


@st.composite
def failing_apply(draw: st.DrawFn, target: Target) -> tuple[bytes, dict[str, str]]:
    """(an apply patch that cannot apply, its query)."""
    body = target.body("seed")
    params = {"fieldManager": "fuzz", "force": "true"}
    kind = draw(st.sampled_from(["no manager", "not an object", "wrong type", "bad label", "kind", "rename", "bad force"]))  # fmt: skip
    if kind == "no manager":
        del params["fieldManager"]
    elif kind == "not an object":
        return yaml.safe_dump(draw(st.lists(json_scalars, max_size=2) | _INT | st.text(max_size=5))).encode(), params  # fmt: skip
    elif kind == "wrong type":
        path = draw(st.sampled_from(_META_TYPED + target.typed))
        set_path(body, path, draw(wrong_for(get_path(body, path))))
    elif kind == "bad label":
        body["metadata"]["labels"] = {draw(invalid_keys): "v"}
    elif kind == "kind":
        body["kind"] = "Zz" + draw(_LOWER)
    elif kind == "rename":
        body["metadata"]["name"] = "zz" + draw(_LOWER)
    else:
        params["dryRun"] = draw(st.text(min_size=1, max_size=5).filter(lambda s: s != "All"))
    return yaml.safe_dump(body).encode(), params


@fuzz_settings(40)
@given(data=st.data(), target=targets)
async def test_apply_patches_that_do_not_apply_are_refused(
    env: Env, data: st.DataObject, target: Target
) -> None:
    patch, params = data.draw(failing_apply(target))
    await refused(
        env, target, "PATCH", target.seed, patch, content_type=APPLY, params=params,
        codes=frozenset({400, 422}),
    )  # fmt: skip


_PATCH_TYPES = {MERGE, JSON_PATCH, STRATEGIC, APPLY, "application/apply-patch+cbor"}


@fuzz_settings(20)
@given(
    target=targets,
    ctype=st.sampled_from(["application/json", "text/plain", "application/xml", "application/yaml"])
    | st.from_regex(r"[a-z]{1,8}/[a-z0-9.+-]{1,12}", fullmatch=True),
)
async def test_unsupported_patch_content_types_are_refused(
    env: Env, target: Target, ctype: str
) -> None:
    assume(ctype not in _PATCH_TYPES)
    patch = json_bytes({"metadata": {"labels": {"zz": "v"}}})
    status = await refused(
        env, target, "PATCH", target.seed, patch, content_type=ctype, codes=frozenset({415})
    )
    assert status["reason"] == "UnsupportedMediaType", status


async def test_strategic_merge_patch_of_a_custom_resource_is_415(env: Env) -> None:
    for target in CUSTOM:
        patch = json_bytes({"metadata": {"labels": {"zz": "v"}}})
        await refused(
            env, target, "PATCH", target.seed, patch, content_type=STRATEGIC, codes=frozenset({415})
        )


# -- query parameters ------------------------------------------------------------------------------

_SELECTOR_TOKENS = [*"abz09=!,() .-_/\\~", "in", "notin", "metadata.name", "=="]
_SELECTOR_TEXT = st.lists(st.sampled_from(_SELECTOR_TOKENS), max_size=12).map("".join) | st.text(
    max_size=12
)


@fuzz_settings(60)
@given(
    target=targets,
    param=st.sampled_from(
        ["labelSelector", "fieldSelector", "limit", "resourceVersion", "continue"]
    ),
    value=_SELECTOR_TEXT
    | _INT.map(str)
    | st.sampled_from(["-1", "99999999999999999999999", "1e3", "0x10", "١٢"]),
    item=st.booleans(),
)
async def test_selectors_and_paging_parameters_never_fail_the_server(
    env: Env, target: Target, param: str, value: str, item: bool
) -> None:
    """A LIST (or GET) with any value of these parameters: answered, 200 or a 4xx Status."""
    path = target.seed if item and param == "resourceVersion" else target.collection
    before = await snapshot(env, target)
    status, body, _ = await env.raw.get(path, params={param: value})
    if status != 200:
        assert_status(status, body, frozenset({400, 410, 422}))
    assert await snapshot(env, target) == before


_NOT_ALL = st.text(min_size=1, max_size=8).filter(lambda s: s != "All")
_NOT_POLICY = st.text(min_size=1, max_size=12).filter(
    lambda s: s not in ("Orphan", "Background", "Foreground")
)
_NOT_INT = st.text(min_size=1, max_size=6).filter(lambda s: not s.strip().lstrip("+-").isdigit())


@st.composite
def bad_write_parameters(draw: st.DrawFn) -> tuple[str, str, bytes | None, str, dict[str, str], frozenset[int]]:  # fmt: skip
    """(method, which path: collection or seed, body, content type, query, codes)."""
    case = draw(
        st.sampled_from(
            [
                "dryRun", "fieldValidation", "delete dryRun", "delete propagationPolicy",
                "delete body propagationPolicy", "delete body dryRun", "delete gracePeriodSeconds",
                "delete body gracePeriodSeconds", "delete body preconditions", "delete body",
                "delete body wrong types", "delete precondition uid",
            ]
        )
    )  # fmt: skip
    if case == "dryRun":
        method = draw(st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]))
        where = "collection" if method == "POST" else "seed"
        ctype = MERGE if method == "PATCH" else JSON
        return method, where, None, ctype, {"dryRun": draw(_NOT_ALL)}, INVALID
    if case == "fieldValidation":
        method = draw(st.sampled_from(["POST", "PUT", "PATCH"]))
        where = "collection" if method == "POST" else "seed"
        ctype = MERGE if method == "PATCH" else JSON
        value = draw(st.text(min_size=1, max_size=8).filter(lambda s: s not in ("Strict", "Warn", "Ignore")))  # fmt: skip
        return method, where, None, ctype, {"fieldValidation": value}, BAD_REQUEST
    if case == "delete dryRun":
        return "DELETE", "seed", None, JSON, {"dryRun": draw(_NOT_ALL)}, INVALID
    if case == "delete propagationPolicy":
        return "DELETE", "seed", None, JSON, {"propagationPolicy": draw(_NOT_POLICY)}, INVALID
    if case == "delete body propagationPolicy":
        body = json_bytes({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": draw(_NOT_POLICY)})  # fmt: skip
        return "DELETE", "seed", body, JSON, {}, INVALID
    if case == "delete body dryRun":
        body = json_bytes({"dryRun": draw(st.lists(_NOT_ALL, min_size=1, max_size=2))})
        return "DELETE", "seed", body, JSON, {}, INVALID
    if case == "delete gracePeriodSeconds":
        return "DELETE", "seed", None, JSON, {"gracePeriodSeconds": draw(_NOT_INT)}, BAD_REQUEST
    if case == "delete body gracePeriodSeconds":
        value = draw(st.text(max_size=4) | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()) | st.booleans() | st.lists(_INT, max_size=1))  # fmt: skip
        return "DELETE", "seed", json_bytes({"gracePeriodSeconds": value}), JSON, {}, BAD_REQUEST
    if case == "delete body preconditions":
        value = draw(st.text(max_size=4) | _INT | st.lists(_INT, max_size=1) | st.just({"uid": 5}) | st.just({"resourceVersion": []}))  # fmt: skip
        return "DELETE", "seed", json_bytes({"preconditions": value}), JSON, {}, BAD_REQUEST
    if case == "delete body":
        value = draw(st.lists(json_scalars, max_size=2) | _INT | st.text(max_size=4).map(lambda s: "x" + s) | st.booleans())  # fmt: skip
        return "DELETE", "seed", json_bytes(value), JSON, {}, BAD_REQUEST
    if case == "delete body wrong types":
        field = draw(st.sampled_from(["propagationPolicy", "orphanDependents", "dryRun", "kind", "apiVersion"]))  # fmt: skip
        good: Any = {"propagationPolicy": "x", "orphanDependents": True, "dryRun": [], "kind": "x", "apiVersion": "x"}[field]  # fmt: skip
        return "DELETE", "seed", json_bytes({field: draw(wrong_for(good))}), JSON, {}, BAD_REQUEST
    body = json_bytes({"preconditions": {"uid": "zz-" + draw(_LOWER)}})
    return "DELETE", "seed", body, JSON, {}, frozenset({409})


@fuzz_settings(50)
@given(target=targets, case=bad_write_parameters())
async def test_bad_write_and_delete_parameters_are_refused(
    env: Env,
    target: Target,
    case: tuple[str, str, bytes | None, str, dict[str, str], frozenset[int]],
) -> None:
    method, where, body, ctype, params, codes = case
    path = target.collection if where == "collection" else target.seed
    if body is None and method != "DELETE":
        if method == "POST":
            body = json_bytes(target.body("fuzz-params"))
        elif method == "PUT":
            body = json_bytes(without_server_fields(await current(env, target)))
        else:
            body = json_bytes({"metadata": {"labels": {"zz": "v"}}})
    await refused(env, target, method, path, body, content_type=ctype, params=params, codes=codes)


_BAD_WATCH = st.one_of(
    st.tuples(st.just("resourceVersion"), st.sampled_from(["x", "-1", "1.5", "1e3", "0x1"])),
    st.tuples(st.just("timeoutSeconds"), _NOT_INT),
    st.tuples(
        st.just("labelSelector"), st.sampled_from(["a in (b", "!!", "a=b=c", "=x", "a,", "a in"])
    ),
    st.tuples(
        st.just("fieldSelector"), st.sampled_from(["spec.nope=x", "metadata.name", "x!", "=="])
    ),
)


@fuzz_settings(20)
@given(target=targets, bad=_BAD_WATCH)
async def test_bad_watch_parameters_are_refused_before_streaming(
    env: Env, target: Target, bad: tuple[str, str]
) -> None:
    param, value = bad
    await refused(
        env, target, "GET", target.collection, None, content_type=None,
        params={"watch": "true", param: value}, codes=BAD_REQUEST,
    )  # fmt: skip


# -- regressions: each bug the fuzzing found, with the answer it got before the fix ---------------

_POD = f"{_CORE}/namespaces/{NS}/pods"
_CM = f"{_CORE}/namespaces/{NS}/configmaps"
_SVC = f"{_CORE}/namespaces/{NS}/services"
_NSS = f"{_CORE}/namespaces"
_WD = TARGETS["widgets"].collection


@dataclass(frozen=True)
class Regression:
    resource: str
    method: str
    path: str
    data: bytes
    code: int
    message: str  # a part of the Status message
    content_type: str = JSON
    params: tuple[tuple[str, str], ...] = ()


def _body(make: Callable[[str], dict[str, Any]], **changes: Any) -> bytes:
    """A valid body of ``make``'s kind, ``metadata__name=5`` setting ``metadata.name``."""
    body = make("fuzz-regression")
    for dotted, value in changes.items():
        set_path(body, tuple(dotted.split("__")), value)
    return json_bytes(body)


_DECODE = "cannot unmarshal {} into Go struct field {} of type {}"
_LIMIT_BODY = _body(_configmap, data__key="x" * LIMIT)
_BINDING = json_bytes({"apiVersion": "v1", "kind": "Binding", "target": "node-1"})
_TEXT_PLAIN = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json, application/yaml, application/vnd.kubernetes.protobuf"
)

# fmt: off
REGRESSIONS: dict[str, Regression] = {
    # each: the old answer, then (resource, method, path, body, new code, new message part)
    # 500 InternalError "TypeError: object of type 'int' has no len()"
    "name a number": Regression(
        "pods", "POST", _POD, _body(_pod, metadata__name=5), 400,
        'Pod in version "v1" cannot be handled as a Pod: json: '
        + _DECODE.format("number", "ObjectMeta.metadata.name", "string")),
    # 500, the same TypeError
    "generateName a number": Regression(
        "configmaps", "POST", _CM, json_bytes({"metadata": {"generateName": 3}}), 400,
        _DECODE.format("number", "ObjectMeta.metadata.generateName", "string")),
    # 500 "AttributeError: 'list' object has no attribute 'setdefault'"
    "pod spec a list": Regression(
        "pods", "POST", _POD, _body(_pod, spec=[]), 400,
        _DECODE.format("array", "Pod.spec", "v1.PodSpec")),
    # 500 "AttributeError: 'int' object has no attribute 'setdefault'"
    "namespace spec a number": Regression(
        "namespaces", "POST", _NSS, _body(_namespace, spec=5), 400,
        _DECODE.format("number", "Namespace.spec", "v1.NamespaceSpec")),
    # 500 "TypeError: 'int' object is not iterable"
    "pod containers a number": Regression(
        "pods", "POST", _POD, _body(_pod, spec__containers=5), 400,
        _DECODE.format("number", "PodSpec.spec.containers", "[]v1.Container")),
    # 500 "AttributeError: 'int' object has no attribute 'get'"
    "pod container a number": Regression(
        "pods", "POST", _POD, _body(_pod, spec__containers=[5]), 400,
        _DECODE.format("number", "PodSpec.spec.containers", "v1.Container")),
    # 500 "TypeError: 'int' object is not iterable"
    "service ports a number": Regression(
        "services", "POST", _SVC, _body(_service, spec__ports=5), 400,
        _DECODE.format("number", "ServiceSpec.spec.ports", "[]v1.ServicePort")),
    # 201, stored; deleting the pod once bound to a node: 500 (int("x"))
    "pod grace period a string": Regression(
        "pods", "POST", _POD, _body(_pod, spec__terminationGracePeriodSeconds="x"), 400,
        _DECODE.format("string", "PodSpec.spec.terminationGracePeriodSeconds", "int64")),
    # 201, stored: a label value 1 (selectors compare strings)
    "label value a number": Regression(
        "configmaps", "POST", _CM, _body(_configmap, metadata__labels={"app": 1}), 400,
        _DECODE.format("number", "ObjectMeta.metadata.labels", "string")),
    # 201, stored
    "labels a list": Regression(
        "services", "POST", _SVC, _body(_service, metadata__labels=["a"]), 400,
        _DECODE.format("array", "ObjectMeta.metadata.labels", "map[string]string")),
    # 201, and the garbage collector failed on the object for ever ("'str' object has no
    # attribute 'get'", retried with backoff)
    "ownerReferences a string": Regression(
        "configmaps", "POST", _CM, _body(_configmap, metadata__ownerReferences="x"), 400,
        _DECODE.format("string", "ObjectMeta.metadata.ownerReferences",
                       "[]v1.OwnerReference")),
    # 201, the same garbage collector failure ("'int' object has no attribute 'get'")
    "ownerReference a number": Regression(
        "widgets", "POST", _WD, _body(_widget, metadata__ownerReferences=[1]), 400,
        _DECODE.format("number", "ObjectMeta.metadata.ownerReferences", "v1.OwnerReference")),
    # 201: an apiVersion [] read as none
    "apiVersion a list": Regression(
        "configmaps", "POST", _CM, _body(_configmap, apiVersion=[]), 400,
        "couldn't get version/kind; json parse error: json: "
        + _DECODE.format("array", ".apiVersion", "string")),
    # 201, stored (labels, annotations and finalizers were not validated)
    "label key with two slashes": Regression(
        "pods", "POST", _POD, _body(_pod, metadata__labels={"a/b/c": "x"}), 422,
        'metadata.labels: Invalid value: "a/b/c": a qualified name must consist of'),
    "label value with a space": Regression(
        "namespaces", "POST", _NSS, _body(_namespace, metadata__labels={"a": "x y"}), 422,
        'metadata.labels: Invalid value: "x y": a valid label must be an empty string or'),
    "annotation key with a space": Regression(
        "widgets", "POST", _WD, _body(_widget, metadata__annotations={"a b": "x"}), 422,
        'metadata.annotations: Invalid value: "a b": name part must consist of'),
    "finalizer with a space": Regression(
        "configmaps", "POST", _CM, _body(_configmap, metadata__finalizers=["a b"]), 422,
        'metadata.finalizers: Invalid value: "a b": name part must consist of'),
    # 201: namespace names are DNS labels (no dots), service names DNS-1035 labels
    "namespace name with a dot": Regression(
        "namespaces", "POST", _NSS, _body(_namespace, metadata__name="a.b"), 422,
        'metadata.name: Invalid value: "a.b": a lowercase RFC 1123 label must consist of'),
    "service name starting with a digit": Regression(
        "services", "POST", _SVC, _body(_service, metadata__name="1abc"), 422,
        'metadata.name: Invalid value: "1abc": a DNS-1035 label must consist of'),
    # 500 "RecursionError: maximum recursion depth exceeded" (PyYAML's composer)
    "YAML nested 5000 deep": Regression(
        "configmaps", "POST", _CM, NASTY_YAML["deep flow nesting"], 400,
        "the request body is nested too deeply: exceeded max depth of 100", YAML),
    # no answer: the server expanded the aliases (10^9 nodes) with its event loop blocked
    "YAML billion laughs": Regression(
        "configmaps", "POST", _CM, NASTY_YAML["billion laughs"], 400,
        "yaml: document contains excessive aliasing", YAML),
    # 500 "TypeError: Recursion limit reached" (orjson, serializing the self-containing list)
    "YAML recursive alias": Regression(
        "configmaps", "POST", _CM, NASTY_YAML["recursive alias"], 400,
        "yaml: document contains a recursive alias", YAML),
    # 500 "TypeError: Type is not JSON serializable: bytes" (at the store)
    "YAML binary value": Regression(
        "configmaps", "POST", _CM, NASTY_YAML["binary value"], 400,
        "error converting YAML to JSON", YAML),
    # 500 "ValueError: Stop argument for islice() must be None or an integer ..."
    "limit beyond int64": Regression(
        "pods", "GET", _POD, b"", 400,
        'strconv.ParseInt: parsing "99999999999999999999999": value out of range',
        params=(("limit", "99999999999999999999999"),)),
    # 200, the parameter ignored; kube-apiserver answers 500 (kubernetes#101350)
    "list resourceVersion not a number": Regression(
        "pods", "GET", _POD, b"", 400,
        'resourceVersion: Invalid value: "x": strconv.ParseUint: parsing "x": invalid syntax',
        params=(("resourceVersion", "x"),)),
    "get resourceVersion negative": Regression(
        "configmaps", "GET", f"{_CM}/seed", b"", 400,
        'resourceVersion: Invalid value: "-1": strconv.ParseUint: parsing "-1": invalid syntax',
        params=(("resourceVersion", "-1"),)),
    # 500 "ValueError: invalid literal for int() with base 10: 'x'"
    "delete body gracePeriodSeconds a string": Regression(
        "configmaps", "DELETE", f"{_CM}/seed", json_bytes({"gracePeriodSeconds": "x"}), 400,
        _DECODE.format("string", "DeleteOptions.gracePeriodSeconds", "int64")),
    # 500 "AttributeError: 'str' object has no attribute 'get'"
    "delete body preconditions a string": Regression(
        "configmaps", "DELETE", f"{_CM}/seed", json_bytes({"preconditions": "x"}), 400,
        _DECODE.format("string", "DeleteOptions.preconditions", "v1.Preconditions")),
    # 200: the unknown dryRun value ignored and the object deleted for real
    "delete body dryRun unknown": Regression(
        "configmaps", "DELETE", f"{_CM}/seed", json_bytes({"dryRun": ["Al"]}), 422,
        'dryRun: Unsupported value: "Al": supported values: "All"'),
    # 200: a list as DeleteOptions ignored and the object deleted
    "delete body a list": Regression(
        "services", "DELETE", f"{_SVC}/seed", json_bytes([1]), 400,
        "json: cannot unmarshal array into Go value of type v1.DeleteOptions"),
    # 201: every Content-Type read as JSON
    "create as text/plain": Regression(
        "configmaps", "POST", _CM, _body(_configmap), 415, _TEXT_PLAIN, "text/plain"),
    # 201: up to 64 MiB read (past it, aiohttp's own text/plain 413, no Status)
    "a body over 3 MiB": Regression(
        "configmaps", "POST", _CM, _LIMIT_BODY, 413,
        f"Request entity too large: limit is {LIMIT}"),
    # 500 "AttributeError: 'str' object has no attribute 'get'"
    "binding target a string": Regression(
        "pods", "POST", f"{_POD}/seed/binding", _BINDING, 400,
        _DECODE.format("string", "Binding.target", "v1.ObjectReference")),
    # 200, a no-op: a null $patch directive read as none (kube: "unknown patch type")
    "strategic merge patch with a null $patch": Regression(
        "pods", "PATCH", f"{_POD}/seed", json_bytes({"metadata": {"$patch": None}}), 422,
        "unknown patch type None in $patch", STRATEGIC),
}
# fmt: on


@pytest.mark.parametrize("case", sorted(REGRESSIONS))
async def test_regressions(env: Env, case: str) -> None:
    reg = REGRESSIONS[case]
    status = await refused(
        env, TARGETS[reg.resource], reg.method, reg.path, reg.data or None,
        content_type=reg.content_type, params=dict(reg.params), codes=frozenset({reg.code}),
    )  # fmt: skip
    assert reg.message in status["message"], status


async def test_yaml_timestamps_stay_strings(env: Env) -> None:
    """Was 500 "TypeError: object of type 'datetime.date' has no len()": PyYAML made
    ``2020-01-01`` a date; kube's YAML-to-JSON keeps the text."""
    data = b"metadata: {name: 2020-01-01, labels: {day: 2020-01-02}}\ndata: {a: 2020-01-03}\n"
    status, body, _ = await env.raw.call("POST", _CM, raw=data, content_type=YAML)
    assert status == 201, body
    assert body["metadata"]["labels"] == {"day": "2020-01-02"}
    assert body["data"] == {"a": "2020-01-03"}
    status, body, _ = await env.raw.delete(f"{_CM}/2020-01-01")
    assert status == 200, body


async def test_null_metadata_is_the_zero_object_meta(env: Env) -> None:
    """``metadata: null`` decodes as an empty ObjectMeta (as Go's): a create without a name is
    invalid, an apply takes the name from the URL (found by the fuzzing as a 500 while the
    decoding checks were written: ``None.get``)."""
    target = TARGETS["configmaps"]
    body = {**target.body("x"), "metadata": None}
    status = await refused(env, target, "POST", target.collection, json_bytes(body), codes=INVALID)
    assert "name or generateName is required" in status["message"], status
    item = target.item("fuzz-null-meta")
    status, answer, _ = await env.raw.call(
        "PATCH", item, raw=json_bytes(body), content_type=APPLY, params={"fieldManager": "fuzz"}
    )
    assert status == 201, answer
    assert answer["metadata"]["name"] == "fuzz-null-meta"
    status, answer, _ = await env.raw.put(item, body)
    assert status == 200, answer
    await _remove(env, item)


async def test_a_limit_of_int64_max_lists_everything(env: Env) -> None:
    """Was 500 "ValueError: Stop argument for islice() ...": the store slices limit + 1."""
    status, body, _ = await env.raw.get(_POD, params={"limit": str(2**63 - 1)})
    assert status == 200, body
    assert [p["metadata"]["name"] for p in body["items"]] == ["seed"]
    assert "continue" not in body["metadata"]


async def test_a_newline_in_a_name_in_the_path_is_a_status(env: Env) -> None:
    target = TARGETS["pods"]
    await refused(env, target, "GET", target.item("a\nb"), None, codes=frozenset({404}))
