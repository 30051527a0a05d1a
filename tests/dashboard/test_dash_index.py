"""``dashboard/index.py``: rows from job and pod events, pages, sorts, filters, counts, versions."""

from __future__ import annotations

import pytest
from dashboard_samples import T0, finished_row, pod, pytorchjob

from kubetrain.dashboard.index import SORTS, JobIndex, JobQuery, make_row


def names(answer: dict[str, object]) -> list[str]:
    return [row["name"] for row in answer["items"]]  # type: ignore[attr-defined, index]


def test_a_job_becomes_a_row_of_the_contract() -> None:
    job = pytorchjob(
        "a", created=10, workers=3, conditions=[("Created", 11), ("Running", 12)], completed=None
    )
    row = make_row("PyTorchJob", job)
    assert row == {
        "kind": "PyTorchJob",
        "namespace": "default",
        "name": "a",
        "uid": "uid-default-a",
        "state": "Running",
        "replicas": 4,
        "ready": 0,
        "created": T0 + 10,
        "finished": None,
    }
    done = make_row(
        "PyTorchJob",
        pytorchjob("b", created=10, conditions=[("Succeeded", 70)], completed=70),
    )
    assert done["state"] == "Succeeded" and done["finished"] == T0 + 70


def test_add_update_delete_move_the_version_and_counts() -> None:
    index = JobIndex()
    seen: list[tuple[str, object]] = []
    index.add_listener(lambda key, row: seen.append((key, row and row["state"])))
    index.upsert("PyTorchJob", pytorchjob("a", created=1))
    index.upsert("PyTorchJob", pytorchjob("b", created=2, conditions=[("Running", 3)]))
    assert index.version == 2 and len(index) == 2
    assert index.counts() == {"Pending": 1, "Running": 1}
    index.upsert("PyTorchJob", pytorchjob("a", created=1))  # unchanged: no new version
    assert index.version == 2
    index.upsert("PyTorchJob", pytorchjob("a", created=1, conditions=[("Failed", 4)]))
    assert index.counts() == {"Failed": 1, "Running": 1}
    index.delete("PyTorchJob", "default", "b")
    index.delete("PyTorchJob", "default", "missing")  # no-op
    assert index.version == 4 and len(index) == 1
    assert index.counts() == {"Failed": 1}
    assert seen == [
        ("PyTorchJob/default/a", "Pending"),
        ("PyTorchJob/default/b", "Running"),
        ("PyTorchJob/default/a", "Failed"),
        ("PyTorchJob/default/b", None),
    ]
    assert index.query(JobQuery())["items"][0]["state"] == "Failed"


def test_ready_counts_follow_pod_events() -> None:
    index = JobIndex()
    index.upsert("PyTorchJob", pytorchjob("a", workers=2))
    p1, p2 = pod("a-worker-0", "a"), pod("a-worker-1", "a")
    index.pod_changed(None, p1)
    index.pod_changed(None, p2)
    assert index.row("PyTorchJob/default/a")["ready"] == 0  # type: ignore[index]
    version = index.version
    r1 = pod("a-worker-0", "a", ready=True)
    index.pod_changed(p1, r1)
    index.pod_changed(p2, pod("a-worker-1", "a", ready=True))
    assert index.row("PyTorchJob/default/a")["ready"] == 2  # type: ignore[index]
    assert index.version == version + 2
    index.pod_changed(r1, r1)  # nothing changed
    assert index.version == version + 2
    index.pod_changed(r1, None)  # deleted while ready
    assert index.row("PyTorchJob/default/a")["ready"] == 1  # type: ignore[index]
    # a pod seen before its job: the job's row starts with it counted
    index.pod_changed(None, pod("b-worker-0", "b", ready=True))
    index.upsert("PyTorchJob", pytorchjob("b"))
    assert index.row("PyTorchJob/default/b")["ready"] == 1  # type: ignore[index]


