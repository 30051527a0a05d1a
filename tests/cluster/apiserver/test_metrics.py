"""The API server's /metrics: kube's request counter and histogram, watcher and object gauges."""

from __future__ import annotations

import asyncio

from apiserver_helpers import Raw, widget, widget_crd
from prometheus_client.parser import text_string_to_metric_families

from kubetrain.cluster.apiserver.faults import FaultRule
from kubetrain.cluster.embedded import EmbeddedCluster

CM = "/api/v1/namespaces/default/configmaps"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"


async def scrape(raw: Raw) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name from GET /metrics."""
    status, text, headers = await raw.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(v for lab, v in samples if all(lab.get(k) == x for k, x in labels.items()))


async def test_requests_counted_with_kube_verbs_and_codes(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    await raw.post(CM, {"metadata": {"name": "a"}})
    await raw.post(CM, {"metadata": {"name": "a"}})  # 409
    await raw.get(CM)
    await raw.get(CM + "/a")
    await raw.get(CM + "/missing")  # 404
    await raw.patch(CM + "/a", {"data": {"k": "v"}})
    await raw.call(
        "PATCH",
        CM + "/a",
        raw=b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: w}\n",
        content_type="application/apply-patch+yaml",
        params={"fieldManager": "t"},
    )
    await raw.get("/api/v1/configmaps")
    await raw.delete(CM + "/a")
    await raw.delete(CM, params={"dryRun": "All"})
    m = cluster.api.metrics
    assert m.count(verb="POST", resource="configmaps", code=201) == 1
    assert m.count(verb="post", resource="configmaps", code=409) == 1
    assert m.count(verb="GET", resource="configmaps", code=200) == 1
    assert m.count(verb="GET", resource="configmaps", code=404) == 1
    assert m.count(verb="PATCH", resource="configmaps") == 1
    assert m.count(verb="APPLY", resource="configmaps") == 1
    assert m.count(verb="LIST", resource="configmaps") == 2
    assert m.count(verb="DELETE", resource="configmaps", code=200) == 1
    assert m.count(verb="DELETECOLLECTION", resource="configmaps") == 1
    samples = (await scrape(raw))["apiserver_request_total"]
    assert value(samples, verb="LIST", resource="configmaps", scope="namespace", code="200") == 1
    assert value(samples, verb="LIST", resource="configmaps", scope="cluster", code="200") == 1
    assert value(samples, verb="POST", scope="resource", group="", version="v1", code="201") >= 1
    assert value(samples, verb="DELETECOLLECTION", dry_run="All", component="apiserver") == 1


async def test_subresources_groups_and_injected_errors_are_labelled(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    await raw.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", widget_crd())
    assert (await raw.post(WIDGETS, widget("w")))[0] == 201
    await raw.patch(WIDGETS + "/w/status", {"status": {"replicas": 1}})
    cluster.api.faults.add(FaultRule(action="error", code=429, resource="widgets", count=1))
    assert (await raw.get(WIDGETS))[0] == 429
    m = cluster.api.metrics
    assert m.count(resource="widgets", subresource="status", verb="PATCH", code=200) == 1
    assert m.count(resource="widgets", group="example.com", code=429) == 1
    samples = (await scrape(raw))["apiserver_request_total"]
    assert value(samples, resource="widgets", group="example.com", version="v1", code="429") == 1


async def test_duration_histogram_observes_requests(cluster: EmbeddedCluster, raw: Raw) -> None:
    cluster.api.faults.add(FaultRule(action="latency", verb="get", latency_seconds=0.06))
    await raw.post(CM, {"metadata": {"name": "a"}})
    await raw.get(CM + "/a")
    metrics = await scrape(raw)
    count = metrics["apiserver_request_duration_seconds_count"]
    assert value(count, verb="GET", resource="configmaps") == 1
    buckets = metrics["apiserver_request_duration_seconds_bucket"]
    # the 60 ms latency lands above the 50 ms bucket
    assert value(buckets, verb="GET", resource="configmaps", le="0.05") == 0
    assert value(buckets, verb="GET", resource="configmaps", le="0.1") == 1
    assert "le" not in dict(count[0][0])


async def test_watch_counted_when_it_ends_and_watchers_gauge(
    cluster: EmbeddedCluster, raw: Raw
) -> None:
    watch = asyncio.create_task(raw.watch_lines(CM, {"watch": "true"}, 1))
    for _ in range(500):
        if cluster.api.hub.watcher_count(("", "configmaps")):
            break
        await asyncio.sleep(0.01)
    gauges = (await scrape(raw))["apiserver_registered_watchers"]
    assert value(gauges, resource="configmaps") == 1
    assert cluster.api.metrics.count(verb="WATCH") == 0  # still open
    await raw.post(CM, {"metadata": {"name": "a"}})
    assert len(await asyncio.wait_for(watch, 5)) == 1
    for _ in range(500):
        if cluster.api.metrics.count(verb="WATCH", resource="configmaps", code=200):
            break
        await asyncio.sleep(0.01)
    assert cluster.api.metrics.count(verb="WATCH", resource="configmaps", code=200) == 1
    assert value((await scrape(raw))["apiserver_registered_watchers"], resource="configmaps") == 0


async def test_storage_objects_and_events_received(cluster: EmbeddedCluster, raw: Raw) -> None:
    await raw.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", widget_crd())
    for i in range(3):
        await raw.post(WIDGETS, widget(f"w{i}"))
    await raw.delete(WIDGETS + "/w0")
    metrics = await scrape(raw)
    objects = metrics["apiserver_storage_objects"]
    assert value(objects, resource="widgets.example.com") == 2
    assert value(objects, resource="namespaces") == len(
        (await raw.get("/api/v1/namespaces"))[1]["items"]
    )
    events = metrics["apiserver_watch_cache_events_received_total"]
    assert value(events, resource="widgets.example.com") == 4


async def test_non_resource_requests_are_not_counted(cluster: EmbeddedCluster, raw: Raw) -> None:
    for path in ("/version", "/api", "/apis", "/metrics", "/kubetrain/faults", "/healthz"):
        assert (await raw.get(path))[0] == 200
    assert cluster.api.metrics.count() == 0


async def test_each_server_counts_only_its_own_requests(cluster: EmbeddedCluster, raw: Raw) -> None:
    async with EmbeddedCluster() as other:
        assert other.api.metrics.registry is not cluster.api.metrics.registry
        await raw.get(CM)
        assert cluster.api.metrics.count(verb="LIST") == 1
        assert other.api.metrics.count() == 0


def test_request_series_are_written_as_prometheus_clients_counter_and_histogram() -> None:
    """The request counter and histogram are kept as plain numbers (``_RequestCollector``);
    their exposition is byte for byte what prometheus_client's ``Counter`` and ``Histogram``
    write for the same requests (creation timestamps aside)."""
    import random
    import re

    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    from kubetrain.cluster.apiserver import metrics as m
    from kubetrain.cluster.apiserver.requestinfo import RequestInfo
    from kubetrain.cluster.apiserver.resources import ResourceRegistry
    from kubetrain.cluster.apiserver.store import ObjectStore
    from kubetrain.cluster.apiserver.watch import WatchHub

    hub = WatchHub()
    ours = m.ApiMetrics(store=ObjectStore(hub=hub), hub=hub, registry=ResourceRegistry())
    ref = CollectorRegistry(auto_describe=False)
    labels = (*m._REQUEST_LABELS, "code")
    counter = Counter("apiserver_request_total", m._REQUESTS_HELP, labels, registry=ref)
    histogram = Histogram(
        "apiserver_request_duration_seconds",
        m._DURATIONS_HELP,
        m._REQUEST_LABELS,
        buckets=m.REQUEST_DURATION_BUCKETS,
        registry=ref,
    )
    infos = [
        RequestInfo(verb, verb.upper(), group, "v1", "pods", sub, "ns", "", "resource", dry)
        for verb in ("create", "list")
        for group in ("", "batch")
        for sub in ("", "status")
        for dry in (False, True)
    ]
    rnd = random.Random(7)
    seconds = [0.0, 0.001, 0.005, 0.0050001, 1.0, 60.0, 61.0] + [
        rnd.random() * 70 for _ in range(9)
    ]
    for _ in range(3000):
        info, code, s = rnd.choice(infos), rnd.choice((200, 201, 404)), rnd.choice(seconds)
        ours.observe(info, code, s)
        values = (info.metrics_verb, "All" if info.dry_run else "", info.group, info.version)
        values += (info.resource, info.subresource, info.scope, "apiserver")
        counter.labels(*values, str(code)).inc()
        histogram.labels(*values).observe(s)

    def requests_part(text: bytes) -> str:
        lines = [line for line in text.decode().splitlines() if "apiserver_request" in line]
        return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", "\n".join(lines))

    assert requests_part(ours.exposition()) == requests_part(generate_latest(ref))
    assert ours.count(verb="create", code=201) == sum(
        s.value
        for f in counter.collect()
        for s in f.samples
        if s.name.endswith("_total") and s.labels["verb"] == "CREATE" and s.labels["code"] == "201"
    )
