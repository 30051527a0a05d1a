"""The admission webhooks from outside: kubectl and the Kubeflow SDK against the operator's
webhook server, installed as a cluster install has it (Service, configurations, the CA injected
by the operator). These run on the embedded cluster and, under ``--apiserver=real``, on a real
kube-apiserver (which reaches the webhook through an EndpointSlice address of this machine).

On the real server the CRD's CEL rule refuses a running job's queue change before the webhooks
are called; on the embedded one (no CEL) the webhook does: the message is checked for what both
say.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import json
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from conformance.apiserver_switch import selected_apiserver
from conformance.controlplane import host_address
from jobkit_e2e import SIM, Env, open_env, poll
from kubeapply import kubectl
from tlsprobe import served_certificate

from kubetrain.example_jobs import load_examples
from kubetrain.informers.resource import kubeflow
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.kinds import ALL_KINDS, BY_KIND, JobKind
from kubetrain.reconcilers.api.webhooks import WebhookService
from kubetrain.up import free_port
from kubetrain.webhook_install import install_webhooks, wait_until_admitting

training = pytest.importorskip("kubeflow.training")

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

Obj = dict[str, Any]
SERVICE = WebhookService(namespace="kubetrain-system")
# the kubeflow.org/v1 examples (the TrainJob example is tested in test_trainjobs.py and up's)
EXAMPLES = {job.kind: job for job in load_examples() if job.kind != "TrainJob"}


class WebhookEnv:
    """The module's cluster with an operator serving webhooks on ``port``."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.port = free_port()

    async def start(self, **options: Any) -> None:
        await self.env.start_operator(
            webhook_server_port=self.port,
            operator_namespace=SERVICE.namespace,
            **options,
        )

    async def restart(self, **options: Any) -> None:
        await self.env.stop_operator()
        await self.start(**options)

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return kubectl(self.env.cluster.kubeconfig_path, *args, stdin=stdin)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def hooks(request: pytest.FixtureRequest) -> AsyncIterator[WebhookEnv]:
    apiserver = selected_apiserver(request.config)
    async for env in open_env(apiserver=apiserver):
        w = WebhookEnv(env)
        await install_webhooks(
            env.client,
            port=w.port,
            service=SERVICE,
            endpoint_address=host_address() if env.real else None,
        )
        await w.start()
        await wait_until_admitting(env.client)
        yield w
        await env.stop_operator()


def plain_job(kind: JobKind, namespace: str, name: str, *, run_seconds: float = 0.3) -> Obj:
    """A job as most YAML has it: no runPolicy, replicas, restart policy or ports."""
    rtypes = {"MPIJob": "Launcher", "PyTorchJob": "Master", "XGBoostJob": "Master"}
    rtype = rtypes.get(kind.kind, "Worker")
    template = {
        "metadata": {"annotations": {SIM + "run-seconds": str(run_seconds)}},
        "spec": {"containers": [{"name": kind.default_container, "image": "busybox"}]},
    }
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": kind.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {kind.replica_field: {rtype: {"template": template}}},
    }


def as_yaml(obj: Obj) -> str:
    return yaml.safe_dump(obj, sort_keys=False)


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
async def test_kubectl_apply_of_an_invalid_job_shows_every_problem(
    hooks: WebhookEnv, kind: JobKind
) -> None:
    ns = await hooks.env.namespace(f"bad-{kind.singular}")
    job = plain_job(kind, ns, "bad")
    rspec = next(iter(job["spec"][kind.replica_field].values()))
    container = rspec["template"]["spec"]["containers"][0]
    del container["image"]
    container["name"] = "Not_A_Label"
    rspec["restartPolicy"] = "Never"

    done = await asyncio.to_thread(hooks.kubectl, "apply", "-f", "-", stdin=as_yaml(job))

    assert done.returncode != 0
    # kubectl prints the refusal's causes, one line per problem, each with its field path
    err = done.stderr
    assert f'The {kind.kind} "bad" is invalid' in err
    assert ".template.spec.containers[0].image: Required value" in err
    assert ".template.spec.containers[0].name: Invalid value" in err
    assert await hooks.env.get_job(kind.kind, ns, "bad") is None


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
async def test_defaults_are_persisted(hooks: WebhookEnv, kind: JobKind) -> None:
    ns = await hooks.env.namespace(f"defaults-{kind.singular}")
    done = await asyncio.to_thread(
        hooks.kubectl, "apply", "-f", "-", stdin=as_yaml(plain_job(kind, ns, "plain"))
    )
    assert done.returncode == 0, done.stderr
    stored = await hooks.env.get_job(kind.kind, ns, "plain")
    assert stored is not None
    spec = stored["spec"]
    assert spec["runPolicy"]["cleanPodPolicy"] == "None"
    (rspec,) = spec[kind.replica_field].values()
    assert rspec["replicas"] == 1
    assert rspec["restartPolicy"] == kind.default_restart_policy
    if kind.kind != "MPIJob":
        ports = rspec["template"]["spec"]["containers"][0]["ports"]
        assert {"name": kind.default_port_name, "containerPort": kind.default_port} in [
            {k: p[k] for k in ("name", "containerPort")} for p in ports
        ]
    assert stored["metadata"]["generation"] == 1


