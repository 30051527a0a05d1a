"""``kubectl get jobs``: the Job columns a real kube-apiserver prints (kube's ``printJob``:
STATUS, COMPLETIONS, DURATION, AGE, and for ``-o wide`` CONTAINERS, IMAGES, SELECTOR), and
``kubectl create job``, which sends a protobuf body. Runs on the real control plane too."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.http_api

KUBECTL = str(Path(sys.executable).with_name("kubectl"))


def kubectl(cluster: Any, *args: str) -> str:
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", cluster.kubeconfig_path, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_kubectl_create_job_and_its_columns(cluster: Any) -> None:
    out = await asyncio.to_thread(
        kubectl, cluster, "create", "job", "hello", "--image=busybox:1.36", "--", "echo", "hi"
    )
    assert out.strip() == "job.batch/hello created"
    await asyncio.to_thread(
        kubectl, cluster, "patch", "job", "hello", "-p", '{"spec":{"suspend":true}}'
    )
    job = await asyncio.to_thread(kubectl, cluster, "get", "job", "hello", "-o", "json")
    assert '"command": [\n' in job and '"echo"' in job  # the protobuf body's command kept
    for _ in range(100):  # the Job controller (if any) marks it Suspended; else Running
        table = await asyncio.to_thread(kubectl, cluster, "get", "jobs")
        if "Suspended" in table or "Running" in table:
            break
        await asyncio.sleep(0.1)
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    cells = row.split()
    assert cells[0] == "hello" and cells[1] in ("Suspended", "Running") and cells[2] == "0/1"
    wide = await asyncio.to_thread(kubectl, cluster, "get", "jobs", "-o", "wide")
    header, row = wide.splitlines()[:2]
    assert header.split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert row.split()[-3:-1] == ["hello", "busybox:1.36"]
    assert row.split()[-1].startswith("batch.kubernetes.io/controller-uid=")
