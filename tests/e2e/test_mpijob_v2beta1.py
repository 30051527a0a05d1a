"""MPIJob ``kubeflow.org/v2beta1`` end to end, from outside: ``kubectl apply`` of mpi-operator's
YAML against the embedded cluster with its Job controller (``kube_controllers``), and kubetrain
as a cluster install has it (CRD conversion and admission webhooks through the webhook Service,
the CA injected by the operator). Under ``--apiserver=real`` the same tests run on a real
kube-apiserver and kube-controller-manager.

What is checked against mpi-operator v0.8.2 (``shared/reference/training-operator-v1.md`` 1.8):
the objects (names, labels, env, hostfile, Secret type and keys, the launcher as a batch/v1
Job), each ``mpiImplementation`` and ``launcherCreationPolicy``, suspend and resume, cleanup,
validation, and v1 and v2beta1 MPIJobs side by side in one install.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import yaml
from conformance.apiserver_switch import selected_apiserver
from conformance.controlplane import host_address
from conformance.outside_manager import install_crds
from jobkit_e2e import SIM, Env, open_env, poll
from kubeapply import kubectl

from kubetrain.cluster.podgroups import gang_crds
from kubetrain.informers.resource import (
    BATCH_JOBS,
    CONFIGMAPS,
    PODGROUPS_SCHEDULER_PLUGINS,
    PODGROUPS_VOLCANO,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
    kubeflow,
)
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.mpi_v2beta1 import ORIGIN_ANNOTATION
from kubetrain.reconcilers.api.webhooks import WebhookService
from kubetrain.up import free_port
from kubetrain.webhook_install import install_webhooks, wait_until_admitting

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

Obj = dict[str, Any]
SERVICE = WebhookService(namespace="kubetrain-system")
V2 = "mpijobs.v2beta1.kubeflow.org"
V1 = "mpijobs.v1.kubeflow.org"
MPIJOBS = kubeflow("MPIJob")


class V2Env:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.port = free_port()

    async def kubectl(
        self, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """kubectl off the event loop (the operator's webhook server runs on it)."""
        return await asyncio.to_thread(
            kubectl, self.env.cluster.kubeconfig_path, *args, stdin=stdin
        )

    async def apply(self, obj: Obj) -> subprocess.CompletedProcess[str]:
        return await self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(obj))

    async def get_v2(self, ns: str, name: str) -> Obj:
        out = await self.kubectl("get", V2, name, "-n", ns, "-o", "json")
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    async def wait_v2(self, ns: str, name: str, ctype: str, *, timeout: float = 60) -> Obj:
        async def check() -> Obj | None:
            job = await self.get_v2(ns, name)
            conds = (job.get("status") or {}).get("conditions") or []
            ok = any(c["type"] == ctype and c["status"] == "True" for c in conds)
            return job if ok else None

        result: Obj = await poll(check, timeout=timeout, interval=0.2, what=f"{ns}/{name} {ctype}")
        return result


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def v2(request: pytest.FixtureRequest) -> AsyncIterator[V2Env]:
    async for env in open_env(
        nodes=4, apiserver=selected_apiserver(request.config), kube_controllers=True
    ):
        w = V2Env(env)
        await install_webhooks(
            env.client,
            port=w.port,
            service=SERVICE,
            endpoint_address=host_address() if env.real else None,
        )
        await env.start_operator(webhook_server_port=w.port, operator_namespace=SERVICE.namespace)
        await wait_until_admitting(env.client)
        yield w
        await env.stop_operator()