async def test_changing_managed_by_is_refused(hooks: WebhookEnv) -> None:
    ns = await hooks.env.namespace("managed-by")
    await hooks.env.create_job(plain_job(BY_KIND["TFJob"], ns, "mb"))
    done = await asyncio.to_thread(
        hooks.kubectl,
        "patch",
        "tfjob",
        "mb",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"runPolicy":{"managedBy":"kueue.x-k8s.io/multikueue"}}}',
    )
    assert done.returncode != 0
    assert "spec.runPolicy.managedBy: Invalid value" in done.stderr
    assert "immutable" in done.stderr


async def test_a_running_jobs_queue_is_immutable_until_suspended(hooks: WebhookEnv) -> None:
    ns = await hooks.env.namespace("queue")
    job = plain_job(BY_KIND["PyTorchJob"], ns, "q", run_seconds=60)
    job["spec"]["runPolicy"] = {"schedulingPolicy": {"queue": "team-a"}}
    await hooks.env.create_job(job)
    await hooks.env.wait_condition("PyTorchJob", ns, "q", "Running")

    def set_queue(queue: str) -> subprocess.CompletedProcess[str]:
        patch = json.dumps({"spec": {"runPolicy": {"schedulingPolicy": {"queue": queue}}}})
        return hooks.kubectl("patch", "pytorchjob", "q", "-n", ns, "--type=merge", "-p", patch)

    refused = await asyncio.to_thread(set_queue, "team-b")
    assert refused.returncode != 0
    assert "spec.runPolicy.schedulingPolicy.queue" in refused.stderr
    assert "immutable while the job is running" in refused.stderr

    suspend = '{"spec":{"runPolicy":{"suspend":true}}}'
    done = await asyncio.to_thread(
        hooks.kubectl, "patch", "pytorchjob", "q", "-n", ns, "--type=merge", "-p", suspend
    )
    assert done.returncode == 0, done.stderr
    moved = await asyncio.to_thread(set_queue, "team-b")
    assert moved.returncode == 0, moved.stderr


async def test_kubectl_prints_the_deprecation_warning(hooks: WebhookEnv) -> None:
    ns = await hooks.env.namespace("warning")
    job = plain_job(BY_KIND["PyTorchJob"], ns, "elastic")
    specs = job["spec"]["pytorchReplicaSpecs"]
    specs["Worker"] = copy.deepcopy(specs["Master"])
    job["spec"]["elasticPolicy"] = {"nProcPerNode": 1}
    done = await asyncio.to_thread(hooks.kubectl, "apply", "-f", "-", stdin=as_yaml(job))
    assert done.returncode == 0, done.stderr
    assert "Warning: spec.elasticPolicy.nProcPerNode is deprecated" in done.stderr


