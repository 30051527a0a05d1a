"""Admission webhook benchmark: ``python -m kubetrain.bench.webhook [--reviews N] [--creates N]``.

Two measurements, each printed as one JSON object (and written to ``--out`` when given):

1. **The webhook server alone.** ``kubetrain operator`` with only its webhook server doing work
   (a cert directory, no webhook configurations installed) in its own process; this process
   POSTs ``--reviews`` AdmissionReviews of a three-replica-type PyTorchJob (half to the mutating,
   half to the validating path) over ``--concurrency`` keep-alive HTTPS connections. Figures:
   reviews per second, latency p50/p99 as the client sees it, the operator's CPU seconds.
2. **Through the API server.** ``kubetrain cluster`` (a process) and the operator (a process,
   webhooks installed as ``kubetrain up`` installs them); ``--creates`` PyTorchJob creates at
   ``--concurrency``, once with the webhooks installed and once without, alternating in that
   order. Figures: create latency p50/p99 in both runs and their ratio: what admission adds.

Against a real API server: ``--kubeconfig FILE --endpoint-address IP`` (a non-loopback address of
this machine: kube-apiserver dials the webhook Service's EndpointSlice, never loopback; for
example the cluster of ``tools/conformance/real_cluster.py``). The CRDs must not be installed
yet, or be kubetrain's.

Wall-clock figures depend on the machine: compare them as ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import ssl
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.metrics import new_registry
from kubetrain.engine.webhook.certs import make_ca
from kubetrain.engine.webhook.rotator import MUTATING_CONFIGURATIONS, VALIDATING_CONFIGURATIONS
from kubetrain.informers.resource import NAMESPACES, ResourceRef, kubeflow
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.crds import all_crds
from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import PYTORCHJOB
from kubetrain.reconcilers.api.webhooks import (
    MUTATING_CONFIGURATION,
    VALIDATING_CONFIGURATION,
    WebhookService,
    mutate_path,
    validate_path,
)
from kubetrain.webhook_install import install_webhooks, wait_until_admitting

from .harness import ClusterProcess, ManagedProcess
from .scenarios.probe import free_port
from .stats import summarize

CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
)
SERVICE = WebhookService(namespace="kubetrain-bench")


def sample_job(name: str, namespace: str = "default") -> dict[str, Any]:
    """A PyTorchJob as users write them: Master + 3 Workers, env, resources, no defaults."""
    container = {
        "name": "pytorch",
        "image": "docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727",
        "command": ["python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1"],
        "env": [{"name": "NCCL_DEBUG", "value": "INFO"}],
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
    }
    template = {"spec": {"containers": [container]}}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": namespace, "labels": {"team": "bench"}},
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {"template": copy.deepcopy(template)},
                "Worker": {"replicas": 3, "template": copy.deepcopy(template)},
            }
        },
    }


def operator_argv(kubeconfig: str, port: int, *extra: str, host: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable, "-m", "kubetrain.cli", "operator",
        "--kubeconfig", kubeconfig,
        "--enable-scheme", "pytorchjob",
        "--metrics-bind-address", "0",
        "--health-probe-bind-address", "0",
        "--webhook-server-port", str(port),
        "--webhook-host", host,
        "--operator-namespace", SERVICE.namespace,
        # reconcile only the (empty) webhook namespace: the measured jobs create no pods
        "--namespace", SERVICE.namespace,
        "--kube-api-qps", "0",
        "--log-level", "warning",
        *extra,
    ]  # fmt: skip


async def bench_server(
    kubeconfig: str, workdir: Path, *, reviews: int, concurrency: int
) -> dict[str, Any]:
    """Measurement 1: AdmissionReviews straight at the operator's webhook server."""
    ca = make_ca(valid_days=1)
    cert = ca.issue_server_cert(dns_names=["localhost"], valid_days=1)
    cert_dir = workdir / "certs"
    cert_dir.mkdir(exist_ok=True)
    (cert_dir / "tls.crt").write_bytes(cert.cert_pem)
    (cert_dir / "tls.key").write_bytes(cert.key_pem)
    port = free_port()
    proc = ManagedProcess(
        "operator",
        operator_argv(kubeconfig, port, "--webhook-cert-dir", str(cert_dir)),
        log_path=workdir / "operator-server.log",
    )
    await proc.start()
    ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=ctx)
    paths = [mutate_path(PYTORCHJOB), validate_path(PYTORCHJOB)]

    def review(obj: dict[str, Any]) -> bytes:
        return orjson.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": str(uuid.uuid4()),
                    "kind": {"group": "kubeflow.org", "version": "v1", "kind": "PyTorchJob"},
                    "operation": "CREATE",
                    "namespace": "default",
                    "name": obj["metadata"]["name"],
                    "object": obj,
                    "oldObject": None,
                },
            }
        )

    # The mutating path sees the job as submitted; the validating one, as the API server sends
    # it, defaulted.
    jobs = [sample_job(f"job-{i}") for i in range(32)]
    bodies = [[review(j) for j in jobs], [review(default_job(PYTORCHJOB, j)) for j in jobs]]
    latencies: list[float] = []
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            base = f"https://localhost:{port}"
            await _wait_serving(session, base + paths[1], bodies[1][0], proc)
            cpu_before = proc.cpu_seconds() or 0.0
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(reviews):
                queue.put_nowait(i)

            async def worker() -> None:
                while not queue.empty():
                    i = queue.get_nowait()
                    start = time.perf_counter()
                    async with session.post(
                        base + paths[i % 2],
                        data=bodies[i % 2][i % len(jobs)],
                        headers={"Content-Type": "application/json"},
                    ) as resp:
                        answer = orjson.loads(await resp.read())
                    latencies.append(time.perf_counter() - start)
                    if resp.status != 200 or not answer["response"]["allowed"]:
                        raise RuntimeError(f"review {i} not allowed: {answer}")

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
            cpu = (proc.cpu_seconds() or 0.0) - cpu_before
    finally:
        await proc.stop()
    summary = summarize(latencies)
    return {
        "reviews": reviews,
        "concurrency": concurrency,
        "reviews_per_second": round(reviews / elapsed, 1),
        "latency_p50_ms": round((summary["p50"] or 0) * 1000, 3),
        "latency_p99_ms": round((summary["p99"] or 0) * 1000, 3),
        "operator_cpu_seconds": round(cpu, 3),
        "operator_cpu_us_per_review": round(cpu / reviews * 1e6, 1),
    }