def mpijob_v2(
    name: str,
    ns: str,
    *,
    workers: int = 2,
    launcher_seconds: float = 1.0,
    worker_seconds: float = 3600,
    **spec: Any,
) -> Obj:
    """mpi-operator's ``examples/v2beta1/pi/pi.yaml``, shortened, with simulator run times."""

    def template(container: str, seconds: float, command: list[str]) -> Obj:
        return {
            "metadata": {"annotations": {SIM + "run-seconds": str(seconds)}},
            "spec": {
                "containers": [
                    {"name": container, "image": "mpioperator/mpi-pi:openmpi", "command": command}
                ]
            },
        }

    return {
        "apiVersion": "kubeflow.org/v2beta1",
        "kind": "MPIJob",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "slotsPerWorker": 1,
            "runPolicy": {"cleanPodPolicy": "Running"},
            "mpiReplicaSpecs": {
                "Launcher": {
                    "replicas": 1,
                    "template": template("mpi-launcher", launcher_seconds, ["mpirun", "/home/pi"]),
                },
                "Worker": {
                    "replicas": workers,
                    "template": template("mpi-worker", worker_seconds, ["/usr/sbin/sshd", "-De"]),
                },
            },
            **spec,
        },
    }


async def get(env: Env, ref: Any, ns: str, name: str) -> Obj | None:
    try:
        return await env.client.get(ref, ns, name)
    except ApiStatusError as e:
        if e.is_not_found:
            return None
        raise


def env_of(pod_spec: Obj) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod_spec["containers"][0].get("env") or []}


IMPLEMENTATION_ENV = {
    "OpenMPI": {
        "OMPI_MCA_orte_keep_fqdn_hostnames": "true",
        "OMPI_MCA_orte_default_hostfile": "/etc/mpi/hostfile",
        "OMPI_MCA_plm_rsh_args": "-o ConnectionAttempts=10",
        "OMPI_MCA_orte_set_default_slots": "2",
    },
    "Intel": {
        "I_MPI_HYDRA_HOST_FILE": "/etc/mpi/hostfile",
        "I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS": "-o ConnectionAttempts=10",
        "I_MPI_PERHOST": "2",
    },
    "MPICH": {
        "HYDRA_HOST_FILE": "/etc/mpi/hostfile",
        "HYDRA_LAUNCH_EXTRA_ARGS": "-o ConnectionAttempts=10",
    },
}


