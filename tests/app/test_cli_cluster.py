"""``kubetrain cluster`` as a user runs it: a foreground process, a kubeconfig once serving,
kubectl through it, a clean exit 0 on Ctrl-C or SIGTERM, state kept with ``--data``; secure by
default (https, TLS 1.2+, a bearer token only the 0600 kubeconfig holds, loopback), plain http
with ``--insecure`` on loopback only."""

from __future__ import annotations

import base64
import http.client
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

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
    assert "serving at https://127.0.0.1:" in out


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
        # the same CA and token: a client that read the first kubeconfig still gets in
        assert kubeconfig_user(first.kubeconfig) == kubeconfig_user(second.kubeconfig)
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


def kubeconfig_user(path: Path) -> tuple[str, str]:
    """(the cluster's certificate-authority-data, the user's token)."""
    doc = yaml.safe_load(path.read_text())
    return doc["clusters"][0]["cluster"]["certificate-authority-data"], doc["users"][0]["user"][
        "token"
    ]


def _get(url: str, *, ca: str | None, token: str | None, tls: ssl.TLSVersion | None = None) -> int:
    ctx = ssl.create_default_context(cadata=base64.b64decode(ca).decode() if ca else None)
    if tls is not None:
        with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = tls
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_secure_by_default_token_and_ca_only_in_a_private_kubeconfig(
    started: ClusterProcess,
) -> None:
    mode = stat.S_IMODE(started.kubeconfig.stat().st_mode)
    assert mode == 0o600, oct(mode)
    doc = yaml.safe_load(started.kubeconfig.read_text())
    url = doc["clusters"][0]["cluster"]["server"]
    ca, token = kubeconfig_user(started.kubeconfig)
    assert url.startswith("https://127.0.0.1:")
    pods = f"{url}/api/v1/namespaces/default/pods"
    assert _get(pods, ca=ca, token=token) == 200
    assert _get(pods, ca=ca, token=None) == 401
    assert _get(pods, ca=ca, token=token + "x") == 401
    assert _get(f"{url}/version", ca=ca, token=None) == 200  # public, as kube-apiserver's
    with pytest.raises(urllib.error.URLError):  # a CA it was not signed by
        _get(pods, ca=None, token=token)
    with pytest.raises((urllib.error.URLError, ssl.SSLError)):  # TLS 1.1: refused
        _get(pods, ca=ca, token=token, tls=ssl.TLSVersion.TLSv1_1)
    assert _get(pods, ca=ca, token=token, tls=ssl.TLSVersion.TLSv1_2) == 200
    plain = "http://" + url.removeprefix("https://") + "/version"
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        urllib.request.urlopen(plain, timeout=10).read()


def test_insecure_serves_plain_http_on_loopback_only(tmp_path: Path) -> None:
    cluster = ClusterProcess(tmp_path / "kc", "--insecure")
    try:
        url = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/api/v1/namespaces", timeout=10) as resp:
            assert resp.status == 200
    finally:
        cluster.kill()
    proc = subprocess.run(
        [KUBETRAIN, "cluster", "--insecure", "--address", "0.0.0.0", "--nodes", "0",
         "--kubeconfig", str(tmp_path / "kc2")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--insecure" in proc.stderr and "--address 0.0.0.0" in proc.stderr, proc.stderr
    assert not (tmp_path / "kc2").exists()
