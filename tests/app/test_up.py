"""``kubetrain up`` as a user and CI run it: a subprocess that starts the embedded cluster and the
operator, submits the examples, shows progress and a summary, and exits 0 on Ctrl-C."""

from __future__ import annotations

import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from kubetrain.example_jobs import load_examples, packaged_examples_dir
from kubetrain.reconcilers.api.kinds import ALL_KINDS

BIN = Path(sys.executable).parent
KUBETRAIN = shutil.which("kubetrain", path=str(BIN)) or ""
KUBECTL = shutil.which("kubectl", path=str(BIN)) or ""
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed")


def up_command(kubeconfig: Path, *extra: str) -> list[str]:
    return [KUBETRAIN, "up", "--port", "0", "--kubeconfig", str(kubeconfig), *extra]


def test_exit_when_done_every_example_succeeds(tmp_path: Path) -> None:
    result = subprocess.run(
        up_command(tmp_path / "kubeconfig", "--exit-when-done"),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    out = result.stdout
    summary = out[out.index("Summary:") :]
    assert "7/7 jobs succeeded" in summary  # the six v1 kinds and a TrainJob (Trainer v2)
    for kind in [*(k.kind for k in ALL_KINDS), "TrainJob"]:
        assert kind in summary, f"{kind} missing from the summary:\n{summary}"
    for job in load_examples():
        line = next(ln for ln in summary.splitlines() if f" {job.name} " in ln)
        assert "Succeeded" in line, line
    # Not a terminal: progress is plain lines, one of which reports each job's success.
    for job in load_examples():
        assert f"{job.kind} {job.name}: Succeeded" in out[: out.index("Summary:")]


def test_a_failing_job_makes_exit_when_done_return_1(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    examples.mkdir()
    good = yaml.safe_load((packaged_examples_dir() / "pytorchjob.yaml").read_text())
    (examples / "good.yaml").write_text(yaml.safe_dump(good))
    bad = yaml.safe_load((packaged_examples_dir() / "jaxjob.yaml").read_text())
    bad["metadata"]["name"] = "jax-fails"
    worker = bad["spec"]["jaxReplicaSpecs"]["Worker"]
    worker["restartPolicy"] = "Never"
    worker["template"]["metadata"]["annotations"] = {
        "sim.kubetrain.dev/run-seconds": "0.5",
        "sim.kubetrain.dev/exit-code": "3",
    }
    (examples / "bad.yaml").write_text(yaml.safe_dump(bad))

    result = subprocess.run(
        up_command(tmp_path / "kubeconfig", "--exit-when-done", "--examples", str(examples)),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    summary = result.stdout[result.stdout.index("Summary:") :]
    assert "1/2 jobs succeeded" in summary
    assert "Failed" in next(ln for ln in summary.splitlines() if " jax-fails " in ln)
    assert "Succeeded" in next(ln for ln in summary.splitlines() if " pytorch-simple " in ln)


def test_unreadable_examples_dir_is_one_error_line(tmp_path: Path) -> None:
    result = subprocess.run(
        up_command(tmp_path / "kubeconfig", "--examples", str(tmp_path / "missing")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "--examples" in result.stdout and "not a directory" in result.stdout, result.stdout
    assert "Traceback" not in result.stderr


class LineReader:
    """Reads a pipe on a thread so the test can wait for a line with a deadline."""

    def __init__(self, stream: object) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not printed; got:\n{''.join(self.seen)}")

    def rest(self) -> str:
        self._thread.join(timeout=30)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return "".join(self.seen)


def test_ctrl_c_while_serving_exits_0_without_traceback(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        up_command(kubeconfig), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out = LineReader(proc.stdout)
        out.wait_for("kubetrain is serving", timeout=90)
        out.wait_for("  webhooks ", timeout=10)  # printed after the metrics line
        printed = "".join(out.seen)
        assert f"kubectl --kubeconfig {kubeconfig} get pytorchjobs" in printed
        found = re.search(r"^  metrics +(http://127\.0\.0\.1:\d+/metrics)$", printed, re.M)
        assert found, printed
        with urllib.request.urlopen(found.group(1), timeout=10) as response:
            metrics = response.read().decode()
        pattern = r'^training_operator_jobs_successful_total\{[^}]*framework="pytorch"[^}]*\} 1\.0$'
        assert re.search(pattern, metrics, re.M), metrics
        if KUBECTL:  # the printed command works while serving
            got = subprocess.run(
                [KUBECTL, "--kubeconfig", str(kubeconfig), "get", "pytorchjobs"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert got.returncode == 0, got.stderr
            assert "pytorch-simple" in got.stdout and "Succeeded" in got.stdout, got.stdout
            # the webhooks up installed refuse a bad job with the problem, at kubectl apply
            bad = yaml.safe_load((packaged_examples_dir() / "tfjob.yaml").read_text())
            bad["metadata"]["name"] = "tf-bad"
            worker = bad["spec"]["tfReplicaSpecs"]["Worker"]
            worker["template"]["spec"]["containers"][0].pop("image")
            refused = subprocess.run(
                [KUBECTL, "--kubeconfig", str(kubeconfig), "apply", "-f", "-"],
                input=yaml.safe_dump(bad),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert refused.returncode != 0
            assert "containers[0].image: Required value" in refused.stderr, refused.stderr
        assert re.search(r"^  webhooks +https://127\.0\.0\.1:\d+ ", printed, re.M), printed
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
        rest = out.rest()
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert rc == 0, err
    assert "Traceback" not in err, err
    assert "stopping" in rest


def test_top_level_examples_are_the_packaged_ones() -> None:
    """One copy: ``examples/`` resolves to the package-data folder ``kubetrain up`` reads, and it
    holds one job of every kind."""
    assert (ROOT / "examples").resolve() == packaged_examples_dir().resolve()
    assert sorted(job.kind for job in load_examples()) == sorted(
        [*(k.kind for k in ALL_KINDS), "TrainJob"]
    )