@pytest.mark.parametrize(
    ("implementation", "policy"),
    [
        ("OpenMPI", "AtStartup"),
        ("OpenMPI", "WaitForWorkersReady"),
        ("Intel", "AtStartup"),
        ("Intel", "WaitForWorkersReady"),
        ("MPICH", "AtStartup"),
        ("MPICH", "WaitForWorkersReady"),
    ],
)
async def test_each_implementation_and_launcher_policy_runs_with_mpi_operators_objects(
    v2: V2Env, implementation: str, policy: str
) -> None:
    env = v2.env
    ns = await env.namespace("mpiv2")
    name = "pi"
    job = mpijob_v2(
        name, ns, mpiImplementation=implementation, launcherCreationPolicy=policy, slotsPerWorker=2
    )
    out = await v2.apply(job)
    assert out.returncode == 0, out.stderr
    assert "created" in out.stdout

    stored = await v2.get_v2(ns, name)
    assert stored["apiVersion"] == "kubeflow.org/v2beta1"
    spec = stored["spec"]
    assert spec["mpiImplementation"] == implementation
    assert spec["launcherCreationPolicy"] == policy
    assert spec["sshAuthMountPath"] == "/root/.ssh"
    assert spec["runLauncherAsWorker"] is False
    assert spec["mpiReplicaSpecs"]["Launcher"]["restartPolicy"] == "OnFailure"
    assert spec["mpiReplicaSpecs"]["Worker"]["restartPolicy"] == "Never"

    done = await v2.wait_v2(ns, name, "Succeeded")
    types = [c["type"] for c in done["status"]["conditions"]]
    assert types[:1] == ["Created"]
    assert "Running" in types
    reasons = {c["type"]: c["reason"] for c in done["status"]["conditions"]}
    assert reasons["Created"] == "MPIJobCreated"
    assert reasons["Succeeded"] == "MPIJobSucceeded"
    assert done["status"]["replicaStatuses"]["Launcher"]["succeeded"] == 1
    assert done["status"].get("completionTime")

    # The hostfile: one line per worker, the implementation's format.
    cm = await get(env, CONFIGMAPS, ns, f"{name}-config")
    assert cm is not None
    hosts = [f"{name}-worker-{i}.{name}.{ns}.svc" for i in range(2)]
    if implementation == "OpenMPI":
        expected = "".join(f"{h} slots=2\n" for h in hosts)
    else:
        expected = "".join(f"{h}:2\n" for h in hosts)
    assert cm["data"]["hostfile"] == expected
    assert cm["data"]["discover_hosts.sh"].startswith("#!/bin/sh\n")
    assert cm["metadata"]["labels"]["app"] == name

    secret = await get(env, SECRETS, ns, f"{name}-ssh")
    assert secret is not None
    assert secret["type"] == "kubernetes.io/ssh-auth"
    assert sorted(secret["data"]) == ["ssh-privatekey", "ssh-publickey"]
    assert base64.b64decode(secret["data"]["ssh-publickey"]).startswith(b"ecdsa-sha2-nistp521 ")
    assert b"PRIVATE KEY" in base64.b64decode(secret["data"]["ssh-privatekey"])

    svc = await get(env, SERVICES, ns, name)
    assert svc is not None
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == {
        "training.kubeflow.org/operator-name": "mpi-operator",
        "training.kubeflow.org/job-name": name,
    }

    launcher = await get(env, BATCH_JOBS, ns, f"{name}-launcher")
    assert launcher is not None
    owner = launcher["metadata"]["ownerReferences"][0]
    assert (owner["apiVersion"], owner["kind"], owner["name"], owner["controller"]) == (
        "kubeflow.org/v2beta1",
        "MPIJob",
        name,
        True,
    )
    assert launcher["spec"]["podReplacementPolicy"] == "Failed"
    tmpl = launcher["spec"]["template"]
    assert tmpl["metadata"]["labels"]["training.kubeflow.org/job-role"] == "launcher"
    launcher_env = env_of(tmpl["spec"])
    assert launcher_env["K_MPI_JOB_ROLE"] == "launcher"
    for key, value in IMPLEMENTATION_ENV[implementation].items():
        assert launcher_env.get(key) == value, (key, launcher_env)
    assert launcher_env.get("NVIDIA_VISIBLE_DEVICES") == ""
    assert launcher_env.get("NVIDIA_DRIVER_CAPABILITIES") == ""

    # Workers: cleanPodPolicy Running deleted them once the launcher succeeded.
    async def workers_gone() -> bool:
        pods = await env.client.list_all(PODS, ns)
        return not [p for p in pods if "-worker-" in p["metadata"]["name"]]

    await poll(workers_gone, timeout=30, what="workers deleted (cleanPodPolicy Running)")


