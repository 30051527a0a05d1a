"""Properties of validation and defaulting over random jobs of every kind (hypothesis).

Jobs are drawn from two families: *well-typed* ones (every field has its JSON type, values are
random: negative, absent, unknown, too long, duplicated) and *any-shape* ones, where roughly one
field in eight is replaced by a value of the wrong JSON type. Properties:
- ``validate``/``validate_update``/``warnings`` never raise, never mutate, and every error's field
  is ``metadata``/``spec`` or below it;
- ``validate_update(job, job) == validate(job)``: the update rules fire only on a change;
- ``default_job`` never raises on well-typed jobs, never mutates and is idempotent;
- a job that ``validate`` accepts after defaulting is reconciled by ``compute_status`` without
  ``invalid`` and without ``error``, and the pods and services it creates have names Kubernetes
  accepts (DNS-1035 labels), valid and unique container names, valid ports.
``test_default_job_on_wrongly_typed_jobs`` pins that ``default_job`` never raises on a part of
the wrong JSON type either (the mutating webhook runs it on whatever is submitted).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobkit import T0, make_job

from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import (
    ALL_KINDS,
    JAXJOB,
    MPIJOB,
    PADDLEJOB,
    PYTORCHJOB,
    TFJOB,
    XGBOOSTJOB,
    JobKind,
)
from kubetrain.reconcilers.api.validation import FieldError, validate, validate_update, warnings
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.status import compute_status
from kubetrain.reconcilers.kinds import ADAPTERS

T = TypeVar("T")

FAST = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
KINDS = st.sampled_from(ALL_KINDS)
FIELD_ROOT = re.compile(r"(metadata|spec)(\.|$)")  # "spec" alone: spec is no object
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# At most 15 characters, a letter, no leading/trailing or double hyphen.
IANA_SVC_NAME = re.compile(r"(?=.{1,15}$)(?=.*[a-z])(?!-)(?!.*--)[-a-z0-9]*[a-z0-9]")

WRONG_TYPED: st.SearchStrategy[Any] = st.one_of(
    st.integers(-3, 3),
    st.booleans(),
    st.text(max_size=3),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.lists(st.integers(0, 2), max_size=2),
    st.dictionaries(st.sampled_from(["a", "name"]), st.integers(0, 2), max_size=1),
)


class Shapes:
    """Draws one job's fields. Values are mostly valid, invalid ones rarely (1 in 10; 1 in 4 for
    the names of side containers and of ports, which break no other rule), so that many jobs
    are accepted; with ``wrong`` set, invalid values are common (1 in 3) and about one field in
    eight gets a value of another JSON type."""

    def __init__(self, draw: st.DrawFn, *, wrong: bool) -> None:
        self.draw = draw
        self.wrong = wrong
        # Weighted coins that shrink to False (the valid choice): hypothesis shrinks towards
        # the first element of sampled_from, and draws them uniformly.
        self.rare = st.sampled_from([False] * (2 if wrong else 9) + [True])
        self.quarter = st.sampled_from([False] * 3 + [True])
        self.wrong_type = st.sampled_from([False] * 7 + [True])

    def rarely(self, *, often: bool = False) -> bool:
        """True once in 3 (``wrong``) or 10 draws; ``often``: once in 4 (or 3)."""
        return bool(self.draw(self.quarter if often and not self.wrong else self.rare))

    def typed(self, value: T) -> T | Any:
        """``value``, or (``wrong`` set, one time in eight) a value of a wrong JSON type."""
        if self.wrong and self.draw(self.wrong_type):
            return self.draw(WRONG_TYPED)
        return value

    def pick(self, usual: list[Any], rare: list[Any], *, often: bool = False) -> Any:
        """One of ``usual`` (valid values), or rarely one of ``rare`` (invalid values, and valid
        ones that stop pod creation); then through ``typed``."""
        pool = rare if rare and self.rarely(often=often) else usual
        return self.typed(self.draw(st.sampled_from(pool)))

    def maybe(
        self, obj: dict[str, Any], key: str, usual: list[Any], rare: list[Any], often: bool = False
    ) -> None:
        """Sets ``obj[key]`` by ``pick`` half of the time (absent otherwise)."""
        if self.draw(st.booleans()):
            obj[key] = self.pick(usual, rare, often=often)


def _name(s: Shapes) -> Any:
    if s.rarely():
        return s.pick(["a" * 54, "a" * 63], ["", "a" * 64, "Bad_Name", "x-" * 27 + "x", "-a"])
    return s.typed(s.draw(st.from_regex(r"[a-z][-a-z0-9]{0,20}[a-z0-9]", fullmatch=True)))


def _port(s: Shapes, kind: JobKind) -> Any:
    port: dict[str, Any] = {}
    s.maybe(
        port,
        "name",
        [kind.default_port_name, "http", "metrics"],
        ["", "Bad_Port", "a--b", "-a", "1234", "abcdefghijklmnop"],
        often=True,
    )
    port["containerPort"] = s.pick([kind.default_port, 80, 8080, 9090], [None, 0, -1, 70000])
    return s.typed(port)


def _container(s: Shapes, kind: JobKind, name: str) -> Any:
    side = name != kind.default_container
    odd_names = ["Bad", "x" * 64, "init-pytorch", "kubectl-delivery", "sidecar", "setup"]
    container: dict[str, Any] = {
        "name": s.pick([name], [*odd_names, "", None, kind.default_container], often=side),
        "image": s.pick(["img:1"], ["", None]),
    }
    if s.draw(st.booleans()):
        container["ports"] = s.typed([_port(s, kind) for _ in range(s.draw(st.integers(0, 2)))])
    return s.typed(container)


def _replica_spec(s: Shapes, kind: JobKind, rtype: str) -> Any:
    if s.rarely() and s.rarely():
        return None  # a null replica spec
    rspec: dict[str, Any] = {}
    if rtype in ("Master", "Launcher") and kind is not TFJOB:
        s.maybe(rspec, "replicas", [None, 1], [0, 2, -1])
    else:
        s.maybe(rspec, "replicas", [None, 1, 2, 3] + ([] if kind is PYTORCHJOB else [0]), [-1])
    s.maybe(
        rspec,
        "restartPolicy",
        ["Always", "OnFailure", "Never", "ExitCode"],
        ["", "Sometimes", "always"],
    )
    names = [kind.default_container] + ["sidecar"] * s.draw(st.integers(0, 1))
    if s.rarely():
        names = names[1:] if s.draw(st.booleans()) else names + names
    pod_spec: dict[str, Any] = {"containers": s.typed([_container(s, kind, n) for n in names])}
    if s.draw(st.integers(0, 3)) == 0:
        pod_spec["initContainers"] = s.typed([_container(s, kind, "setup")])
    rspec["template"] = s.typed({"spec": s.typed(pod_spec)})
    return s.typed(rspec)


def _replica_specs(s: Shapes, kind: JobKind) -> Any:
    required = {XGBOOSTJOB: ("Master",), MPIJOB: ("Launcher",)}.get(kind, ())
    rtypes: list[str] = []
    for rtype in kind.replica_types:
        wanted = not s.rarely() if rtype in required else s.draw(st.booleans())
        if wanted:
            rtypes.append(rtype)
    if s.rarely():
        known = list(kind.replica_types)
        odd = [t.lower() for t in known] + ["Launcher", "Chief", "Custom", "my_type", "y" * 60]
        rtypes.append(s.draw(st.sampled_from(odd)))
    return s.typed({t: _replica_spec(s, kind, t) for t in rtypes})


def _run_policy(s: Shapes) -> Any:
    policy: dict[str, Any] = {}
    s.maybe(policy, "cleanPodPolicy", ["None", "Running", "All"], ["Sometimes", ""])
    for field in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        s.maybe(policy, field, [None, 0, 3, 3600], [-1])
    s.maybe(policy, "suspend", [False], [True])
    s.maybe(
        policy,
        "managedBy",
        ["kubeflow.org/training-operator"],
        ["kueue.x-k8s.io/multikueue", "me/else"],
    )
    scheduling: dict[str, Any] = {}
    s.maybe(scheduling, "minAvailable", [None, 0, 1, 2], [-1])
    s.maybe(scheduling, "queue", ["", "a", "b"], [])
    if s.draw(st.booleans()):
        policy["schedulingPolicy"] = s.typed(scheduling)
    return s.typed(policy)


def _elastic_policy(s: Shapes) -> Any:
    elastic: dict[str, Any] = {}
    s.maybe(elastic, "minReplicas", [None, 1, 2], [0, -1])
    s.maybe(elastic, "maxReplicas", [None, 2, 3], [0, -1])
    s.maybe(elastic, "maxRestarts", [None, 0, 3], [-1])
    return s.typed(elastic)


def _status(s: Shapes) -> Any:
    conditions = s.draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["Created", "Running", "Suspended"]),
                    "status": st.sampled_from(["True", "False"]),
                }
            ),
            max_size=2,
        )
    )
    return s.typed({"conditions": s.typed(conditions)})


@st.composite
def jobs(
    draw: st.DrawFn, kind: JobKind, *, wrong: bool = False, named: bool = False
) -> dict[str, Any]:
    """A random job of ``kind`` (see the module docstring); ``named``: never an empty name."""
    s = Shapes(draw, wrong=wrong)
    name = _name(s)
    if named and not name:
        name = "j"
    metadata = s.typed({"name": name, "namespace": "ns", "uid": "uid-1"})
    spec: dict[str, Any] = {}
    if not s.rarely():
        spec[kind.replica_field] = _replica_specs(s, kind)
    if draw(st.booleans()):
        spec["runPolicy"] = _run_policy(s)
    if kind in (PYTORCHJOB, PADDLEJOB) and draw(st.integers(0, 2)) == 0:
        spec["elasticPolicy"] = _elastic_policy(s)
    if kind is PYTORCHJOB:
        s.maybe(spec, "nprocPerNode", ["auto", "2"], [])
    if kind is MPIJOB:
        s.maybe(spec, "slotsPerWorker", [None, 0, 1, 2], [-1])
        s.maybe(spec, "cleanPodPolicy", ["None", "Running", "All"], ["Done"])
    if kind is TFJOB:
        s.maybe(spec, "enableDynamicWorker", [False, True], [])
    job: dict[str, Any] = {
        "apiVersion": "kubeflow.org/v1",
        "kind": kind.kind,
        "metadata": metadata,
        "spec": s.typed(spec),
    }
    if draw(st.integers(0, 3)) == 0:
        job["status"] = _status(s)
    return job


def _assert_well_formed(errors: list[FieldError]) -> None:
    for error in errors:
        assert isinstance(error, FieldError)
        hash(error)  # the webhook puts errors in sets
        assert FIELD_ROOT.match(error.field), error.field
        assert str(error).startswith(error.field + ": ")


@FAST
@given(data=st.data())
def test_validate_never_raises_and_names_spec_or_metadata_fields(
    data: st.DataObject,
) -> None:
    kind = data.draw(KINDS)
    job = data.draw(jobs(kind, wrong=True))
    before = copy.deepcopy(job)
    errors = validate(kind, job)
    _assert_well_formed(errors)
    assert validate_update(kind, job, job) == errors
    warnings(kind, job)
    assert job == before, "validation must not mutate the job"


@FAST
@given(data=st.data())
def test_validate_update_never_raises(data: st.DataObject) -> None:
    kind = data.draw(KINDS)
    old = data.draw(jobs(kind, wrong=True))
    new = data.draw(jobs(kind, wrong=True))
    errors = validate_update(kind, old, new)
    _assert_well_formed(errors)
    update_only = errors[: len(errors) - len(validate(kind, new))]
    assert {e.field for e in update_only} <= {
        "spec.runPolicy.managedBy",
        "spec.runPolicy.schedulingPolicy.queue",
    }


@FAST
@given(data=st.data())
def test_default_job_is_idempotent_and_never_raises(data: st.DataObject) -> None:
    kind = data.draw(KINDS)
    job = data.draw(jobs(kind))
    before = copy.deepcopy(job)
    once = default_job(kind, job)
    assert default_job(kind, once) == once
    assert job == before, "defaulting must not mutate the job"
    _assert_well_formed(validate(kind, once))


@FAST
@given(data=st.data())
def test_compute_status_never_raises_and_fails_nonsense_with_the_field_named(
    data: st.DataObject,
) -> None:
    """What the controller does with any job that reaches it (no webhook installed; pod
    templates keep unknown fields): one decision, never an exception (the operator keeps
    serving every other job); a job it refuses is Failed with a message naming a field."""
    kind = data.draw(KINDS)
    job = data.draw(jobs(kind, wrong=True, named=True))
    job.pop("status", None)
    job["metadata"] = {"name": "j", "namespace": "ns", "uid": "uid-1"}  # the server's own
    before = copy.deepcopy(job)
    decision = compute_status(ADAPTERS[kind.kind], job, [], [], now=T0)
    assert job == before, "compute_status must not mutate the job"
    if decision.invalid is not None:
        assert cond.is_failed(decision.status)
        assert re.search(r"\bspec\b", decision.invalid), decision.invalid
        assert not decision.create_pods and not decision.create_services


@FAST
@given(data=st.data())
def test_accepted_jobs_reconcile_without_invalid_or_error(
    data: st.DataObject,
) -> None:
    kind = data.draw(KINDS)
    job = data.draw(jobs(kind, named=True))
    if validate(kind, default_job(kind, job)):
        return
    decision = compute_status(ADAPTERS[kind.kind], job, [], [], now=T0)
    assert not decision.invalid
    assert decision.error is None
    for obj in [*decision.create_pods, *decision.create_services]:
        name = obj["metadata"]["name"]
        assert len(name) <= 63 and DNS1035_LABEL.fullmatch(name), name
    for pod in decision.create_pods:
        pod_spec = pod["spec"]
        containers = pod_spec["containers"] + pod_spec.get("initContainers", [])
        names = [c["name"] for c in containers]
        assert len(names) == len(set(names)), names
        for container in containers:
            assert len(container["name"]) <= 63 and DNS1123_LABEL.fullmatch(container["name"])
            assert container["image"]
            for port in container.get("ports") or []:
                assert 1 <= port["containerPort"] <= 65535
                assert not port.get("name") or IANA_SVC_NAME.fullmatch(port["name"]), port
    for service in decision.create_services:
        ports = service["spec"]["ports"]
        assert len({p["port"] for p in ports}) == len(ports)
        assert len(ports) <= 1 or all(p["name"] for p in ports)


Mutation = Callable[[dict[str, Any]], None]


def _at(path: list[str | int], value: object) -> Mutation:
    """Puts ``value`` at ``path`` below the job's Worker spec (``[]``: the Worker spec; a path
    starting with ``"/"`` is below ``spec`` instead)."""

    def mutate(job: dict[str, Any]) -> None:
        if path[:1] == ["/"]:
            keys = ["spec", *path[1:]]
        else:
            keys = ["spec", next(k for k in job["spec"] if k.endswith("ReplicaSpecs")), "Worker"]
            keys += path
        target = job
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return mutate


def _replace_spec(job: dict[str, Any]) -> None:
    job["spec"] = ["not", "an", "object"]


def _elastic_without_worker_object(job: dict[str, Any]) -> None:
    job["spec"]["paddleReplicaSpecs"]["Worker"] = "x"
    job["spec"]["elasticPolicy"] = {}


CONTAINER = ["template", "spec", "containers", 0]


@pytest.mark.parametrize(
    "kind, mutation",
    [
        pytest.param(PADDLEJOB, _replace_spec, id="spec-array"),
        pytest.param(PADDLEJOB, _at(["/", "runPolicy"], "x"), id="runPolicy-string"),
        pytest.param(
            PYTORCHJOB,
            _at(["/", "elasticPolicy"], 3),
            id="pytorch-elasticPolicy-integer",
        ),
        pytest.param(PADDLEJOB, _at(["/", "elasticPolicy"], 3), id="paddle-elasticPolicy-integer"),
        pytest.param(
            PADDLEJOB,
            _elastic_without_worker_object,
            id="elastic-with-worker-string",
        ),
        pytest.param(
            JAXJOB,
            _at(["template", "spec"], "x"),
            id="template.spec-string",
        ),
        pytest.param(
            JAXJOB,
            _at(["template", "spec", "containers"], ["x"]),
            id="container-string",
        ),
        pytest.param(TFJOB, _at([*CONTAINER, "ports"], "x"), id="ports-string"),
        pytest.param(TFJOB, _at([*CONTAINER, "ports"], [5]), id="port-integer"),
        pytest.param(TFJOB, _at([*CONTAINER, "name"], 5), id="container-name-integer"),
        pytest.param(XGBOOSTJOB, _at([], "x"), id="replica-spec-string"),
        pytest.param(MPIJOB, _at(["replicas"], "2"), id="replicas-string"),
    ],
)
def test_default_job_on_wrongly_typed_jobs(kind: JobKind, mutation: Mutation) -> None:
    """The mutating webhook defaults whatever it is sent (the schema check comes later), so
    ``default_job`` must not raise on wrong JSON types either; ``validate`` names them."""
    lead = {XGBOOSTJOB: "Master", MPIJOB: "Launcher"}.get(kind)
    job = make_job(kind.kind, {lead: 1, "Worker": 2} if lead else {"Worker": 2})
    assert not validate(kind, job)
    mutation(job)
    assert validate(kind, job), "validate must name the wrong type"
    once = default_job(kind, job)
    assert default_job(kind, once) == once
