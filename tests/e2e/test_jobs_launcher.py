"""The Kubeflow Pipelines component ``deploy/pipelines/kubetrain-launcher.yaml``: its structure,
then its container command line, placeholders filled in as the pipeline would, run as the step
would run it (the installed ``kubetrain`` entry point, the cluster from ``$KUBECONFIG``) against
the embedded cluster: a succeeding job exits 0 with its logs in the step's log, from a manifest or
from parameters (the other inputs passed empty, as the pipeline passes them), a failing one 1,
both a manifest and parameters 3, and SIGTERM (the run stopped) deletes the job and exits 143.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from jobkit_e2e import Env, poll
from test_jobs_cli import KUBETRAIN
from test_jobs_cli_actions import PYTORCHJOBS, pytorchjob
from trainjob_e2e import get, open_trainer_env

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = ROOT / "deploy" / "pipelines" / "kubetrain-launcher.yaml"
RBAC = ROOT / "deploy" / "pipelines" / "launcher-rbac.yaml"
#: The inputs that build a job without a manifest, and the ``jobs submit`` flag each goes to.
PARAMETERS = {
    "kind": "--kind",
    "name": "--name",
    "image": "--image",
    "replicas": "--replicas",
    "command": "--command",
    "runtime": "--runtime",
}

ON_THE_CLUSTER = pytest.mark.asyncio(loop_scope="module")
pytestmark = [
    pytest.mark.http_api,
    pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed"),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    async for e in open_trainer_env(request, tmp_path_factory):
        yield e


def component() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPONENT.read_text())
    assert isinstance(loaded, dict)
    return loaded


def command_line(values: dict[str, str]) -> list[str]:
    """The container's command and args with each ``{inputValue: X}`` replaced by
    ``values[X]`` (or the input's default), as the pipeline's driver does."""
    spec = component()
    defaults = {i["name"]: i.get("default") for i in spec["inputs"]}
    container = spec["implementation"]["container"]
    argv: list[str] = []
    for item in [*container["command"], *container.get("args", [])]:
        if isinstance(item, dict):
            (placeholder, name), *rest = item.items()
            assert placeholder == "inputValue" and not rest, item
            value = values.get(name, defaults[name])
            assert value is not None, f"input {name} has no value and no default"
            argv.append(str(value))
        else:
            argv.append(str(item))
    return argv


def test_component_structure() -> None:
    spec = component()
    assert spec["name"] and spec["description"]
    inputs = {i["name"]: i for i in spec["inputs"]}
    assert set(inputs) == {"manifest", "namespace", "timeout", "follow_logs", *PARAMETERS}
    assert all(i.get("optional") for i in inputs.values())  # a manifest or parameters
    for name in ("manifest", *PARAMETERS):  # empty: not given (jobs submit's rule)
        assert inputs[name]["default"] == "" and inputs[name]["type"] == "String", name
    container = spec["implementation"]["container"]
    assert container["image"] == "ghcr.io/kubetrain/kubetrain:0.1.0"
    argv = command_line({"manifest": "M"})
    assert argv[:3] == ["kubetrain", "jobs", "submit"]
    for flag in ("--wait", "--delete-on-cancel", "--follow-logs", "--manifest-text"):
        assert flag in argv
    assert argv[argv.index("--manifest-text") + 1] == "M"
    for name, flag in PARAMETERS.items():  # every input always passed: a static arg list
        assert argv[argv.index(flag) + 1] == "", name
    params = command_line({"kind": "PyTorchJob", "command": "python train.py"})
    assert params[params.index("--manifest-text") + 1] == ""
    assert params[params.index("--kind") + 1] == "PyTorchJob"
    assert params[params.index("--command") + 1] == "python train.py"

    rbac = list(yaml.safe_load_all(RBAC.read_text()))
    role = next(d for d in rbac if d["kind"] == "Role")
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    job_verbs = {"create", "get", "list", "watch", "delete", "patch"}
    assert granted[("kubeflow.org", "pytorchjobs")] >= job_verbs
    assert granted[("trainer.kubeflow.org", "trainjobs")] >= job_verbs
    assert granted[("", "pods/log")] >= {"get"} and granted[("", "pods")] >= {"get", "list"}
    assert granted[("", "events")] >= {"list"}
    assert any(d["kind"] == "RoleBinding" for d in rbac)


def test_component_loads_in_kfp() -> None:
    """With the kfp SDK at hand (not a dependency of the project), the SDK itself accepts it."""
    components = pytest.importorskip("kfp.components")
    task_factory = components.load_component_from_file(str(COMPONENT))
    assert task_factory.name == "kubetrain-launcher"


def _step(env: Env, manifest: dict[str, Any], **values: str) -> list[str]:
    """The step's command line; the manifest as a user writes it, ``---`` first (a value that
    starts with a dash must still be the manifest's, not an option)."""
    argv = command_line({"manifest": "---\n" + yaml.safe_dump(manifest), **values})
    assert argv[0] == "kubetrain"
    return [KUBETRAIN, *argv[1:]]


def _params_step(**values: str) -> list[str]:
    """The step's command line with parameters and no manifest (every other input its default,
    ``""`` for the manifest and unused parameters)."""
    argv = command_line(values)
    assert argv[argv.index("--manifest-text") + 1] == ""
    return [KUBETRAIN, *argv[1:]]


def _step_env(env: Env) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": env.cluster.kubeconfig_path}


async def run_step(env: Env, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=120, env=_step_env(env)
    )


@ON_THE_CLUSTER
async def test_step_succeeds_and_streams_logs(env: Env) -> None:
    ns = await env.namespace("launch")
    job = pytorchjob(ns, "ok", run_seconds=1.0, workers=1)
    done = await run_step(env, _step(env, job, timeout="120"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pytorchjob.kubeflow.org/ok created\n")
    assert "PyTorchJob ok: Succeeded" in done.stderr
    if not env.real:  # pod logs are the embedded server's
        logs = done.stdout.splitlines()[1:]
        assert sorted(logs) == [
            "[ok-master-0/pytorch] ok-master-0 pytorch run 1: line 1/1",
            "[ok-worker-0/pytorch] ok-worker-0 pytorch run 1: line 1/1",
        ]

    # the namespace input places a manifest that names none
    bare = pytorchjob(ns, "placed", run_seconds=0.3)
    del bare["metadata"]["namespace"]
    placed = await run_step(env, _step(env, bare, namespace=ns, follow_logs="false"))
    assert placed.returncode == 0, placed.stderr
    assert placed.stdout == "pytorchjob.kubeflow.org/placed created\n"  # no logs asked for


@ON_THE_CLUSTER
async def test_step_from_parameters(env: Env) -> None:
    """No manifest: kind, name, image, replicas and command make the job (the simulated pods,
    without annotations, run a second and succeed)."""
    ns = await env.namespace("launch-params")
    argv = _params_step(
        kind="PyTorchJob",
        name="params",
        image="busybox:1",
        replicas="Master=1,Worker=1",
        command="python -c 'print(1)'",
        namespace=ns,
        timeout="120",
    )
    done = await run_step(env, argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pytorchjob.kubeflow.org/params created\n")
    assert "PyTorchJob params: Succeeded" in done.stderr
    if not env.real:
        assert sorted(done.stdout.splitlines()[1:]) == [
            "[params-master-0/pytorch] params-master-0 pytorch run 1: line 1/1",
            "[params-worker-0/pytorch] params-worker-0 pytorch run 1: line 1/1",
        ]
    job = await get(env, PYTORCHJOBS, ns, "params")
    assert job is not None
    specs = job["spec"]["pytorchReplicaSpecs"]
    assert {t: s["replicas"] for t, s in specs.items()} == {"Master": 1, "Worker": 1}
    (container,) = specs["Worker"]["template"]["spec"]["containers"]
    assert container["image"] == "busybox:1"
    assert container["command"] == ["python", "-c", "print(1)"]  # split as a shell would


@ON_THE_CLUSTER
async def test_step_refuses_manifest_and_parameters(env: Env) -> None:
    ns = await env.namespace("launch-both")
    argv = _step(
        env,
        pytorchjob(ns, "both", run_seconds=0.3),
        kind="PyTorchJob",
        name="both",
        image="busybox:1",
    )
    both = await run_step(env, argv)
    assert both.returncode == 3, both.stderr
    assert "--manifest-text" in both.stderr and "--kind, --name, --image" in both.stderr
    assert "not both" in both.stderr
    assert both.stdout == ""
    assert await get(env, PYTORCHJOBS, ns, "both") is None  # refused before anything was created

    neither = await run_step(env, _params_step(namespace=ns))  # every input empty
    assert neither.returncode == 3 and "exactly one of" in neither.stderr
    no_image = await run_step(env, _params_step(kind="PyTorchJob", name="x", namespace=ns))
    assert no_image.returncode == 3 and "--kind needs --name NAME and --image IMAGE" in (
        no_image.stderr
    )


@ON_THE_CLUSTER
async def test_step_fails_with_the_job(env: Env) -> None:
    ns = await env.namespace("launch-fail")
    failed = await run_step(env, _step(env, pytorchjob(ns, "bad", run_seconds=0.3, exit_code=4)))
    assert failed.returncode == 1, failed.stderr
    assert "PyTorchJob bad: Failed" in failed.stderr
    refused = await run_step(env, _step(env, {"apiVersion": "v1", "kind": "Pod"}))
    assert refused.returncode == 3 and "is not a training job" in refused.stderr


@ON_THE_CLUSTER
async def test_sigterm_deletes_the_job(env: Env) -> None:
    ns = await env.namespace("launch-stop")
    argv = _step(env, pytorchjob(ns, "stopped", run_seconds=600))
    proc = await asyncio.to_thread(
        subprocess.Popen,
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_step_env(env),
    )
    await poll(lambda: get(env, PYTORCHJOBS, ns, "stopped"), timeout=30, what="the job created")
    proc.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 143, stderr
    assert "pytorchjob.kubeflow.org/stopped deleted (SIGTERM)" in stderr
    job = await get(env, PYTORCHJOBS, ns, "stopped")
    assert job is None or "deletionTimestamp" in job["metadata"]
