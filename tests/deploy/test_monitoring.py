"""deploy/monitoring with the real promtool: the rules check and their unit tests pass (each alert
fires from synthetic series and stays quiet on healthy ones); the PrometheusRule carries the same
groups; every alert has a runbook in docs/alerts.md; every metric the alerts read is exported by a
running operator (scraped from its registry after a run that exercises each of them)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from test_manifests import deploy_tool

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from jobkit_e2e import SIM, job_manifest, open_env  # noqa: E402

from kubetrain.engine.client import ApiClient, ClientOptions  # noqa: E402
from kubetrain.engine.config import load_kubeconfig  # noqa: E402
from kubetrain.engine.metrics import new_registry  # noqa: E402
from kubetrain.operator import Operator, OperatorOptions  # noqa: E402
from kubetrain.reconcilers.api.webhooks import WebhookService  # noqa: E402
from kubetrain.up import free_port  # noqa: E402
from kubetrain.webhook_install import install_webhooks, wait_until_admitting  # noqa: E402

METRIC = re.compile(
    r"\b((?:kubetrain|workqueue|controller_runtime|rest_client|leader_election|training_operator"
    r"|process)_[a-z0-9_]+)\b"
)
sys.path.insert(0, str(ROOT / "tools" / "deploy"))

import gen_dashboard  # noqa: E402


def dashboard_queries() -> list[str]:
    board = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def rules() -> list[dict[str, object]]:
    groups = yaml.safe_load((MONITORING / "alerts.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    promtool = deploy_tool("promtool")
    for args in (["check", "rules", "alerts.yaml"], ["test", "rules", "alerts_test.yaml"]):
        done = subprocess.run(
            [promtool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout


def test_every_alert_is_tested_firing_and_has_a_runbook() -> None:
    tests = (MONITORING / "alerts_test.yaml").read_text()
    runbooks = (ROOT / "docs" / "alerts.md").read_text()
    for rule in rules():
        name = str(rule["alert"])
        assert f"alertname: {name}\n        exp_alerts:\n          - exp_labels" in tests, name
        assert f"\n## {name}\n" in runbooks, f"no runbook section for {name}"
        assert rule["annotations"]["runbook"] == f"docs/alerts.md#{name.lower()}"  # type: ignore[index]


def test_the_dashboard_is_generated_and_every_query_parses(tmp_path: Path) -> None:
    assert (MONITORING / "grafana-dashboard.json").read_text() == gen_dashboard.render(), (
        "grafana-dashboard.json is stale: run tools/deploy/gen_dashboard.py"
    )
    queries = dashboard_queries()
    assert len(queries) >= 25
    # promtool parses PromQL in rule files: each query as a recording rule
    records = [{"record": f"kubetrain:panel:{i}", "expr": q} for i, q in enumerate(queries)]
    (tmp_path / "panels.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "panels", "rules": records}]})
    )
    done = subprocess.run(
        [deploy_tool("promtool"), "check", "rules", "panels.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_prometheus_rule_carries_the_same_groups() -> None:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"] == yaml.safe_load((MONITORING / "alerts.yaml").read_text())


@pytest.mark.asyncio(loop_scope="function")
async def test_every_metric_the_alerts_read_is_exported_by_a_running_operator() -> None:
    exprs = [str(rule["expr"]) for rule in rules()] + dashboard_queries()
    wanted = {m for expr in exprs for m in METRIC.findall(expr)}
    assert len(wanted) >= 20
    registry = new_registry()  # with process_* (the dashboard's memory and CPU)
    await run_jobs_through_an_operator(registry, metrics_bind_address="0")
    scraped = generate_latest(registry).decode()
    exported = {
        line.split("{")[0].split(" ")[0] for line in scraped.splitlines() if line[:1] != "#"
    }
    missing = sorted(wanted - exported)
    assert missing == [], f"read by the alerts but not exported: {missing}"


@pytest.mark.asyncio(loop_scope="function")
async def test_a_real_prometheus_gets_data_for_every_panel(tmp_path: Path) -> None:
    """Prometheus scrapes an operator every second while it runs jobs; then every panel query
    of the dashboard returns data."""
    prometheus = deploy_tool("prometheus")
    metrics_port = free_port()
    prometheus_port = free_port()
    while prometheus_port == metrics_port:  # both free now, so the same one may come back
        prometheus_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "kubetrain-metrics",
                        "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"],
                                            "labels": {"pod": "kubetrain-0"}}],
                    }
                ],
            }
        )
    )  # fmt: skip
    server = subprocess.Popen(  # noqa: ASYNC220 - started once; the test then talks HTTP
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{prometheus_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{prometheus_port}"
    try:
        async with aiohttp.ClientSession() as session:
            await _until_ready(session, f"{base}/-/ready", server)

            async def scraped(successes: int) -> None:
                await _until_scraped(session, base, successes)

            running_at = await run_jobs_through_an_operator(
                new_registry(),
                metrics_bind_address=f"127.0.0.1:{metrics_port}",
                scraped=scraped,
            )
            empty: list[str] = []
            for query in dashboard_queries():
                # at an instant the operator ran: after it stops, its gauges go stale
                params = {"query": query, "time": f"{running_at:.3f}"}
                async with session.get(f"{base}/api/v1/query", params=params) as resp:
                    answer = await resp.json()
                assert answer["status"] == "success", (query, answer)
                if not answer["data"]["result"]:
                    empty.append(query)
            assert empty == [], f"panels without data: {empty}"
    finally:
        server.terminate()
        server.wait(timeout=30)


async def _until_scraped(session: aiohttp.ClientSession, base: str, successes: int) -> None:
    """Wait until Prometheus has at least ``successes`` successful scrapes of the operator in
    the last minute (a scrape of a loaded machine can miss its 1 s timeout: fixed sleeps left
    rate() panels without their second sample in one CI run)."""
    query = 'sum_over_time(up{job="kubetrain-metrics"}[1m])'
    last: object = None
    for _ in range(600):
        async with session.get(f"{base}/api/v1/query", params={"query": query}) as resp:
            answer = await resp.json()
        result = answer.get("data", {}).get("result") or []
        last = result
        if result and float(result[0]["value"][1]) >= successes:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"Prometheus did not scrape the operator {successes} times: {last}")


async def _until_ready(
    session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[str]
) -> None:
    for _ in range(300):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "prometheus exited"
        try:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("prometheus did not become ready")


async def run_jobs_through_an_operator(
    registry: CollectorRegistry,
    *,
    metrics_bind_address: str,
    scraped: Callable[[int], Awaitable[None]] | None = None,
) -> float:
    """An operator (webhooks, leader election; metrics in ``registry``, served at
    ``metrics_bind_address``) through a job deleted by its TTL and a failed one; returns the
    wall time just before the operator stopped (queries at that instant see its gauges, which
    go stale with the first failed scrape after). ``scraped(n)``: waits until the operator has
    been scraped successfully ``n`` times (before the jobs, so rates have a first sample, and
    after them)."""
    service = WebhookService(namespace="kubeflow")
    async for env in open_env(nodes=2):
        # free_port() may hand back the metrics port (free until the operator binds it)
        taken = {metrics_bind_address.rpartition(":")[2]}
        port = free_port()
        while str(port) in taken:
            port = free_port()
        await install_webhooks(env.client, port=port, service=service)
        config = await load_kubeconfig(env.cluster.kubeconfig_path)
        async with ApiClient(config, ClientOptions(registry=registry)) as client:
            options = OperatorOptions(
                metrics_bind_address=metrics_bind_address,
                health_probe_bind_address="0",
                webhook_server_port=port,
                operator_namespace=service.namespace,
                leader_elect=True,
                component_host="test",
                graceful_shutdown_timeout=2.0,
            )
            operator = Operator(client, options, registry=registry)
            run = asyncio.create_task(operator.run())
            try:
                await wait_until_admitting(env.client)
                await asyncio.sleep(2)  # scrapes before the jobs: rates need a first sample
                if scraped is not None:
                    await scraped(2)
                ok = job_manifest(
                    "TFJob", "tfReplicaSpecs", "tensorflow", {"Worker": 1}, name="ok",
                    namespace="default", run_policy={"ttlSecondsAfterFinished": 0},
                )  # fmt: skip
                failing = job_manifest(
                    "TFJob", "tfReplicaSpecs", "tensorflow", {"Worker": 1}, name="failing",
                    namespace="default", restart_policy="Never",
                    annotations={"Worker": {SIM + "exit-code": "1"}},
                )  # fmt: skip
                for job in (ok, failing):
                    await env.create_job(job)
                await env.wait_condition("TFJob", "default", "failing", "Failed")
                for _ in range(100):  # the TTL deletion of "ok"
                    if await env.get_job("TFJob", "default", "ok") is None:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(4)  # a few more scrapes
                if scraped is not None:
                    await scraped(6)
                running_at = time.time()
            finally:
                operator.request_stop()
                await asyncio.wait_for(run, 30)
                await operator.close()
        break
    return running_at