def sdk_calls(kubeconfig: str, namespace: str, kind: str, name: str) -> dict[str, Any]:
    """Every TrainingClient read a notebook makes, on a job it did not create. In a thread."""
    tc = training.TrainingClient(config_file=kubeconfig, namespace=namespace, job_kind=kind)
    got: dict[str, Any] = {"job": tc.get_job(name)}  # maybe before any status: must decode
    got["listed"] = [j.metadata.name for j in tc.list_jobs()]
    got["finished"] = tc.wait_for_job_conditions(
        name, expected_conditions={"Succeeded"}, wait_timeout=30, polling_interval=1
    )
    got["created"] = tc.is_job_created(name)
    got["conditions"] = [c.type for c in tc.get_job_conditions(name) if c.status == "True"]
    got["succeeded"] = tc.is_job_succeeded(name)
    got["running"] = tc.is_job_running(name)
    got["pods"] = tc.get_job_pod_names(name, is_master=False)
    tc.delete_job(name)
    return got


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
async def test_every_sdk_call_works_on_a_job_applied_without_run_policy(
    hooks: WebhookEnv, kind: str
) -> None:
    ns = await hooks.env.namespace(f"sdk-{kind.lower()}")
    manifest = copy.deepcopy(EXAMPLES[kind].manifest)
    manifest["metadata"]["namespace"] = ns
    manifest["spec"].pop("runPolicy", None)
    for rspec in manifest["spec"][BY_KIND[kind].replica_field].values():
        meta = rspec["template"].setdefault("metadata", {})
        meta.setdefault("annotations", {})[SIM + "run-seconds"] = "0.3"
    done = await asyncio.to_thread(hooks.kubectl, "apply", "-f", "-", stdin=as_yaml(manifest))
    assert done.returncode == 0, done.stderr
    name = manifest["metadata"]["name"]

    got = await asyncio.to_thread(sdk_calls, hooks.env.cluster.kubeconfig_path, ns, kind, name)

    assert got["created"] is True and got["succeeded"] is True and got["running"] is False
    assert got["job"].spec.run_policy is not None
    assert got["listed"] == [name]
    assert got["finished"].metadata.name == name and "Succeeded" in got["conditions"]
    assert got["pods"]


async def test_certificate_rotation_during_a_stream_of_creates_loses_none(
    hooks: WebhookEnv,
) -> None:
    """Serving certificates of 5 s (renewed at about 3.3 s) under a CA of 12 s (renewed, in two
    steps, at 8 s): twelve seconds of creates go on while both rotate. (Times in a certificate
    have whole seconds, so a 3 s one left the rotator under a second of slack, which a CI machine
    running three workers on two cores sometimes did not give it.)"""
    await hooks.restart(
        webhook_secret_name="rotation-test-cert",
        webhook_cert_validity=datetime.timedelta(seconds=5),
        webhook_ca_validity=datetime.timedelta(seconds=12),
        webhook_ca_propagation_delay=1.0,
    )
    try:
        await wait_until_admitting(hooks.env.client)
        running = hooks.env.running
        assert running is not None and running.operator.cert_rotator is not None
        rotator = running.operator.cert_rotator
        ns = await hooks.env.namespace("rotation")
        refused: list[str] = []
        created = 0
        # The API server keeps its connection to the webhook alive; fresh handshakes, as a new
        # connection (or another API server) makes, must verify against the current caBundle.
        served: set[bytes] = set()
        deadline = time.monotonic() + 12.0
        while time.monotonic() < deadline:
            job = plain_job(BY_KIND["TFJob"], ns, f"r-{created}", run_seconds=0.1)
            try:
                await hooks.env.create_job(job)
                created += 1
            except ApiStatusError as e:
                refused.append(e.message or str(e))
            if created % 10 == 0:
                served.add(await fresh_handshake(hooks))
            await asyncio.sleep(0.02)
        assert refused == []
        assert len(served) >= 3, "the serving certificate did not change during the stream"
        assert created > 20
        assert rotator.rotations >= 3, rotator.rotations
        assert rotator.ca_rotations >= 2, rotator.ca_rotations  # the first CA, then a renewal
        stored = await hooks.env.client.list_all(kubeflow("TFJob"), ns)
        assert len(stored) == created
    finally:
        await hooks.restart()


async def fresh_handshake(hooks: WebhookEnv) -> bytes:
    """A new TLS connection to the webhook server, verified as the API server does (the
    configuration's caBundle, the Service's DNS name); the served certificate (DER)."""
    from kubetrain.engine.webhook.rotator import VALIDATING_CONFIGURATIONS
    from kubetrain.reconcilers.api.webhooks import VALIDATING_CONFIGURATION

    config = await hooks.env.client.get(VALIDATING_CONFIGURATIONS, None, VALIDATING_CONFIGURATION)
    bundle = base64.b64decode(config["webhooks"][0]["clientConfig"]["caBundle"]).decode()
    ctx = ssl.create_default_context(cadata=bundle)
    return await served_certificate(
        hooks.port, ctx, server_hostname=f"{SERVICE.name}.{SERVICE.namespace}.svc"
    )


