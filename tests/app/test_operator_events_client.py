"""Events go through the client ``Operator`` is given for them (``run_operator`` passes one of
its own, so Events never spend the QPS budget of pod and status writes), else the main one."""

from __future__ import annotations

from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig
from kubetrain.engine.metrics import new_registry
from kubetrain.operator import Operator, OperatorOptions


def _client() -> ApiClient:
    return ApiClient(
        ClientConfig(server="http://127.0.0.1:1"),
        ClientOptions(qps=5, burst=10, registry=new_registry(process_metrics=False)),
    )


def _operator(client: ApiClient, events_client: ApiClient | None = None) -> Operator:
    options = OperatorOptions(
        metrics_bind_address="0", health_probe_bind_address="0", webhook_server_port=0
    )
    return Operator(
        client, options, registry=new_registry(process_metrics=False), events_client=events_client
    )


def test_recorders_write_through_the_events_client() -> None:
    client, events = _client(), _client()
    operator = _operator(client, events)
    assert len(operator.recorders) == 7  # one per v1 kind, and MPIJob v2beta1's
    assert all(r.client is events for r in operator.recorders)
    assert all(r.client is client for r in _operator(client).recorders)