async def _wait_serving(
    session: aiohttp.ClientSession, url: str, body: bytes, proc: ManagedProcess
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        proc.check_alive()
        try:
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                if resp.status == 200:
                    return
        except (aiohttp.ClientError, OSError):
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the operator's webhook server did not answer within 60 s")


async def bench_creates(
    client: ApiClient,
    kubeconfig: str,
    workdir: Path,
    *,
    creates: int,
    concurrency: int,
    endpoint_address: str | None = None,
) -> dict[str, Any]:
    """Measurement 2: job creates through the API server, with and without the webhooks."""
    port = free_port()
    await install_webhooks(
        client,
        port=port,
        service=SERVICE,
        kinds=[PYTORCHJOB],
        endpoint_address=endpoint_address,
    )
    host = "" if endpoint_address else "127.0.0.1"
    proc = ManagedProcess(
        "operator",
        operator_argv(kubeconfig, port, host=host),
        log_path=workdir / "operator-creates.log",
    )
    await proc.start()
    try:
        await wait_until_admitting(client, kind=PYTORCHJOB, timeout=60)
        with_hooks = await _creates(client, "with-webhooks", creates, concurrency)
        await client.delete(MUTATING_CONFIGURATIONS, None, MUTATING_CONFIGURATION)
        await client.delete(VALIDATING_CONFIGURATIONS, None, VALIDATING_CONFIGURATION)
        without = await _creates(client, "without-webhooks", creates, concurrency)
    finally:
        await proc.stop()
    a, b = summarize(with_hooks), summarize(without)
    return {
        "creates": creates,
        "concurrency": concurrency,
        "with_webhooks_p50_ms": _ms(a["p50"]),
        "with_webhooks_p99_ms": _ms(a["p99"]),
        "without_webhooks_p50_ms": _ms(b["p50"]),
        "without_webhooks_p99_ms": _ms(b["p99"]),
        "p50_ratio": round((a["p50"] or 0) / (b["p50"] or 1), 2),
        "p99_ratio": round((a["p99"] or 0) / (b["p99"] or 1), 2),
    }


def _ms(value: float | int | None) -> float:
    return round((value or 0) * 1000, 3)


async def _creates(client: ApiClient, namespace: str, count: int, concurrency: int) -> list[float]:
    await client.create(NAMESPACES, {"metadata": {"name": namespace}})
    ref = kubeflow("PyTorchJob")
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            start = time.perf_counter()
            try:
                await client.create(ref, sample_job(f"job-{i}", namespace))
            except ApiStatusError as e:
                raise RuntimeError(f"create {i} refused: {e}") from e
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(one(i) for i in range(count)))
    return latencies


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kubetrain-bench-webhook-") as tmp:
        workdir = Path(tmp)
        cluster: ClusterProcess | None = None
        kubeconfig = args.kubeconfig
        if kubeconfig is None:
            cluster = ClusterProcess(workdir=workdir, nodes=1, node_pods=10)
            await cluster.start()
            kubeconfig = cluster.kubeconfig
        try:
            config = await load_kubeconfig(kubeconfig)
            options = ClientOptions(qps=0, registry=new_registry(process_metrics=False))
            async with ApiClient(config, options) as client:
                for crd in all_crds():
                    await client.create_if_absent(CRDS, crd)
                if args.kubeconfig is not None:
                    await _wait_established(client)
                server = await bench_server(
                    kubeconfig, workdir, reviews=args.reviews, concurrency=args.concurrency
                )
                print(json.dumps({"webhook_server": server}), flush=True)
                creates = await bench_creates(
                    client,
                    kubeconfig,
                    workdir,
                    creates=args.creates,
                    concurrency=args.concurrency,
                    endpoint_address=args.endpoint_address,
                )
                print(json.dumps({"creates_through_the_api_server": creates}), flush=True)
        finally:
            if cluster is not None:
                await cluster.stop()
    return {"webhook_server": server, "creates_through_the_api_server": creates}


async def _wait_established(client: ApiClient) -> None:
    """A real API server serves a new CRD's resource only once it is Established."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            await client.list(kubeflow("PyTorchJob"), "default", limit=1)
            return
        except ApiStatusError:
            await asyncio.sleep(0.2)
    raise RuntimeError("the PyTorchJob CRD was not served within 60 s")


def cli(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kubetrain.bench.webhook", description=__doc__)
    p.add_argument("--reviews", type=int, default=5000, help="reviews posted (default %(default)s)")
    p.add_argument("--creates", type=int, default=1000, help="job creates (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=16, help="in flight (default %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="write the figures to this JSON file")
    p.add_argument(
        "--kubeconfig", default=None, help="an existing cluster (default: start kubetrain cluster)"
    )
    p.add_argument(
        "--endpoint-address",
        default=None,
        help="with a real API server: this machine's non-loopback IPv4 address",
    )
    args = p.parse_args(argv)
    figures = asyncio.run(main(args))
    if args.out is not None:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
