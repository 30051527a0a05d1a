"""Process management for the benchmark: the API server and each measured system run as their own
processes, side by side, so the OS can tell their costs apart.

``ManagedProcess`` starts a command with its output in a log file, reads its CPU and peak RSS from
``/proc`` and stops it (SIGTERM, then SIGKILL). ``ClusterProcess`` is ``kubetrain cluster`` (API
server + simulated nodes) started on a free port, ready once its kubeconfig is written and it
answers. Callers own what they start: ``stop()`` in a ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
import yaml

from . import procstat

__all__ = ["ClusterProcess", "HarnessError", "ManagedProcess", "server_url"]


class HarnessError(RuntimeError):
    """A process of the benchmark did not start or behave; the message says which and why."""


class ManagedProcess:
    """One child process with stdout+stderr appended to ``log_path``.

    ``name`` is for messages. ``env`` is added to the harness's environment.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env or {})
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise HarnessError(f"{self.name}: not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # noqa: ASYNC230 - once, before the child runs
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,  # a Ctrl-C of the harness does not hit it first
            )

    def cpu_seconds(self) -> float | None:
        return procstat.cpu_seconds(self.pid)

    def peak_rss_bytes(self) -> int | None:
        return procstat.peak_rss_bytes(self.pid)

    def rss_bytes(self) -> int | None:
        return procstat.rss_bytes(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise ``HarnessError`` with the log tail when the process has exited."""
        if self._proc is not None and self._proc.returncode is not None:
            raise HarnessError(
                f"{self.name} exited with status {self._proc.returncode}; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            )

    def kill(self) -> None:
        """SIGKILL now (the chaos scenario); ``stop`` still reaps it."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGKILL)

    async def stop(self, *, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; the exit status."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                self.kill()
                await proc.wait()
        return proc.returncode


def server_url(kubeconfig: str) -> str:
    """The server URL of the current context of ``kubeconfig``."""
    with open(kubeconfig, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    current = config.get("current-context")
    contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
    clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
    try:
        url: str = clusters[contexts[current]["cluster"]]["server"]
    except KeyError as exc:
        raise HarnessError(
            f"{kubeconfig}: no server for current-context {current!r}; pass a kubeconfig "
            "whose current-context names a cluster with a server"
        ) from exc
    return url.rstrip("/")


#: The most cpu (milli-cores) and memory (MiB) one benchmark pod requests, as the scheduler
#: counts it: a PyTorch worker's init container asks for 50m and 10Mi (limits 100m and 20Mi),
#: in kubetrain as in the reference. The scenarios measure operators, not a full cluster, so
#: every pod they create must fit at once (``contention`` is the one that fills the cluster):
#: sized from the pod count alone, 20,000 jobs' workers would fit 2,560 at a time and the
#: simulated scheduler's waves would be what a run measured.
BENCH_POD_CPU_MILLI = 100
BENCH_POD_MEMORY_MIB = 64


class ClusterProcess(ManagedProcess):
    """``kubetrain cluster`` on a free port with ``nodes`` simulated nodes, each with room for
    ``node_pods`` pods of up to ``BENCH_POD_CPU_MILLI`` cpu and ``BENCH_POD_MEMORY_MIB`` memory
    (and never less than the simulator's default 32 cpu and 128Gi); with ``kube_controllers``
    its Job controller (and JobSet's) run too."""

    def __init__(
        self, *, workdir: Path, nodes: int, node_pods: int, kube_controllers: bool = False
    ) -> None:
        self.kubeconfig = str(workdir / "cluster.kubeconfig")
        node_cpu = max(32, math.ceil(node_pods * BENCH_POD_CPU_MILLI / 1000))
        node_memory_gib = max(128, math.ceil(node_pods * BENCH_POD_MEMORY_MIB / 1024))
        super().__init__(
            "cluster",
            [
                # plain http: the floor every system is measured on; TLS would add its cost
                # to each alike (a real cluster, --kubeconfig, is measured with its TLS)
                sys.executable, "-m", "kubetrain.cli", "cluster", "--insecure",
                "--port", "0",
                "--kubeconfig", self.kubeconfig,
                "--nodes", str(nodes),
                "--node-pods", str(node_pods),
                "--node-cpu", str(node_cpu),
                "--node-memory", f"{node_memory_gib}Gi",
                # the v1 scenarios create no batch/v1 Job: no Job controller watching every pod
                # (MPIJob v2beta1's launcher is one: --job-kind mpijob-v2beta1 runs it)
                "--kube-controllers" if kube_controllers else "--no-kube-controllers",
            ],
            log_path=workdir / "cluster.log",
        )  # fmt: skip
        self.url = ""

    async def start(self, *, timeout: float = 60.0) -> None:
        """Start and wait until the API server answers ``/version`` through the kubeconfig."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.kubeconfig)
        await super().start()
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                self.check_alive()
                if os.path.exists(self.kubeconfig):  # noqa: ASYNC240 - a stat while polling
                    self.url = server_url(self.kubeconfig)
                    with contextlib.suppress(aiohttp.ClientError, OSError):
                        async with session.get(self.url + "/version") as resp:
                            if resp.status == 200:
                                return
                await asyncio.sleep(0.1)
        raise HarnessError(f"cluster did not serve within {timeout} s:\n{self.log_tail()}")
