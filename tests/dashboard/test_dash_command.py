"""``kubetrain dashboard`` and the dashboard of ``kubetrain up`` as a user runs them: installed
entry point, subprocesses, the URL printed, Ctrl-C."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

KUBETRAIN = shutil.which("kubetrain", path=str(Path(sys.executable).parent)) or ""

pytestmark = [
    pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed"),
    pytest.mark.embedded_only("runs its own embedded clusters"),
]


def get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        data: dict[str, object] = json.loads(resp.read())
        return data


def test_dashboard_command_serves_until_ctrl_c(tmp_path: Path) -> None:
    cluster = subprocess.Popen(
        [KUBETRAIN, "cluster", "--port", "0", "--kubeconfig", str(tmp_path / "kc"), "--nodes", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert cluster.stdout is not None
        for line in cluster.stdout:
            if line.startswith("kubeconfig:"):
                break
        dashboard = subprocess.Popen(
            [
                KUBETRAIN,
                "dashboard",
                "--kubeconfig",
                str(tmp_path / "kc"),
                "--bind",
                "127.0.0.1:0",
                "-n",
                "default",
                "--read-only",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert dashboard.stdout is not None
            line = dashboard.stdout.readline()
            assert "kubetrain dashboard serving at http://127.0.0.1:" in line, line
            url = line.split(" at ", 1)[1].split()[0]
            info = get_json(url + "api/info")
            # no CRDs installed: every job kind is skipped, and the dashboard still serves
            assert info["kinds"] == [] and info["readOnly"] is True
            assert info["namespace"] == "default"
            assert get_json(url + "api/jobs")["total"] == 0
        finally:
            dashboard.send_signal(signal.SIGINT)
            _, err = dashboard.communicate(timeout=20)
        assert dashboard.returncode == 0, err
        assert "Traceback" not in err, err
    finally:
        cluster.send_signal(signal.SIGINT)
        cluster.communicate(timeout=30)


def test_dashboard_command_refuses_a_bad_bind() -> None:
    result = subprocess.run(
        [KUBETRAIN, "dashboard", "--bind", "nonsense"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert "--bind 'nonsense': expected HOST:PORT" in result.stderr


def test_up_serves_the_dashboard_on_a_free_port_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                KUBETRAIN,
                "up",
                "--port",
                "0",
                "--kubeconfig",
                str(tmp_path / "kc"),
                "--exit-when-done",
                "--dashboard-bind",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("dashboard at "))
    assert f"(127.0.0.1:{port} is taken)" in line
    assert f"127.0.0.1:{port}/" not in line.split(" (")[0]


def test_up_refuses_a_bad_dashboard_bind(tmp_path: Path) -> None:
    result = subprocess.run(
        [KUBETRAIN, "up", "--kubeconfig", str(tmp_path / "kc"), "--dashboard-bind", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "--dashboard-bind 'x': expected HOST:PORT" in result.stderr