async def test_without_webhooks_the_crd_defaults_keep_the_sdk_working(
    hooks: WebhookEnv,
) -> None:
    """No mutating webhook at all: the CRDs' structural defaults still give every stored job a
    runPolicy, which the SDK's models require."""
    from kubetrain.engine.webhook.rotator import MUTATING_CONFIGURATIONS, VALIDATING_CONFIGURATIONS
    from kubetrain.reconcilers.api.webhooks import MUTATING_CONFIGURATION, VALIDATING_CONFIGURATION

    client = hooks.env.client
    await client.delete(MUTATING_CONFIGURATIONS, None, MUTATING_CONFIGURATION)
    await client.delete(VALIDATING_CONFIGURATIONS, None, VALIDATING_CONFIGURATION)
    try:
        ns = await hooks.env.namespace("no-webhooks")
        kind = BY_KIND["JAXJob"]
        await poll(
            lambda: _admitted_without_webhooks(hooks, ns), timeout=15, what="webhooks removed"
        )
        await client.create(kubeflow(kind.kind), plain_job(kind, ns, "bare"))
        stored = await hooks.env.get_job(kind.kind, ns, "bare")
        assert stored is not None and stored["spec"]["runPolicy"]["cleanPodPolicy"] == "None"
        got = await asyncio.to_thread(
            sdk_calls, hooks.env.cluster.kubeconfig_path, ns, kind.kind, "bare"
        )
        assert got["succeeded"] is True and got["job"].spec.run_policy is not None
    finally:
        await install_webhooks(
            client,
            port=hooks.port,
            service=SERVICE,
            endpoint_address=host_address() if hooks.env.real else None,
        )
        await wait_until_admitting(client)


async def _admitted_without_webhooks(hooks: WebhookEnv, ns: str) -> bool:
    """True once a job the validator would refuse is admitted (dry run): no webhook consulted."""
    kind = BY_KIND["JAXJob"]
    job = plain_job(kind, ns, "probe")
    del job["spec"][kind.replica_field]["Worker"]["template"]["spec"]["containers"][0]["image"]
    try:
        await hooks.env.client.request_json(
            "POST", kubeflow(kind.kind).collection_path(ns), body=job, query={"dryRun": "All"}
        )
    except ApiStatusError:
        return False
    return True


async def test_certificates_from_a_directory_are_reloaded(
    hooks: WebhookEnv, tmp_path: Path
) -> None:
    """cert-manager's way: ``--webhook-cert-dir`` files (a mounted Secret) and a caBundle filled
    by someone else; a renewed certificate written into the directory is served without a
    restart."""
    from kubetrain.engine.webhook.certs import make_ca
    from kubetrain.engine.webhook.rotator import MUTATING_CONFIGURATIONS, VALIDATING_CONFIGURATIONS
    from kubetrain.reconcilers.api.webhooks import MUTATING_CONFIGURATION, VALIDATING_CONFIGURATION

    ca = make_ca("cert-manager-ca")
    names = [f"{SERVICE.name}.{SERVICE.namespace}.svc"]

    def write_cert() -> bytes:
        cert = ca.issue_server_cert(dns_names=names, valid_days=1)
        (tmp_path / "tls.key").write_bytes(cert.key_pem)
        (tmp_path / "tls.crt").write_bytes(cert.cert_pem)
        return cert.cert_pem

    write_cert()
    client = hooks.env.client
    bundle = base64.b64encode(ca.cert_pem).decode()
    await hooks.restart(webhook_cert_dir=str(tmp_path))
    try:
        for ref, name in (
            (MUTATING_CONFIGURATIONS, MUTATING_CONFIGURATION),
            (VALIDATING_CONFIGURATIONS, VALIDATING_CONFIGURATION),
        ):
            config = await client.get(ref, None, name)
            for hook in config["webhooks"]:
                hook["clientConfig"]["caBundle"] = bundle  # cert-manager's CA injector
            await client.update(ref, config)
        await wait_until_admitting(client)
        first = await fresh_handshake(hooks)

        renewed = write_cert()
        running = hooks.env.running
        assert running is not None and running.operator.cert_watcher is not None
        running.operator.cert_watcher.load()  # what its next poll does
        second = await fresh_handshake(hooks)
        assert second != first
        assert ssl.DER_cert_to_PEM_cert(second).strip() == renewed.decode().strip()
        ns = await hooks.env.namespace("cert-dir")
        await hooks.env.create_job(plain_job(BY_KIND["XGBoostJob"], ns, "after-renewal"))
    finally:
        await hooks.restart()  # its rotator puts its own CA back into the configurations
        await wait_until_admitting(client)
