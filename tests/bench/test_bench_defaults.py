"""``kubetrain bench`` sizes default to ../shared/BENCHMARKS.md's: burst, churn and chaos 500 jobs,
ttl 5,000, backlog 50,000 finished jobs and 50 new ones; ``--quick`` shrinks each."""

from __future__ import annotations

import argparse

import pytest

from kubetrain.bench.cli import add_bench_flags, options_from_args


def _options(*argv: str) -> object:
    parser = argparse.ArgumentParser()
    add_bench_flags(parser)
    return options_from_args(parser.parse_args(list(argv)))


@pytest.mark.parametrize(
    ("scenario", "jobs", "quick_jobs"),
    [("burst", 500, 20), ("chaos", 500, 20), ("ttl", 5_000, 20), ("backlog", 50_000, 500)],
)
def test_default_and_quick_sizes(scenario: str, jobs: int, quick_jobs: int) -> None:
    assert _options(scenario).jobs == jobs  # type: ignore[attr-defined]
    assert _options(scenario, "--quick").jobs == quick_jobs  # type: ignore[attr-defined]


def test_backlog_new_jobs_and_arrivals() -> None:
    full, quick = _options("backlog"), _options("backlog", "--quick")
    assert (full.new_jobs, full.arrival_seconds) == (50, 5.0)  # type: ignore[attr-defined]
    assert (quick.new_jobs, quick.arrival_seconds) == (5, 1.0)  # type: ignore[attr-defined]


def test_the_tenant_probe_is_on_unless_no_probe() -> None:
    full, quick = _options("burst"), _options("burst", "--quick")
    assert full.probe.idle_seconds == 5.0  # type: ignore[attr-defined]
    assert quick.probe.idle_seconds == 2.0  # type: ignore[attr-defined]
    assert _options("burst", "--no-probe").probe is None  # type: ignore[attr-defined]


def test_other_identities_need_a_cluster_of_ones_own() -> None:
    with pytest.raises(ValueError, match="need --kubeconfig"):
        _options("burst", "--operator-kubeconfig", "sa.kubeconfig")
    _options("burst", "--kubeconfig", "a", "--operator-kubeconfig", "b", "--probe-kubeconfig", "c")


@pytest.mark.parametrize(
    ("scenario", "jobs", "backlog_pods"),
    [("burst", 5_000, False), ("ttl", 20_000, False), ("backlog", 200_000, False)],
)
def test_the_large_preset_is_ten_times_the_default(
    scenario: str, jobs: int, backlog_pods: bool
) -> None:
    options = _options(scenario, "--large")
    assert options.jobs == jobs  # type: ignore[attr-defined]
    assert options.backlog_pods is backlog_pods  # type: ignore[attr-defined]


def test_backlog_pods_are_kept_by_default_and_can_be_cleaned_or_kept_at_any_size() -> None:
    assert _options("backlog").backlog_pods is True  # type: ignore[attr-defined]
    assert _options("backlog", "--no-backlog-pods").backlog_pods is False  # type: ignore[attr-defined]
    assert _options("backlog", "--large", "--backlog-pods").backlog_pods is True  # type: ignore[attr-defined]


def test_large_is_refused_where_there_is_no_preset() -> None:
    with pytest.raises(ValueError, match="churn has no large preset"):
        _options("churn", "--large")
    with pytest.raises(SystemExit):
        _options("burst", "--large", "--quick")  # argparse: not allowed with each other