@pytest.mark.parametrize("policy", ["AtStartup", "WaitForWorkersReady"])
async def test_the_launcher_waits_for_ready_workers_only_when_asked(v2: V2Env, policy: str) -> None:
    """Workers no node can hold stay Pending: AtStartup creates the launcher Job anyway,
    WaitForWorkersReady does not while any worker is not Ready."""
    env = v2.env
    ns = await env.namespace("mpiv2-wait")
    name = "waiting"
    job = mpijob_v2(name, ns, launcherCreationPolicy=policy)
    worker = job["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    worker["resources"] = {"requests": {"cpu": "100000"}}
    assert (await v2.apply(job)).returncode == 0

    async def unschedulable_workers() -> bool:
        pods = [
            p for p in await env.client.list_all(PODS, ns) if "-worker-" in p["metadata"]["name"]
        ]
        return len(pods) == 2 and all(
            any(
                c["type"] == "PodScheduled" and c["status"] == "False"
                for c in (p.get("status") or {}).get("conditions") or []
            )
            for p in pods
        )

    await poll(unschedulable_workers, timeout=30, what="2 unschedulable workers")
    # A later reconcile than the workers' creation: the workers' status is on the job.
    await v2.wait_v2(ns, name, "Created")
    launcher = await get(env, BATCH_JOBS, ns, f"{name}-launcher")
    if policy == "AtStartup":
        launcher = await poll(
            lambda: get(env, BATCH_JOBS, ns, f"{name}-launcher"), what="launcher Job"
        )
        assert launcher is not None
    else:
        assert launcher is None, "WaitForWorkersReady created the launcher before its workers"
    assert (await v2.kubectl("delete", V2, name, "-n", ns)).returncode == 0


async def test_worker_pods_are_mpi_operators(v2: V2Env) -> None:
    env = v2.env
    ns = await env.namespace("mpiv2-pods")
    name = "workers"
    assert (await v2.apply(mpijob_v2(name, ns, launcher_seconds=3600, workers=2))).returncode == 0
    await v2.wait_v2(ns, name, "Running")
    pods = {p["metadata"]["name"]: p for p in await env.client.list_all(PODS, ns)}
    for i in range(2):
        pod = pods[f"{name}-worker-{i}"]
        labels = pod["metadata"]["labels"]
        assert labels["training.kubeflow.org/operator-name"] == "mpi-operator"
        assert labels["training.kubeflow.org/job-name"] == name
        assert labels["training.kubeflow.org/job-role"] == "worker"
        assert labels["training.kubeflow.org/replica-index"] == str(i)
        assert pod["spec"]["hostname"] == f"{name}-worker-{i}"
        assert pod["spec"]["subdomain"] == name
        assert env_of(pod["spec"])["K_MPI_JOB_ROLE"] == "worker"
        owner = pod["metadata"]["ownerReferences"][0]
        assert owner["apiVersion"] == "kubeflow.org/v2beta1" and owner["kind"] == "MPIJob"
        mounts = {m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
        assert "/root/.ssh" in mounts
    launcher_pods = [
        p for p in pods.values() if p["metadata"]["name"].startswith(f"{name}-launcher")
    ]
    assert len(launcher_pods) == 1
    assert launcher_pods[0]["metadata"]["ownerReferences"][0]["kind"] == "Job"
    # discover_hosts.sh lists the running workers.
    cm = await get(env, CONFIGMAPS, ns, f"{name}-config")
    assert cm is not None
    for i in range(2):
        assert f"echo {name}-worker-{i}.{name}.{ns}.svc" in cm["data"]["discover_hosts.sh"]
    assert (await v2.kubectl("delete", V2, name, "-n", ns, "--wait=false")).returncode == 0


async def test_suspend_and_resume_with_kubectl(v2: V2Env) -> None:
    env = v2.env
    ns = await env.namespace("mpiv2-suspend")
    name = "sus"
    job = mpijob_v2(name, ns, launcher_seconds=2)
    job["spec"]["runPolicy"]["suspend"] = True
    assert (await v2.apply(job)).returncode == 0
    suspended = await v2.wait_v2(ns, name, "Suspended")
    assert {c["type"]: c["reason"] for c in suspended["status"]["conditions"]}["Suspended"] == (
        "MPIJobSuspended"
    )
    launcher = await poll(
        lambda: get(env, BATCH_JOBS, ns, f"{name}-launcher"), what="suspended launcher Job"
    )
    assert launcher["spec"]["suspend"] is True
    pods = await env.client.list_all(PODS, ns)
    assert pods == [], "a suspended MPIJob has no pods"

    out = await v2.kubectl(
        "patch",
        V2,
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"runPolicy":{"suspend":false}}}',
    )
    assert out.returncode == 0, out.stderr
    done = await v2.wait_v2(ns, name, "Succeeded")
    conds = {c["type"]: c for c in done["status"]["conditions"]}
    assert conds["Suspended"]["status"] == "False"
    assert conds["Suspended"]["reason"] == "MPIJobResumed"