@pytest.fixture
def many() -> JobIndex:
    index = JobIndex()
    for i in range(30):
        key, row = finished_row(i)
        index.put_row(key, row)
    return index


def test_paging_desc_and_asc(many: JobIndex) -> None:
    first = many.query(JobQuery(limit=10))
    assert first["total"] == 30 and first["offset"] == 0
    assert names(first) == [f"job-{i:06d}" for i in range(29, 19, -1)]  # newest first
    deep = many.query(JobQuery(offset=25, limit=10))
    assert names(deep) == [f"job-{i:06d}" for i in range(4, -1, -1)]
    asc = many.query(JobQuery(offset=5, limit=3, order="asc"))
    assert names(asc) == ["job-000005", "job-000006", "job-000007"]
    assert many.query(JobQuery(offset=30))["items"] == []


@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_orders_the_rows(many: JobIndex, sort: str) -> None:
    rows = many.query(JobQuery(sort=sort, order="asc", limit=500))["items"]
    rows_desc = many.query(JobQuery(sort=sort, limit=500))["items"]
    assert rows_desc == list(reversed(rows))
    field = {
        "created": lambda r: r["created"],
        "name": lambda r: r["name"],
        "namespace": lambda r: r["namespace"],
        "kind": lambda r: r["kind"],
        "state": lambda r: r["state"],
        "duration": lambda r: r["finished"] - r["created"],
        "replicas": lambda r: r["replicas"],
    }[sort]
    values = [field(r) for r in rows]
    assert values == sorted(values)


def test_running_jobs_sort_as_the_longest(many: JobIndex) -> None:
    many.upsert("PyTorchJob", pytorchjob("running", created=5, conditions=[("Running", 6)]))
    longest = many.query(JobQuery(sort="duration", limit=1))
    assert names(longest) == ["running"]


def test_filters_and_counts(many: JobIndex) -> None:
    by_kind = many.query(JobQuery(kinds=frozenset({"TFJob"}), limit=500))
    assert {r["kind"] for r in by_kind["items"]} == {"TFJob"}
    assert by_kind["total"] == len(by_kind["items"]) == 5  # i = 1, 8, 15, 22, 29
    failed = many.query(JobQuery(states=frozenset({"Failed"}), limit=500))
    assert names(failed) == ["job-000020", "job-000010", "job-000000"]
    # counts ignore the state filter (the page's state tabs), but follow the others
    assert failed["counts"] == {"Failed": 3, "Succeeded": 27}
    ns = many.query(JobQuery(namespace="team-3"))
    assert names(ns) == ["job-000003"]
    q = many.query(JobQuery(q="JOB-00001"))  # job-000010 ... job-000019, any case
    assert q["total"] == 10
    assert q["counts"] == {"Failed": 1, "Succeeded": 9}
    both = many.query(JobQuery(q="TEAM-1", states=frozenset({"Succeeded"})))  # team-1x too
    assert all(r["namespace"].startswith("team-1") for r in both["items"])
    assert many.query(JobQuery())["counts"] == {"Failed": 3, "Succeeded": 27}


def test_a_filtered_view_is_cached_until_the_version_changes(many: JobIndex) -> None:
    query = JobQuery(q="job", sort="name")
    first = many.query(query)
    view = many._views[(query.sort, query.kinds, query.states, query.namespace, query.q)]
    assert many.query(JobQuery(q="job", sort="name", offset=10))["total"] == first["total"]
    assert many._views[("name", frozenset(), frozenset(), "", "job")] is view  # not rebuilt
    key, row = finished_row(99)
    many.put_row(key, row)
    again = many.query(query)
    assert again["total"] == first["total"] + 1 and again["version"] == first["version"] + 1


@pytest.mark.parametrize(
    "bad",
    [
        {"sort": "age"},
        {"order": "up"},
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
    ],
)
def test_bad_queries_say_what_is_wrong(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        JobQuery(**bad)  # type: ignore[arg-type]
