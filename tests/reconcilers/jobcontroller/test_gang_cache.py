"""``GangCache`` (``jobcontroller/gang_cache.py``) and one reconcile with gang scheduling: the
PodGroup is created once and not written again while the cache shows it unchanged, Volcano's pods
wait for its phase, and a reconciler asked for gang scheduling without the caches refuses."""

from __future__ import annotations

import copy

import pytest
from fakes import RecordingJobWriter, RecordingRecorder
from jobkit import make_job, uid_indexed_store

from kubetrain.base.clock import FakeClock
from kubetrain.base.objects import Obj
from kubetrain.engine.metrics import new_registry
from kubetrain.engine.reconcile import Request
from kubetrain.informers.lister import Lister
from kubetrain.informers.store import Store
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.common.kind_adapter import DomainOptions
from kubetrain.reconcilers.gang import GangScheduler
from kubetrain.reconcilers.jobcontroller import JobControllerOptions, JobReconciler
from kubetrain.reconcilers.jobcontroller.gang_cache import GangCache
from kubetrain.reconcilers.kinds import ADAPTERS
from kubetrain.reconcilers.metrics import JobMetrics

VOLCANO = GangScheduler(scheduler_name="volcano", volcano=True)


def owned_podgroup(uid: str, *, phase: str = "") -> Obj:
    podgroup: Obj = {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "PodGroup",
        "metadata": {
            "name": "j",
            "namespace": "ns",
            "ownerReferences": [{"kind": "PyTorchJob", "uid": uid, "controller": True}],
        },
        "spec": {"minMember": 1},
    }
    if phase:
        podgroup["status"] = {"phase": phase}
    return podgroup


def test_view_reads_the_jobs_own_podgroup_and_priority_values() -> None:
    podgroups, classes = Store(), Store()
    classes.upsert({"metadata": {"name": "high"}, "value": 1000})
    classes.upsert({"metadata": {"name": "odd"}, "value": "x"})
    cache = GangCache(podgroups=Lister(podgroups), priority_classes=Lister(classes))
    job = make_job("PyTorchJob", {"Master": 1})
    assert cache.view(job).podgroup is None
    podgroups.upsert(owned_podgroup("uid-1"))
    view = cache.view(job)
    assert view.podgroup is not None and view.podgroup["metadata"]["name"] == "j"
    assert (view.priority_value("high"), view.priority_value("odd")) == (1000, 0)
    assert view.priority_value("missing") is None
    # a namesake's PodGroup (a deleted job's, awaiting garbage collection) is not this job's
    podgroups.upsert(owned_podgroup("uid-old"))
    assert cache.view(job).podgroup is None


def gang_reconciler(
    jobs: Store,
    podgroups: Store,
    services: Store,
    client: RecordingJobWriter,
    expectations: Expectations,
) -> tuple[JobReconciler, RecordingRecorder]:
    recorder = RecordingRecorder()
    reconciler = JobReconciler(
        ADAPTERS["PyTorchJob"],
        client=client,
        jobs=Lister(jobs),
        pods=Lister(uid_indexed_store()),
        services=Lister(services),
        extras={"podgroups": Lister(podgroups)},
        recorder=recorder,
        metrics=JobMetrics(new_registry(process_metrics=False)),
        expectations=expectations,
        options=JobControllerOptions(
            domain=DomainOptions(gang=VOLCANO), clock=FakeClock(), status_batch_seconds=0
        ),
        gang=GangCache(podgroups=Lister(podgroups), priority_classes=Lister(Store())),
    )
    return reconciler, recorder


async def test_a_reconcile_creates_the_podgroup_once_and_holds_pods_until_admitted() -> None:
    jobs, podgroups = Store(), Store()
    client = RecordingJobWriter(jobs=jobs)
    job = make_job("PyTorchJob", {"Master": 1})
    job["metadata"]["resourceVersion"] = "1"
    jobs.upsert(job)
    expectations, services = Expectations(), uid_indexed_store()
    reconciler, recorder = gang_reconciler(jobs, podgroups, services, client, expectations)
    request = Request.from_key("ns/j")

    await reconciler.reconcile(request)
    assert client.verbs("podgroups") == ["create"]
    assert client.verbs("pods") == []
    assert client.verbs("services") == ["create"], "services are not held"
    services.upsert(client.objects[("services", "ns", "j-master-0")])  # its watch event
    expectations.observe_created("uid-1", "services", "j-master-0")
    assert ("Warning", "WaitingForPodGroup") in [(t, r) for t, r, _ in recorder.events]

    stored = copy.deepcopy(client.objects[("podgroups", "ns", "j")])
    stored["metadata"]["resourceVersion"] = "7"
    podgroups.upsert(stored)  # its watch event; phase still empty
    await reconciler.reconcile(request)
    assert client.verbs("podgroups") == ["create"], "unchanged PodGroup: not written again"
    assert client.verbs("pods") == []

    podgroups.upsert({**stored, "status": {"phase": "Inqueue"}})
    await reconciler.reconcile(request)
    assert client.verbs("podgroups") == ["create"]
    assert client.verbs("pods") == ["create"]
    pod = client.objects[("pods", "ns", "j-master-0")]
    assert pod["spec"]["schedulerName"] == "volcano"
    assert pod["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == "j"


def test_gang_options_without_the_caches_are_refused() -> None:
    with pytest.raises(ValueError, match="GangCache"):
        JobReconciler(
            ADAPTERS["PyTorchJob"],
            client=RecordingJobWriter(),
            jobs=Lister(Store()),
            pods=Lister(uid_indexed_store()),
            services=Lister(uid_indexed_store()),
            recorder=RecordingRecorder(),
            metrics=JobMetrics(new_registry(process_metrics=False)),
            expectations=Expectations(),
            options=JobControllerOptions(domain=DomainOptions(gang=VOLCANO)),
        )