async def test_an_invalid_v2beta1_job_is_refused_with_the_field(v2: V2Env) -> None:
    ns = await v2.env.namespace("mpiv2-invalid")
    job = mpijob_v2("bad", ns)
    job["spec"]["mpiReplicaSpecs"]["Launcher"]["replicas"] = 2
    job["spec"]["mpiImplementation"] = "Intel"
    out = await v2.apply(job)
    assert out.returncode != 0
    assert "spec.mpiReplicaSpecs[Launcher].replicas" in out.stderr, out.stderr


async def test_v1_and_v2beta1_mpijobs_run_side_by_side(v2: V2Env) -> None:
    env = v2.env
    ns = await env.namespace("mpi-both")
    v2job = mpijob_v2("new-api", ns)
    v1job: Obj = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "MPIJob",
        "metadata": {"name": "old-api", "namespace": ns},
        "spec": {
            "slotsPerWorker": 1,
            "runPolicy": {"cleanPodPolicy": "Running"},
            "mpiReplicaSpecs": {
                "Launcher": {
                    "replicas": 1,
                    "template": {
                        "metadata": {"annotations": {SIM + "run-seconds": "1"}},
                        "spec": {"containers": [{"name": "mpi", "image": "mpi-pi"}]},
                    },
                },
                "Worker": {
                    "replicas": 2,
                    "template": {
                        "metadata": {"annotations": {SIM + "run-seconds": "3600"}},
                        "spec": {"containers": [{"name": "mpi", "image": "mpi-pi"}]},
                    },
                },
            },
        },
    }
    assert (await v2.apply(v2job)).returncode == 0
    assert (await v2.apply(v1job)).returncode == 0
    await v2.wait_v2(ns, "new-api", "Succeeded")
    old = await env.wait_condition("MPIJob", ns, "old-api", "Succeeded", timeout=60)

    # Each job ran by the semantics it was written in: v1's launcher is a pod it owns, v2beta1's
    # a batch/v1 Job; v1's hostfile ConfigMap is training-operator's.
    assert await get(env, BATCH_JOBS, ns, "new-api-launcher") is not None
    assert await get(env, BATCH_JOBS, ns, "old-api-launcher") is None
    assert await get(env, SECRETS, ns, "new-api-ssh") is not None
    assert await get(env, SECRETS, ns, "old-api-ssh") is None
    assert old["metadata"].get("annotations", {}).get(ORIGIN_ANNOTATION) in (None, "v1")
    # ... and only by those: the v1 controller made nothing for the v2beta1 job (its launcher
    # ServiceAccount, its kubexec.sh), the v2beta1 controller nothing for the v1 job.
    assert await get(env, SERVICEACCOUNTS, ns, "old-api-launcher") is not None
    assert await get(env, SERVICEACCOUNTS, ns, "new-api-launcher") is None
    new_cm = await get(env, CONFIGMAPS, ns, "new-api-config")
    old_cm = await get(env, CONFIGMAPS, ns, "old-api-config")
    assert new_cm is not None and old_cm is not None
    assert "kubexec.sh" not in new_cm["data"] and "kubexec.sh" in old_cm["data"]
    for pod in await env.client.list_all(PODS, ns):
        owner = pod["metadata"]["ownerReferences"][0]
        if pod["metadata"]["name"].startswith("new-api"):
            assert (owner["apiVersion"], owner["kind"]) in (
                ("kubeflow.org/v2beta1", "MPIJob"),
                ("batch/v1", "Job"),
            ), pod["metadata"]
        else:
            assert (owner["apiVersion"], owner["kind"]) == ("kubeflow.org/v1", "MPIJob")

    # Both are listed through both versions; the annotation tells which API each was written in.
    listed = json.loads((await v2.kubectl("get", V1, "-n", ns, "-o", "json")).stdout)["items"]
    origins = {j["metadata"]["name"]: j["metadata"].get("annotations", {}) for j in listed}
    assert origins["new-api"][ORIGIN_ANNOTATION] == "v2beta1"
    assert (
        ORIGIN_ANNOTATION not in origins["old-api"] or origins["old-api"][ORIGIN_ANNOTATION] == "v1"
    )
    as_v2 = json.loads((await v2.kubectl("get", V2, "-n", ns, "-o", "json")).stdout)["items"]
    assert {j["apiVersion"] for j in as_v2} == {"kubeflow.org/v2beta1"}
    assert {j["metadata"]["name"] for j in as_v2} == {"new-api", "old-api"}
    # Events come from mpi-operator's component for the v2beta1 job.
    events = [e for e in await env.events(ns) if e["involvedObject"]["name"] == "new-api"]
    assert any(e["reason"] == "MPIJobSucceeded" for e in events), events


