"""``kubetrain cluster`` as a user runs it: a foreground process, a kubeconfig once serving,
kubectl through it, a clean exit 0 on Ctrl-C or SIGTERM, state kept with ``--data``."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
KUBETRAIN = shutil.which("kubetrain", path=str(BIN)) or ""
KUBECTL = shutil.which("kubectl", path=str(BIN)) or ""

pytestmark = pytest.mark.skipif(
    not (KUBETRAIN and KUBECTL), reason="kubetrain entry point or kubectl not installed"
)


class ClusterProcess:
    """A running ``kubetrain cluster`` subprocess and its kubeconfig."""

    def __init__(self, kubeconfig: Path, *extra: str) -> None:
        self.kubeconfig = kubeconfig
        self.proc = subprocess.Popen(
            [KUBETRAIN, "cluster", "--port", "0", "--nodes", "0",
             "--kubeconfig", str(kubeconfig), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not kubeconfig.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out, err = self.proc.communicate(timeout=5)
                raise AssertionError(f"no kubeconfig; rc={self.proc.returncode}\n{out}\n{err}")
            time.sleep(0.05)

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def stop(self, sig: signal.Signals) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[ClusterProcess]:
    cluster = ClusterProcess(tmp_path / "kubeconfig")
    try:
        yield cluster
    finally:
        cluster.kill()


def test_serves_kubectl_and_exits_0_on_ctrl_c(started: ClusterProcess) -> None:
    result = started.kubectl("get", "ns")
    assert result.returncode == 0, result.stderr
    names = {line.split()[0] for line in result.stdout.splitlines()[1:]}
    assert {"default", "kube-system"} <= names
    rc, out, err = started.stop(signal.SIGINT)
    assert rc == 0, err
    assert "Traceback" not in err, err
    assert "serving at http://127.0.0.1:" in out


def test_exits_0_on_sigterm(started: ClusterProcess) -> None:
    assert started.kubectl("create", "configmap", "x").returncode == 0
    rc, _, err = started.stop(signal.SIGTERM)
    assert rc == 0, err
    assert "Traceback" not in err, err


def test_data_dir_keeps_objects_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ClusterProcess(tmp_path / "kc1", "--data", str(data))
    try:
        created = first.kubectl("create", "configmap", "kept", "--from-literal=k=v")
        assert created.returncode == 0, created.stderr
        uid = first.kubectl("get", "configmap", "kept", "-o", "jsonpath={.metadata.uid}").stdout
        assert uid
        assert first.stop(signal.SIGINT)[0] == 0
    finally:
        first.kill()
    second = ClusterProcess(tmp_path / "kc2", "--data", str(data))
    try:
        got = second.kubectl("get", "configmap", "kept", "-o", "jsonpath={.metadata.uid}")
        assert got.returncode == 0, got.stderr
        assert got.stdout == uid
        rc, _, err = second.stop(signal.SIGINT)
        assert rc == 0 and "Traceback" not in err, err
    finally:
        second.kill()


def test_a_locked_data_dir_fails_with_a_clear_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ClusterProcess(tmp_path / "kc1", "--data", str(data))
    try:
        proc = subprocess.run(
            [KUBETRAIN, "cluster", "--nodes", "0", "--data", str(data),
             "--kubeconfig", str(tmp_path / "kc2")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode != 0
        assert "in use by another kubetrain cluster" in proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
    finally:
        first.kill()


def test_a_port_in_use_fails_with_a_clear_message(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [KUBETRAIN, "cluster", "--nodes", "0", "--port", str(port),
             "--kubeconfig", str(tmp_path / "kc")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 1
    assert "kubetrain cluster: error:" in proc.stderr and "Traceback" not in proc.stderr
