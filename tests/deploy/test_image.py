"""The image definition (Dockerfile; no container engine here to build it): it installs the wheel
built from this tree and nothing else, runs as a non-root user, starts ``kubetrain operator``, and
everything the operator writes lies under the temp directory, the one writable volume of the
Deployment (checked by running the operator with a Python audit hook)."""

from __future__ import annotations

import asyncio
import datetime
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from jobkit_e2e import job_manifest, open_env  # noqa: E402

from kubetrain.reconcilers.api.webhooks import WebhookService  # noqa: E402
from kubetrain.up import free_port  # noqa: E402
from kubetrain.webhook_install import install_webhooks, wait_until_admitting  # noqa: E402


def instructions(stage: int) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of build stage ``stage`` (0-based) of the Dockerfile."""
    stages: list[list[tuple[str, str]]] = []
    for raw in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), rest.strip()))
    return stages[stage]


def test_the_runtime_stage_installs_the_wheel_as_a_non_root_user() -> None:
    build, runtime = instructions(0), instructions(1)
    assert any(i == "RUN" and "pip wheel" in a and a.rstrip().endswith(" .") for i, a in build)
    assert runtime[0][0] == "FROM" and "slim" in runtime[0][1]
    runs = " ".join(a for i, a in runtime if i == "RUN")
    assert "pip install" in runs and "/wheels/*.whl" in runs
    assert "apt-get" not in runs and "gcc" not in runs  # no build tools in the image
    user = next(a for i, a in runtime if i == "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    deployment = yaml.safe_load((ROOT / "deploy" / "base" / "deployment.yaml").read_text())
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)
    assert next(a for i, a in runtime if i == "ENTRYPOINT") == '["kubetrain"]'
    assert next(a for i, a in runtime if i == "CMD") == '["operator"]'
    env = " ".join(a for i, a in runtime if i == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # no .pyc written beside the code at run time


_WRITES: list[str] = []
_RECORDING = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _RECORDING:
        return
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        if writing and isinstance(path, str | bytes):
            _WRITES.append(os.fsdecode(path))
    elif event in ("os.mkdir", "os.rename", "os.remove", "os.rmdir"):
        path = os.fsdecode(args[0])
        dir_fd = args[-1] if event != "os.rename" else None
        if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
            # relative to an open directory (TemporaryDirectory's cleanup): resolve it
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        _WRITES.append(path)


@pytest.mark.asyncio(loop_scope="function")
async def test_the_operator_writes_only_under_the_temp_directory() -> None:
    global _RECORDING
    sys.addaudithook(_audit)
    service = WebhookService(namespace="kubeflow")
    async for env in open_env(nodes=2):
        port = free_port()
        await install_webhooks(env.client, port=port, service=service)
        _RECORDING = True
        try:
            await env.start_operator(
                webhook_server_port=port,
                operator_namespace=service.namespace,
                webhook_cert_validity=datetime.timedelta(seconds=3),
                leader_elect=True,
            )
            await wait_until_admitting(env.client)
            job = job_manifest(
                "TFJob",
                "tfReplicaSpecs",
                "tensorflow",
                {"Worker": 1},
                name="w",
                namespace="default",
            )
            await env.create_job(job)
            await env.wait_condition("TFJob", "default", "w", "Succeeded")
            await asyncio.sleep(3)  # a certificate renewal
            await env.stop_operator()
        finally:
            _RECORDING = False
        break
    assert _WRITES, "the audit hook saw no write at all: the check would prove nothing"
    temp, outside = outside_of_temp(_WRITES)
    assert outside == [], f"the operator wrote outside {temp}: {outside}"


def outside_of_temp(paths: list[str]) -> tuple[str, list[str]]:
    temp = os.path.realpath(tempfile.gettempdir())
    inside = temp + os.sep
    return temp, sorted(
        {p for p in paths if p != os.devnull and not os.path.realpath(p).startswith(inside)}
    )
