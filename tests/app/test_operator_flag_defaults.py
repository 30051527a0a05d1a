"""``kubetrain operator``'s flags default to the reference operator's values (where kubetrain
keeps them) and ``--enable-scheme`` picks kinds by name, refusing an unknown one."""

from __future__ import annotations

import argparse

import pytest

from kubetrain.operator import OperatorOptions, add_operator_flags, options_from_args


def test_operator_flags_defaults_are_the_reference_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEFLOW_NAMESPACE", "kubeflow")
    parser = argparse.ArgumentParser()
    add_operator_flags(parser)
    opts = options_from_args(parser.parse_args([]))
    # Not the reference's 20/30: no fixed rate, the adaptive in-flight limit (README, "API
    # request rate"); the flags still cap it when given.
    assert (opts.kube_api_qps, opts.kube_api_burst, opts.kube_api_max_inflight) == (0.0, 0, 64)
    # Not the reference's 1: reconciles are coroutines (see OperatorOptions.controller_threads).
    assert (opts.controller_threads, opts.shards, opts.create_concurrency) == (128, 1, 64)
    assert opts.namespace == "kubeflow"
    assert (opts.metrics_bind_address, opts.health_probe_bind_address) == (":8080", ":8081")
    assert opts.webhook_server_port == 9443
    assert len(opts.kinds) == 6
    opts = options_from_args(
        parser.parse_args(["--enable-scheme", "PyTorchJob", "--enable-scheme", "mpijob"])
    )
    assert [k.kind for k in opts.kinds] == ["PyTorchJob", "MPIJob"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--kube-api-max-inflight", "101"], "--kube-api-max-inflight must be 0..100"),
        (["--kube-api-qps", "-1"], "--kube-api-qps and --kube-api-burst must be >= 0"),
    ],
)
def test_api_limit_flags_are_checked(flags: list[str], message: str) -> None:
    parser = argparse.ArgumentParser()
    add_operator_flags(parser)
    with pytest.raises(ValueError, match=message):
        options_from_args(parser.parse_args(flags))


def test_unknown_scheme_is_rejected_naming_it() -> None:
    with pytest.raises(ValueError, match="sparkjob"):
        OperatorOptions(enable_schemes=("sparkjob",))
