"""``kubetrain jobs describe | logs | submit | delete | suspend | resume`` (``kubetrain/jobs_*.py``)
as a user or a script runs them: the installed entry point in a subprocess against the embedded
cluster (and, under ``--apiserver=real``, a real kube-apiserver, where pod logs are out of scope:
the log contents are asserted on the embedded server only), output and exit codes judged.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import yaml
from jobkit_e2e import SIM, Env, job_manifest, poll
from test_jobs_cli import KUBETRAIN, jobs
from trainjob_e2e import get, open_trainer_env, trainjob

from kubetrain.informers.resource import kubeflow
from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.reconcilers.jobview import job_state
from kubetrain.reconcilers.trainer.resources import TRAINJOBS

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.http_api,
    pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed"),
]

PYTORCHJOBS = kubeflow("PyTorchJob")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    async for e in open_trainer_env(request, tmp_path_factory):
        yield e


def pytorchjob(
    ns: str,
    name: str,
    *,
    run_seconds: float,
    workers: int = 1,
    exit_code: int = 0,
    pod_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    kind = BY_KIND["PyTorchJob"]
    extra = dict(pod_annotations or {})
    annotations = {"Master": dict(extra), "Worker": dict(extra)}
    if exit_code:
        annotations["Master"][SIM + "exit-code"] = str(exit_code)
    return job_manifest(
        kind.kind,
        kind.replica_field,
        kind.default_container,
        {"Master": 1, "Worker": workers},
        name=name,
        namespace=ns,
        run_seconds=run_seconds,
        annotations=annotations,
        run_policy={"backoffLimit": 0},
        restart_policy="Never",
    )


async def jobs_in(
    env: Env, *args: str, stdin: str | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """``jobs`` with ``stdin``."""
    command = [KUBETRAIN, "jobs", "--kubeconfig", env.cluster.kubeconfig_path, *args]
    return await asyncio.to_thread(
        subprocess.run, command, input=stdin, capture_output=True, text=True, timeout=timeout
    )


async def state_of(env: Env, ref: Any, ns: str, name: str, kind: str) -> str | None:
    job = await get(env, ref, ns, name)
    return None if job is None else job_state(kind, job)


async def test_describe_shows_state_pods_conditions_events(env: Env) -> None:
    ns = await env.namespace("describe")
    await env.client.create(PYTORCHJOBS, pytorchjob(ns, "busy", run_seconds=600, workers=2))
    running = await jobs(env, "wait", "pytorchjob/busy", "-n", ns, "--for", "Running")
    assert running.returncode == 0, running.stderr

    out = await jobs(env, "describe", "pytorchjob/busy", "-n", ns)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert re.search(r"^Kind:\s+PyTorchJob$", text, re.M)
    assert re.search(rf"^Namespace:\s+{ns}$", text, re.M)
    assert re.search(r"^State:\s+Running$", text, re.M)
    assert re.search(r"^Finished:\s+<running>$", text, re.M)
    assert "  Master (1 asked):" in text and "  Worker (2 asked):" in text
    for pod in ("busy-master-0", "busy-worker-0", "busy-worker-1"):
        assert re.search(rf"^\s+{pod}\s+(Pending|Running)\s+\d/1\s+0\s+\S+$", text, re.M), text
    conditions = text[text.index("Conditions:") : text.index("Events:")]
    assert re.search(r"Created\s+True", conditions) and re.search(r"Running\s+True", conditions)
    events = text[text.index("Events:") :]
    assert "SuccessfulCreatePod" in events and "Created pod: busy-worker-1" in events

    as_json = await jobs(env, "describe", "pytorchjobs/busy", "-n", ns, "-o", "json")
    assert json.loads(as_json.stdout)["metadata"]["name"] == "busy"
    as_yaml = await jobs(env, "describe", "PyTorchJob/busy", "-n", ns, "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout)["kind"] == "PyTorchJob"

    await env.client.create(TRAINJOBS, trainjob("tj", ns, trainer={"numNodes": 2}))
    assert (await jobs(env, "wait", "trainjob/tj", "-n", ns)).returncode == 0
    tj = await jobs(env, "describe", "trainjob/tj", "-n", ns)
    assert tj.returncode == 0, tj.stderr
    assert re.search(r"^State:\s+Succeeded$", tj.stdout, re.M)
    assert "Replicated jobs:\n  node:" in tj.stdout
    assert len(re.findall(r"^\s+tj-node-0-\d-\S+\s+Succeeded", tj.stdout, re.M)) == 2

    missing = await jobs(env, "describe", "pytorchjob/nope", "-n", ns)
    assert missing.returncode == 3 and "not found" in missing.stderr
    bad_word = await jobs(env, "describe", "deployment/x", "-n", ns)
    assert bad_word.returncode == 3 and "expected KIND/NAME" in bad_word.stderr


async def test_logs_of_every_pod_one_replica_and_following(env: Env) -> None:
    ns = await env.namespace("logs")
    three_lines = {SIM + "log-lines": "3"}
    job = pytorchjob(ns, "talk", run_seconds=0.3, workers=2, pod_annotations=three_lines)
    await env.client.create(PYTORCHJOBS, job)
    assert (await jobs(env, "wait", "pytorchjob/talk", "-n", ns)).returncode == 0

    if not env.real:  # a real API server has no kubelet to read the simulated pods' logs from
        every = await jobs(env, "logs", "pytorchjob/talk", "-n", ns)
        assert every.returncode == 0, every.stderr
        expected = [
            f"[talk-{pod}/pytorch] talk-{pod} pytorch run 1: line {n}/3"
            for pod in ("master-0", "worker-0", "worker-1")
            for n in (1, 2, 3)
        ]
        assert every.stdout.splitlines() == expected
        one = await jobs(env, "logs", "pytorchjob/talk", "-n", ns, "--replica", "worker-1")
        assert one.stdout.splitlines() == [
            f"talk-worker-1 pytorch run 1: line {n}/3" for n in (1, 2, 3)
        ]  # one pod, one container: no prefix
        workers = await jobs(
            env, "logs", "pytorchjob/talk", "-n", ns, "--replica", "Worker", "--tail", "1"
        )
        assert workers.stdout.splitlines() == [
            "[talk-worker-0/pytorch] talk-worker-0 pytorch run 1: line 3/3",
            "[talk-worker-1/pytorch] talk-worker-1 pytorch run 1: line 3/3",
        ]
        named = await jobs(env, "logs", "pytorchjob/talk", "-n", ns, "-c", "pytorch",
                           "--replica", "master-0")  # fmt: skip
        assert named.returncode == 0 and len(named.stdout.splitlines()) == 3
        previous = await jobs(env, "logs", "pytorchjob/talk", "-n", ns, "--previous")
        assert previous.returncode == 3 and "previous terminated container" in previous.stderr

    no_type = await jobs(env, "logs", "pytorchjob/talk", "-n", ns, "--replica", "chief")
    assert no_type.returncode == 3 and "has no replica type 'chief'" in no_type.stderr
    no_container = await jobs(env, "logs", "pytorchjob/talk", "-n", ns, "-c", "sidecar")
    assert no_container.returncode == 3 and "no container 'sidecar'" in no_container.stderr
    missing = await jobs(env, "logs", "pytorchjob/nope", "-n", ns)
    assert missing.returncode == 3 and "not found" in missing.stderr

    # -f from before the pods run: waits for them, streams each, ends with the job
    slow = pytorchjob(
        ns, "slow", run_seconds=1.5, pod_annotations={SIM + "start-delay-seconds": "1"}
    )
    await env.client.create(PYTORCHJOBS, slow)
    followed = await jobs(env, "logs", "pytorchjob/slow", "-n", ns, "-f")
    if not env.real:
        assert followed.returncode == 0, followed.stderr
        assert sorted(followed.stdout.splitlines()) == [
            "[slow-master-0/pytorch] slow-master-0 pytorch run 1: line 1/1",
            "[slow-worker-0/pytorch] slow-worker-0 pytorch run 1: line 1/1",
        ]
    assert await state_of(env, PYTORCHJOBS, ns, "slow", "PyTorchJob") == "Succeeded"


async def test_logs_of_a_trainjob_and_of_pods_not_started(env: Env) -> None:
    ns = await env.namespace("logs-tj")
    await env.client.create(TRAINJOBS, trainjob("tj", ns, trainer={"numNodes": 2}))
    assert (await jobs(env, "wait", "trainjob/tj", "-n", ns)).returncode == 0
    out = await jobs(env, "logs", "trainjob/tj", "-n", ns, "--replica", "node-1")
    if not env.real:
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert len(lines) == 1 and re.fullmatch(r"tj-node-0-1-\S+ node run 1: line 1/1", lines[0])

    held = pytorchjob(ns, "held", run_seconds=600)
    held["spec"]["runPolicy"]["suspend"] = True
    await env.client.create(PYTORCHJOBS, held)
    none = await jobs(env, "logs", "pytorchjob/held", "-n", ns)
    assert none.returncode == 0 and "has no pods yet" in none.stderr


async def test_suspend_resume_delete(env: Env) -> None:
    ns = await env.namespace("actions")
    await env.client.create(PYTORCHJOBS, pytorchjob(ns, "pause", run_seconds=600))
    suspended = await jobs(env, "suspend", "pytorchjob/pause", "-n", ns)
    assert suspended.returncode == 0, suspended.stderr
    assert suspended.stdout == "pytorchjob.kubeflow.org/pause suspended\n"
    job = await get(env, PYTORCHJOBS, ns, "pause")
    assert job is not None and job["spec"]["runPolicy"]["suspend"] is True
    await poll(
        lambda: _is(env, PYTORCHJOBS, ns, "pause", "PyTorchJob", "Suspended"),
        timeout=30,
        what="Suspended",
    )
    resumed = await jobs(env, "resume", "pytorchjobs/pause", "-n", ns)
    assert resumed.stdout == "pytorchjob.kubeflow.org/pause resumed\n"
    job = await get(env, PYTORCHJOBS, ns, "pause")
    assert job is not None and job["spec"]["runPolicy"]["suspend"] is False
    running = await jobs(env, "wait", "pytorchjob/pause", "-n", ns, "--for", "Running")
    assert running.returncode == 0, running.stderr

    await env.client.create(TRAINJOBS, trainjob("tjp", ns, trainer={"numNodes": 1}))
    tj = await jobs(env, "suspend", "trainjob/tjp", "-n", ns)
    assert tj.stdout == "trainjob.trainer.kubeflow.org/tjp suspended\n"
    got = await get(env, TRAINJOBS, ns, "tjp")
    assert got is not None and got["spec"]["suspend"] is True

    deleted = await jobs(env, "delete", "pytorchjob/pause", "-n", ns, "--wait", "--timeout", "60")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == "pytorchjob.kubeflow.org/pause deleted\n"
    assert await get(env, PYTORCHJOBS, ns, "pause") is None
    for action in ("delete", "suspend", "resume"):
        gone = await jobs(env, action, "pytorchjob/pause", "-n", ns)
        assert gone.returncode == 3 and "not found" in gone.stderr, action


async def _is(env: Env, ref: Any, ns: str, name: str, kind: str, state: str) -> bool:
    return await state_of(env, ref, ns, name, kind) == state


async def test_submit_manifests_and_exit_codes(env: Env) -> None:
    ns = await env.namespace("submit")
    good = yaml.safe_dump(pytorchjob(ns, "good", run_seconds=0.5))
    out = await jobs_in(env, "submit", "-f", "-", "--wait", stdin=good)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "pytorchjob.kubeflow.org/good created\n"
    assert re.search(r"^\s+\d+\.\ds PyTorchJob good: Succeeded$", out.stderr, re.M), out.stderr

    bad = json.dumps(pytorchjob(ns, "bad", run_seconds=0.3, exit_code=2))
    failed = await jobs_in(env, "submit", "-f", "-", "--wait", stdin=bad)
    assert failed.returncode == 1 and "PyTorchJob bad: Failed" in failed.stderr

    long = pytorchjob(ns, "long", run_seconds=600, workers=2)
    timed_out = await jobs_in(
        env, "submit", "-f", "-", "--wait", "--timeout", "1", stdin=yaml.safe_dump(long)
    )
    assert timed_out.returncode == 2 and "timed out after 1 s" in timed_out.stderr
    running = await jobs(env, "wait", "pytorchjob/long", "-n", ns, "--for", "Running")
    assert re.search(r"PyTorchJob long: Running \(\d/3 pods ready\)", running.stderr)

    two = "---\n".join(yaml.safe_dump(pytorchjob(ns, n, run_seconds=0.3)) for n in ("one", "two"))
    both = await jobs_in(env, "submit", "-f", "-", "--wait", stdin=two)
    assert both.returncode == 0, both.stderr
    assert both.stdout.splitlines() == [
        "pytorchjob.kubeflow.org/one created",
        "pytorchjob.kubeflow.org/two created",
    ]

    again = await jobs_in(env, "submit", "-f", "-", stdin=good)
    assert again.returncode == 3 and "Error from server (AlreadyExists)" in again.stderr
    invalid = pytorchjob(ns, "invalid", run_seconds=1)
    invalid["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "many"
    refused = await jobs_in(env, "submit", "-f", "-", stdin=yaml.safe_dump(invalid))
    assert refused.returncode == 3
    assert "Error from server (Invalid)" in refused.stderr
    assert re.search(r"^  spec\.pytorchReplicaSpecs\.Worker\.replicas: .+", refused.stderr, re.M)
    assert await get(env, PYTORCHJOBS, ns, "invalid") is None

    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    not_a_job = await jobs_in(env, "submit", "-f", "-", stdin=yaml.safe_dump(config_map))
    assert not_a_job.returncode == 3 and "is not a training job" in not_a_job.stderr
    garbage = await jobs_in(env, "submit", "-f", "-", stdin="{not: [json")
    assert garbage.returncode == 3 and "not YAML or JSON" in garbage.stderr
    other_ns = await jobs_in(env, "submit", "-f", "-", "-n", "elsewhere", stdin=good)
    assert other_ns.returncode == 3 and "does not match the namespace" in other_ns.stderr
    no_file = await jobs(env, "submit", "-f", "/no/such/file.yaml")
    assert no_file.returncode == 3 and "No such file" in no_file.stderr
    nothing = await jobs(env, "submit")
    assert nothing.returncode == 3 and "exactly one of" in nothing.stderr


async def test_submit_from_flags(env: Env) -> None:
    ns = await env.namespace("flags")
    common = ["submit", "-n", ns, "--image", "busybox:1"]
    dry = await jobs(
        env, *common, "--kind", "pytorchjob", "--name", "p", "--replicas", "master=1,Worker=2",
        "--command", "python -c 'print(1)'", "--arg=--epochs=3", "--env", "A=b=c", "--dry-run",
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    manifest = yaml.safe_load(dry.stdout)
    assert manifest["metadata"] == {"name": "p", "namespace": ns}
    specs = manifest["spec"]["pytorchReplicaSpecs"]
    assert {t: s["replicas"] for t, s in specs.items()} == {"Master": 1, "Worker": 2}
    assert specs["Worker"]["template"]["spec"]["containers"] == [
        {
            "name": "pytorch",
            "image": "busybox:1",
            "command": ["python", "-c", "print(1)"],
            "args": ["--epochs=3"],
            "env": [{"name": "A", "value": "b=c"}],
        }
    ]
    assert await get(env, PYTORCHJOBS, ns, "p") is None  # a dry run creates nothing

    made = await jobs(env, *common, "--kind", "PyTorchJob", "--name", "p", "--replicas",
                      "Master=1,Worker=1", "--wait", "--timeout", "60")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout == "pytorchjob.kubeflow.org/p created\n"
    tj = await jobs(env, *common, "--kind", "TrainJob", "--name", "t", "--runtime",
                    "torch-distributed", "--replicas", "2", "--wait", "--timeout", "60")  # fmt: skip
    assert tj.returncode == 0, tj.stderr
    got = await get(env, TRAINJOBS, ns, "t")
    assert got is not None and got["spec"]["trainer"] == {"image": "busybox:1", "numNodes": 2}

    no_runtime = await jobs(env, *common, "--kind", "TrainJob", "--name", "t2")
    assert no_runtime.returncode == 3 and "needs --runtime" in no_runtime.stderr
    wrong_type = await jobs(env, *common, "--kind", "PyTorchJob", "--name", "x", "--replicas",
                            "Chief=1")  # fmt: skip
    assert wrong_type.returncode == 3 and "no replica type 'Chief'" in wrong_type.stderr
    wrong_kind = await jobs(env, *common, "--kind", "Deployment", "--name", "x")
    assert wrong_kind.returncode == 3 and "--kind 'Deployment'" in wrong_kind.stderr
    usage = await jobs(env, "submit", "--for", "Done")  # argparse's 2 would read "timed out"
    assert usage.returncode == 3 and "invalid choice: 'Done'" in usage.stderr


async def _submit_then_signal(
    env: Env, ns: str, name: str, sig: signal.Signals, *extra: str
) -> subprocess.CompletedProcess[str]:
    body = yaml.safe_dump(pytorchjob(ns, name, run_seconds=600))
    command = [KUBETRAIN, "jobs", "--kubeconfig", env.cluster.kubeconfig_path, "submit",
               "--manifest-text", body, "--wait", *extra]  # fmt: skip
    proc = await asyncio.to_thread(
        subprocess.Popen, command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    await poll(lambda: get(env, PYTORCHJOBS, ns, name), timeout=30, what=f"{name} created")
    proc.send_signal(sig)
    stdout, stderr = await asyncio.to_thread(proc.communicate, timeout=60)
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


async def test_cancel_leaves_the_job_or_deletes_it(env: Env) -> None:
    ns = await env.namespace("cancel")
    kept = await _submit_then_signal(env, ns, "kept", signal.SIGINT)
    assert kept.returncode == 130, kept.stderr
    assert "SIGINT: pytorchjob.kubeflow.org/kept is left running" in kept.stderr
    job = await get(env, PYTORCHJOBS, ns, "kept")
    assert job is not None and "deletionTimestamp" not in job["metadata"]

    dropped = await _submit_then_signal(env, ns, "dropped", signal.SIGINT, "--delete-on-cancel")
    assert dropped.returncode == 130, dropped.stderr
    assert "pytorchjob.kubeflow.org/dropped deleted (SIGINT)" in dropped.stderr
    job = await get(env, PYTORCHJOBS, ns, "dropped")
    assert job is None or "deletionTimestamp" in job["metadata"]

    # jobs wait: SIGTERM ends it with 143 and leaves the job alone
    command = [KUBETRAIN, "jobs", "--kubeconfig", env.cluster.kubeconfig_path, "wait",
               "pytorchjob/kept", "-n", ns]  # fmt: skip
    proc = await asyncio.to_thread(
        subprocess.Popen, command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    first = await asyncio.to_thread(proc.stderr.readline)  # the first progress line: it waits
    assert "PyTorchJob kept:" in first
    proc.send_signal(signal.SIGTERM)
    await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 143
    assert await get(env, PYTORCHJOBS, ns, "kept") is not None
