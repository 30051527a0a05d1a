"""``kubetrain operator`` with a cluster configuration it cannot use: one line on stderr that names
the problem and the fix, exit status 2, never a Python traceback. Each test runs the installed
entry point as a subprocess, as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubeconfigs import ExecPlugin, kubeconfig_doc, write_kubeconfig

from kubetrain.engine.config import SERVICE_ACCOUNT_DIR

BIN = Path(sys.executable).parent
KUBETRAIN = shutil.which("kubetrain", path=str(BIN)) or ""
QUIET = [
    "--metrics-bind-address",
    "0",
    "--health-probe-bind-address",
    "0",
    "--webhook-server-port",
    "0",
]
UNREACHABLE = "http://127.0.0.1:1"

pytestmark = pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed")


def run_operator(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBETRAIN, "operator", *args, *QUIET], capture_output=True, text=True, timeout=60, env=env
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kubetrain: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def clean_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment without any cluster configuration (no KUBECONFIG, no in-cluster
    variables, an empty HOME)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "KUBERNETES_"))}
    env["HOME"] = str(tmp_path / "home")
    yield env


def test_a_missing_kubeconfig_file(tmp_path: Path, clean_env: dict[str, str]) -> None:
    result = run_operator("--kubeconfig", str(tmp_path / "nope"), env=clean_env)
    assert_one_line(result, str(tmp_path / "nope"), "does not exist", "pass an existing file")


def test_a_kubeconfig_that_is_not_yaml(tmp_path: Path, clean_env: dict[str, str]) -> None:
    (tmp_path / "kc").write_text("clusters: [")
    result = run_operator("--kubeconfig", str(tmp_path / "kc"), env=clean_env)
    assert_one_line(result, "is not valid YAML")


def test_an_unknown_context(tmp_path: Path, clean_env: dict[str, str]) -> None:
    doc = kubeconfig_doc(UNREACHABLE, user={"token": "x"}, current="gone")
    result = run_operator(
        "--kubeconfig", str(write_kubeconfig(tmp_path / "kc", doc)), env=clean_env
    )
    assert_one_line(result, "context 'gone' is not defined", "use one of 'c', 'other'")


def test_an_exec_plugin_that_is_not_installed(tmp_path: Path, clean_env: dict[str, str]) -> None:
    user = ExecPlugin(tmp_path, "t").user(command="kubelogin-not-installed")
    path = write_kubeconfig(tmp_path / "kc", kubeconfig_doc(UNREACHABLE, user=user))
    result = run_operator("--kubeconfig", str(path), env=clean_env)
    assert_one_line(
        result,
        "exec plugin of user 'u'",
        "'kubelogin-not-installed' is not found",
        "put it on PATH",
    )


def test_an_exec_plugin_that_fails(tmp_path: Path, clean_env: dict[str, str]) -> None:
    user = ExecPlugin(tmp_path, "t").user()
    user["exec"]["args"] = ["-c", "import sys; sys.exit('the refresh token expired: log in')"]
    path = write_kubeconfig(tmp_path / "kc", kubeconfig_doc(UNREACHABLE, user=user))
    result = run_operator("--kubeconfig", str(path), env=clean_env)
    assert_one_line(result, "exec plugin of user 'u'", "the refresh token expired: log in")


def test_no_configuration_outside_a_cluster(clean_env: dict[str, str]) -> None:
    result = run_operator(env=clean_env)
    assert_one_line(result, "no cluster configuration found", "--kubeconfig")


@pytest.mark.skipif(
    Path(SERVICE_ACCOUNT_DIR, "token").exists(), reason="runs in a pod with a service account"
)
def test_in_cluster_variables_without_a_service_account(clean_env: dict[str, str]) -> None:
    env = {**clean_env, "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    result = run_operator(env=env)
    assert_one_line(result, "service account token", "is missing", "pass --kubeconfig")