async def test_metrics_count_each_job_once_in_both_families(v2: V2Env) -> None:
    env = v2.env
    assert env.running is not None
    registry = env.running.registry

    def value(name: str, labels: dict[str, str] | None = None) -> float:
        return registry.get_sample_value(name, labels or {}) or 0.0

    ns = await env.namespace("mpiv2-metrics")
    ours = {"job_namespace": ns, "framework": "mpi"}
    before = (
        value("mpi_operator_jobs_created_total"),
        value("mpi_operator_jobs_successful_total"),
    )
    assert (await v2.apply(mpijob_v2("counted", ns, launcher_seconds=0.5))).returncode == 0
    await v2.wait_v2(ns, "counted", "Succeeded")
    await asyncio.sleep(1)  # later reconciles (cleanup, workers' deletions) count nothing more
    assert value("mpi_operator_jobs_created_total") - before[0] == 1
    assert value("mpi_operator_jobs_successful_total") - before[1] == 1
    assert value("training_operator_jobs_created_total", ours) == 1
    assert value("training_operator_jobs_successful_total", ours) == 1
    assert (
        value("kubetrain_job_duration_seconds_count", {"framework": "mpi", "outcome": "succeeded"})
        >= 1
    )
    events = [e for e in await env.events(ns) if e["involvedObject"]["name"] == "counted"]
    reasons = [e["reason"] for e in events]
    assert reasons.count("MPIJobCreated") == 1 and reasons.count("MPIJobSucceeded") == 1, reasons
    assert all(e.get("count", 1) == 1 for e in events if e["reason"] == "MPIJobRunning"), events


