"""The operator's wiring of the trainer status server (``--trainjob-status-server``): on by
default where the TrainJob controller and the webhook server run, a route of the webhook server,
the settings handed to the TrainJob reconciler, and where the CA the trainers trust comes from."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import pytest

from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig
from kubetrain.engine.metrics import new_registry
from kubetrain.operator import Operator, OperatorOptions, add_operator_flags, options_from_args
from kubetrain.reconcilers.trainer.plugins.trainjob_status import StatusServerUnavailable
from kubetrain.reconcilers.trainer.status_server import ROUTE


def operator(**options: Any) -> Operator:
    client = ApiClient(
        ClientConfig(server="http://127.0.0.1:1"),
        ClientOptions(qps=5, burst=10, registry=new_registry(process_metrics=False)),
    )
    settings: dict[str, Any] = {
        "metrics_bind_address": "0",
        "health_probe_bind_address": "0",
        "trainjobs": "on",
        "operator_namespace": "ops",
        **options,
    }
    return Operator(
        client, OperatorOptions(**settings), registry=new_registry(process_metrics=False)
    )


def test_the_flag_is_on_by_default_and_negatable() -> None:
    parser = argparse.ArgumentParser()
    add_operator_flags(parser)
    assert options_from_args(parser.parse_args([])).trainjob_status_server is True
    off = options_from_args(parser.parse_args(["--no-trainjob-status-server"]))
    assert off.trainjob_status_server is False


def test_the_route_is_served_and_the_reconciler_injects() -> None:
    op = operator()
    assert op.webhooks is not None and ROUTE in op.webhooks.paths
    assert op.trainer_status is not None
    assert op.trainjobs is not None
    source = op.trainjobs.options.status_server
    assert source is not None
    assert (source.service_name, source.namespace, source.port) == (
        "kubetrain-webhook-service",
        "ops",
        443,
    )


@pytest.mark.parametrize(
    "options",
    [{"trainjob_status_server": False}, {"webhook_server_port": 0}, {"trainjobs": "off"}],
    ids=["flag-off", "no-webhook-server", "no-trainjob-controller"],
)
def test_off_means_no_route_and_nothing_injected(options: dict[str, Any]) -> None:
    op = operator(**options)
    assert op.trainer_status is None
    assert op.webhooks is None or ROUTE not in op.webhooks.paths
    if op.trainjobs is not None:
        assert op.trainjobs.options.status_server is None


def test_with_a_cert_dir_the_ca_is_its_ca_crt(tmp_path: Path) -> None:
    op = operator(webhook_cert_dir=str(tmp_path))
    assert op.trainjobs is not None and op.trainjobs.options.status_server is not None
    source = op.trainjobs.options.status_server
    with pytest.raises(StatusServerUnavailable, match=r"ca\.crt"):
        asyncio.run(source.settings())
    (tmp_path / "ca.crt").write_text("PEM\n")
    assert asyncio.run(source.settings()).ca_bundle == "PEM\n"


def test_with_the_self_managed_rotator_the_ca_is_what_it_made_trusted() -> None:
    """No API read per TrainJob build: the client points at a closed port, so a GET would fail."""
    op = operator()
    assert op.cert_rotator is not None
    assert op.trainjobs is not None and op.trainjobs.options.status_server is not None
    op.cert_rotator._trusted_bundle = b"-----BEGIN CERTIFICATE-----\nCA\n"
    source = op.trainjobs.options.status_server
    assert asyncio.run(source.settings()).ca_bundle == "-----BEGIN CERTIFICATE-----\nCA\n"
