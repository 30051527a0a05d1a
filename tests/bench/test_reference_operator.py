"""The ``reference`` bench system: how the Training Operator v1 binary is started (flags, env, the
missing-binary error), and, where ``tools/conformance/build_reference_operator.sh`` has built it,
one quick burst run of it end to end against the embedded cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubetrain.bench.harness import HarnessError
from kubetrain.bench.reference_operator import (
    BINARY_ENV,
    NO_LIMIT_QPS,
    ReferenceOperatorProcess,
    reference_binary,
)
from kubetrain.bench.systems import DEFAULT_SYSTEMS, SYSTEMS, SystemOptions, system_process


def _fake_binary(tmp_path: Path) -> Path:
    exe = tmp_path / "training-operator.v1"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return exe


def _reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: SystemOptions) -> Any:
    """The reference system's process in namespace ``ns`` over a stand-in binary."""
    monkeypatch.setenv(BINARY_ENV, str(_fake_binary(tmp_path)))
    return system_process(
        "reference", kubeconfig="kc", namespace="ns", log_path=tmp_path / "log", options=options
    )


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_missing_binary_names_the_build_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BINARY_ENV, str(tmp_path / "absent"))
    with pytest.raises(HarnessError, match=r"build_reference_operator\.sh"):
        system_process(
            "reference",
            kubeconfig="kc",
            namespace="ns",
            log_path=tmp_path / "log",
            options=SystemOptions(),
        )


def test_no_client_limit_by_default_and_one_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = _fake_binary(tmp_path)
    monkeypatch.setenv(BINARY_ENV, str(exe))
    proc = system_process(
        "reference",
        kubeconfig="/k/config",
        namespace="burst-reference-1",
        log_path=tmp_path / "log",
        options=SystemOptions(operator_qps=0.0, operator_burst=5),
    )
    assert isinstance(proc, ReferenceOperatorProcess)
    assert proc.argv[0] == str(exe)
    assert _flag(proc.argv, "--namespace") == "burst-reference-1"
    assert _flag(proc.argv, "--enable-scheme") == "pytorchjob"
    assert _flag(proc.argv, "--kube-api-qps") == str(NO_LIMIT_QPS)
    assert _flag(proc.argv, "--kube-api-burst") == str(NO_LIMIT_QPS)
    assert _flag(proc.argv, "--metrics-bind-address") == "0"
    assert int(_flag(proc.argv, "--webhook-server-port")) > 0
    assert proc.env == {"KUBECONFIG": "/k/config", "MY_POD_NAMESPACE": "burst-reference-1"}


def test_client_limit_follows_the_operator_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = _reference(tmp_path, monkeypatch, SystemOptions(operator_qps=50.0, operator_burst=80))
    assert _flag(proc.argv, "--kube-api-qps") == "50"
    assert _flag(proc.argv, "--kube-api-burst") == "80"


def test_reference_args_come_last_so_they_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = _reference(
        tmp_path, monkeypatch, SystemOptions(reference_args=("--controller-threads", "8"))
    )
    assert proc.argv[-2:] == ["--controller-threads", "8"]


def test_reference_is_selectable_but_not_a_default() -> None:
    assert "reference" in SYSTEMS
    assert "reference" not in DEFAULT_SYSTEMS


def _built() -> bool:
    try:
        reference_binary()
    except HarnessError:
        return False
    return True


@pytest.mark.e2e
@pytest.mark.skipif(not _built(), reason="run tools/conformance/build_reference_operator.sh")
def test_quick_burst_of_the_reference_succeeds(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "kubetrain.cli", "bench", "burst", "--quick", "--out", str(out)]
    done = subprocess.run(
        [*argv, "--jobs", "3", "--systems", "reference"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = orjson.loads((out / "result.json").read_bytes())
    figures = data["scenarios"]["burst"]["systems"]["reference"]["figures"]
    assert figures["jobs_succeeded"] == 3
    # Its pods and services, created by the Go binary (the harness creates neither). The API
    # server counts requests whatever their answer, and the reference sometimes repeats a create
    # that its cache did not show yet (answered 409): at least one each, a few repeats allowed.
    writes = data["scenarios"]["burst"]["systems"]["reference"]["operator_writes"]
    assert 3 * 4 <= writes.get("POST pods", 0) <= 3 * 4 + 3, writes
    assert 3 * 4 <= writes.get("POST services", 0) <= 3 * 4 + 3, writes
