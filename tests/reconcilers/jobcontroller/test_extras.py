"""Extra objects (``jobcontroller/extras.py``): create-or-update that writes only when the object
differs from the desired body (fields the server added do not count), so a steady job costs no
request; cached kinds compare with the cache, the others with the body last applied."""

from __future__ import annotations

import copy

from fakes import RecordingJobWriter, RecordingRecorder
from jobkit import make_job

from kubetrain.base.objects import Obj
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import CONFIGMAPS, PODGROUPS_VOLCANO, kubeflow
from kubetrain.informers.store import Store
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.jobcontroller.extras import ExtraObjects, contains, same_content
from kubetrain.reconcilers.jobcontroller.memory import JobMemory
from kubetrain.reconcilers.jobcontroller.outcome import Outcome
from kubetrain.reconcilers.jobcontroller.recording import JobEvents
from kubetrain.reconcilers.kinds import ADAPTERS

JOB = make_job("MPIJob", {"Launcher": 1, "Worker": 1}, name="j")


def config_map(data: dict[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "j-config", "namespace": "ns"},
        "data": data,
    }


def role(verbs: list[str]) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "j-launcher", "namespace": "ns"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}],
    }


def extras(cached: Store) -> tuple[ExtraObjects, RecordingJobWriter]:
    client = RecordingJobWriter()
    writer = ExtraObjects(
        ADAPTERS["MPIJob"].kind,
        client=client,
        listers={CONFIGMAPS.plural: Lister(cached)},
        field_manager="kubetrain",
    )
    return writer, client


def test_contains_ignores_added_fields_but_not_list_lengths() -> None:
    assert contains({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 2}})
    assert not contains({"a": [1, 2]}, {"a": [1]})
    assert not contains({"a": 1}, {"a": 1, "b": None})
    server_side = {**config_map({"k": "v"}), "metadata": {"name": "j-config", "uid": "x"}}
    assert same_content(server_side, config_map({"k": "v"}))
    assert not same_content(server_side, config_map({"k": "w"}))


async def test_a_cached_object_is_written_only_when_it_differs() -> None:
    cache = Store()
    writer, client = extras(cache)
    memory, out = JobMemory("uid-1"), Outcome()
    await writer.apply(JOB, memory, config_map({"hostfile": "a"}), out)
    assert client.requests == [("create", "configmaps", "j-config")]

    stored = copy.deepcopy(client.objects[("configmaps", "ns", "j-config")])
    stored["metadata"]["uid"] = "server-set"
    cache.upsert(stored)  # its watch event
    await writer.apply(JOB, memory, config_map({"hostfile": "a"}), out)
    assert len(client.requests) == 1  # steady: no request

    await writer.apply(JOB, memory, config_map({"hostfile": "b"}), out)
    assert client.requests[1:] == [("update", "configmaps", "j-config")]
    assert not out.failures


async def test_an_uncached_object_is_compared_with_the_body_last_applied() -> None:
    writer, client = extras(Store())
    memory, out = JobMemory("uid-1"), Outcome()
    await writer.apply(JOB, memory, role(["get"]), out)
    await writer.apply(JOB, memory, role(["get"]), out)
    assert client.requests == [("create", "roles", "j-launcher")]

    # Changed, and already there: the create's 409 reads it and updates it.
    client.errors[("create", "j-launcher")] = ApiStatusError(409, reason="AlreadyExists")
    await writer.apply(JOB, memory, role(["get", "list"]), out)
    assert client.requests[1:] == [
        ("create", "roles", "j-launcher"),
        ("get", "roles", "j-launcher"),
        ("update", "roles", "j-launcher"),
    ]
    assert not out.failures


async def test_delete_skips_what_the_cache_shows_gone() -> None:
    writer, client = extras(Store())
    memory, out = JobMemory("uid-1"), Outcome()
    await writer.delete(JOB, memory, "v1", "ConfigMap", "j-config", out)
    assert client.requests == []
    await writer.delete(JOB, memory, "rbac.authorization.k8s.io/v1", "Role", "j-launcher", out)
    assert client.requests == [("delete", "roles", "j-launcher")]
    await writer.delete(JOB, memory, "example.com/v1", "Widget", "w", out)
    assert out.failures == ["delete example.com/v1 Widget w: unknown resource"]


# -- the gang scheduler's PodGroup ----------------------------------------------------------------

PODGROUP_API = "scheduling.volcano.sh/v1beta1"


def podgroup(min_member: int, *, annotations: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": "j", "namespace": "ns"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {
        "apiVersion": PODGROUP_API,
        "kind": "PodGroup",
        "metadata": meta,
        "spec": {"minMember": min_member, "queue": "default"},
    }


def podgroup_extras(cached: Store) -> tuple[ExtraObjects, RecordingJobWriter, RecordingRecorder]:
    client, recorder = RecordingJobWriter(), RecordingRecorder()
    writer = ExtraObjects(
        ADAPTERS["PyTorchJob"].kind,
        client=client,
        listers={PODGROUPS_VOLCANO.plural: Lister(cached)},
        field_manager="kubetrain",
        events=JobEvents(recorder, kubeflow("PyTorchJob")),
    )
    return writer, client, recorder


def test_annotations_count_as_content() -> None:
    cached = podgroup(2, annotations={"a": "1", "server": "x"})
    assert same_content(cached, podgroup(2, annotations={"a": "1"}))
    assert not same_content(cached, podgroup(2, annotations={"a": "2"}))


async def test_a_podgroup_is_written_once_and_its_update_keeps_the_schedulers_status() -> None:
    cache = Store()
    writer, client, _ = podgroup_extras(cache)
    memory, out = JobMemory("uid-1"), Outcome()
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 1})
    await writer.apply(job, memory, podgroup(2), out)
    assert client.requests == [("create", "podgroups", "j")]
    stored = copy.deepcopy(client.objects[("podgroups", "ns", "j")])
    assert stored["metadata"]["labels"] == {
        "training.kubeflow.org/operator-name": "pytorchjob-controller",
        "training.kubeflow.org/job-name": "j",
    }
    stored["status"] = {"phase": "Inqueue"}  # Volcano's
    cache.upsert(stored)
    await writer.apply(job, memory, podgroup(2), out)
    assert len(client.requests) == 1, "unchanged: no write"
    await writer.apply(job, memory, podgroup(1), out)
    assert client.requests[1:] == [("update", "podgroups", "j")]
    updated = client.objects[("podgroups", "ns", "j")]
    assert updated["spec"]["minMember"] == 1
    assert updated["status"] == {"phase": "Inqueue"}, "a CRD without status subresource keeps it"
    assert not out.failures


async def test_deleting_a_podgroup_records_the_references_events() -> None:
    cache = Store()
    cache.upsert(podgroup(2))
    writer, client, recorder = podgroup_extras(cache)
    job = make_job("PyTorchJob", {"Master": 1})
    out = Outcome()
    await writer.delete(job, JobMemory("uid-1"), PODGROUP_API, "PodGroup", "j", out)
    assert client.requests == [("delete", "podgroups", "j")]
    assert recorder.events == [("Normal", "SuccessfulDeletePodGroup", "Deleted PodGroup: j")]

    client.errors[("delete", "j")] = ApiStatusError(500, reason="InternalError")
    await writer.delete(job, JobMemory("uid-1"), PODGROUP_API, "PodGroup", "j", out)
    assert recorder.events[-1][:2] == ("Warning", "FailedDeletePodGroup")
    assert len(out.failures) == 1
