"""Request counts from the API server's exposition, deltas, and the writes of the measured system."""

from __future__ import annotations

from kubetrain.bench.apimetrics import (
    delta,
    operator_writes,
    parse_request_counts,
    without_events,
)

EXPOSITION = """\
# HELP apiserver_request_total Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{verb="POST",dry_run="",group="",version="v1",resource="pods",subresource="",scope="resource",component="apiserver",code="201"} 8.0
apiserver_request_total{verb="POST",dry_run="",group="",version="v1",resource="pods",subresource="",scope="resource",component="apiserver",code="409"} 1.0
apiserver_request_total{verb="PUT",dry_run="",group="",version="v1",resource="pods",subresource="status",scope="resource",component="apiserver",code="200"} 16.0
apiserver_request_total{verb="POST",dry_run="",group="",version="v1",resource="pods",subresource="binding",scope="resource",component="apiserver",code="201"} 8.0
apiserver_request_total{verb="POST",dry_run="",group="kubeflow.org",version="v1",resource="pytorchjobs",subresource="",scope="resource",component="apiserver",code="201"} 2.0
apiserver_request_total{verb="PUT",dry_run="",group="kubeflow.org",version="v1",resource="pytorchjobs",subresource="status",scope="resource",component="apiserver",code="200"} 6.0
apiserver_request_total{verb="POST",dry_run="",group="",version="v1",resource="events",subresource="",scope="resource",component="apiserver",code="201"} 5.0
apiserver_request_total{verb="PUT",dry_run="",group="coordination.k8s.io",version="v1",resource="leases",subresource="",scope="resource",component="apiserver",code="200"} 3.0
apiserver_request_total{verb="LIST",dry_run="",group="",version="v1",resource="pods",subresource="",scope="namespace",component="apiserver",code="200"} 2.0
# HELP apiserver_request_created Created.
# TYPE apiserver_request_created gauge
apiserver_request_created{verb="LIST",dry_run="",group="",version="v1",resource="pods",subresource="",scope="namespace",component="apiserver",code="200"} 1.7e9
"""


def test_parse_sums_codes_and_keys_subresources() -> None:
    counts = parse_request_counts(EXPOSITION)
    assert counts["POST pods"] == 9
    assert counts["PUT pods/status"] == 16
    assert counts["PUT pytorchjobs/status"] == 6
    assert counts["LIST pods"] == 2
    assert not any(k.startswith("apiserver") for k in counts)


def test_parse_by_code_keeps_codes_apart() -> None:
    counts = parse_request_counts(EXPOSITION, by_code=True)
    assert counts["POST pods 201"] == 8
    assert counts["POST pods 409"] == 1
    assert "POST pods" not in counts


def test_delta_drops_unchanged_keys() -> None:
    before = {"POST pods": 3, "LIST pods": 2}
    after = {"POST pods": 10, "LIST pods": 2, "POST services": 4}
    assert delta(before, after) == {"POST pods": 7, "POST services": 4}


def test_operator_writes_leave_out_kubelets_scheduler_leases_and_harness() -> None:
    writes = operator_writes(parse_request_counts(EXPOSITION))
    assert writes == {"POST pods": 9, "PUT pytorchjobs/status": 6, "POST events": 5}
    assert without_events(writes) == {"POST pods": 9, "PUT pytorchjobs/status": 6}


def test_operator_writes_match_grouped_resource_names() -> None:
    writes = operator_writes(
        {"POST pytorchjobs.kubeflow.org": 3, "DELETE pytorchjobs.kubeflow.org": 2}
    )
    assert writes == {"DELETE pytorchjobs.kubeflow.org": 2}