@pytest.mark.parametrize("scheduler", ["volcano", "scheduler-plugins-scheduler"])
async def test_gang_scheduling_gives_the_job_mpi_operators_pod_group(
    v2: V2Env, scheduler: str
) -> None:
    """With ``--gang-scheduler-name`` the job gets mpi-operator's PodGroup (minMember = workers
    + the launcher) and every pod, the launcher Job's included, is the gang scheduler's; the
    simulated nodes bind them as a group. Cleanup deletes the PodGroup with the workers."""
    env = v2.env
    if env.real:  # the embedded cluster serves them; a real one gets them as Volcano installs
        await install_crds(env.client, gang_crds())
    await env.stop_operator()
    try:
        await env.start_operator(
            webhook_server_port=v2.port,
            operator_namespace=SERVICE.namespace,
            gang_scheduler_name=scheduler,
        )
        ns = await env.namespace("mpiv2-gang")
        name = "gang"
        job = mpijob_v2(name, ns, workers=2, launcher_seconds=2)
        job["spec"]["runPolicy"]["schedulingPolicy"] = {"queue": "default"}
        assert (await v2.apply(job)).returncode == 0
        volcano = scheduler == "volcano"
        ref = PODGROUPS_VOLCANO if volcano else PODGROUPS_SCHEDULER_PLUGINS
        group = await poll(lambda: get(env, ref, ns, name), what="the PodGroup")
        assert group["spec"]["minMember"] == 3
        owner = group["metadata"]["ownerReferences"][0]
        assert (owner["apiVersion"], owner["kind"], owner["name"]) == (
            "kubeflow.org/v2beta1",
            "MPIJob",
            name,
        )
        if volcano:
            assert group["spec"]["queue"] == "default"
        await v2.wait_v2(ns, name, "Running")
        pods = await env.client.list_all(PODS, ns)
        assert len(pods) == 3
        for pod in pods:
            assert pod["spec"]["schedulerName"] == scheduler, pod["metadata"]["name"]
            if volcano:
                assert pod["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == name
            else:
                assert pod["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == name
        await v2.wait_v2(ns, name, "Succeeded")
        await poll(
            lambda: _gone(env, ref, ns, name), timeout=30, what="PodGroup deleted at cleanup"
        )
    finally:
        await env.stop_operator()
        await env.start_operator(webhook_server_port=v2.port, operator_namespace=SERVICE.namespace)


async def _gone(env: Env, ref: Any, ns: str, name: str) -> bool:
    return await get(env, ref, ns, name) is None


async def test_a_launcher_out_of_retries_fails_the_job_with_its_reason(v2: V2Env) -> None:
    """runPolicy.backoffLimit and ttlSecondsAfterFinished go to the launcher Job; its Failed
    condition (BackoffLimitExceeded) becomes the MPIJob's, reason suffixed with the last failed
    pod's (mpi-operator's ``BackoffLimitExceeded/<pod reason>``); the launcher Job goes after its
    TTL while the MPIJob stays."""
    env = v2.env
    ns = await env.namespace("mpiv2-fail")
    name = "fails"
    job = mpijob_v2(name, ns, launcher_seconds=0.2)
    job["spec"]["runPolicy"].update(backoffLimit=1, ttlSecondsAfterFinished=3)
    launcher_tmpl = job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]
    launcher_tmpl["metadata"]["annotations"][SIM + "exit-code"] = "1"
    job["spec"]["mpiReplicaSpecs"]["Launcher"]["restartPolicy"] = "Never"
    assert (await v2.apply(job)).returncode == 0
    launcher = await poll(lambda: get(env, BATCH_JOBS, ns, f"{name}-launcher"), what="launcher")
    assert launcher["spec"]["backoffLimit"] == 1
    assert launcher["spec"]["ttlSecondsAfterFinished"] == 3
    failed = await v2.wait_v2(ns, name, "Failed")
    condition = {c["type"]: c for c in failed["status"]["conditions"]}["Failed"]
    assert condition["reason"].startswith("BackoffLimitExceeded/"), condition
    assert failed["status"].get("completionTime")
    assert failed["status"]["replicaStatuses"]["Launcher"]["failed"] == 2
    events = [e for e in await env.events(ns) if e["involvedObject"]["name"] == name]
    assert any(e["reason"] == condition["reason"] for e in events), events
    await poll(
        lambda: _gone(env, BATCH_JOBS, ns, f"{name}-launcher"),
        timeout=30,
        what="the launcher Job deleted by its TTL",
    )
    assert (await v2.get_v2(ns, name))["metadata"]["name"] == name


async def test_the_deadline_fails_the_job_through_its_launcher(v2: V2Env) -> None:
    env = v2.env
    ns = await env.namespace("mpiv2-deadline")
    name = "slow"
    job = mpijob_v2(name, ns, launcher_seconds=3600)
    job["spec"]["runPolicy"]["activeDeadlineSeconds"] = 2
    assert (await v2.apply(job)).returncode == 0
    failed = await v2.wait_v2(ns, name, "Failed", timeout=60)
    condition = {c["type"]: c for c in failed["status"]["conditions"]}["Failed"]
    assert condition["reason"] == "DeadlineExceeded", condition
