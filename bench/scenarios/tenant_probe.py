"""The tenant probe: another client of the same API server, doing steady reads and writes in a
namespace of its own and timing every request, while a measured system works.

Why: a system that floods the API server looks fast in its own figures and makes everybody else
slow. BENCHMARKS.md asks for a system's fairness to other tenants beside its speed, and issue 14's
target is that the probe's p99 latency during a burst stays within 2x of its idle figure. On a
real kube-apiserver, API Priority and Fairness shares the server between flows (run the probe as
a service account of its own, ``--probe-kubeconfig``, so it is a flow of its own and not an exempt
administrator); the embedded cluster has no APF, so there only the measured system's own
client-side limits keep the probe's latency down.

A round is three requests, one after the other, on one ConfigMap (``PROBE_CONFIGMAP``) in
``PROBE_NAMESPACE``: GET it, merge-PATCH one of its keys (a write that never conflicts, so rounds
may overlap), LIST the namespace's ConfigMaps (a handful: a small read of a collection). Rounds
start every ``interval`` seconds (default 50 ms, 60 requests a second) on a fixed schedule whether
or not the previous one has finished: an open loop, so a slow server does not get fewer samples,
which would hide the very answers that are slow ("coordinated omission"). At most
``max_outstanding`` rounds run at once; a round due beyond that is skipped and counted. The
probe's client has no client-side limit and no retries: each HTTP request is one sample, and a
429 (APF refusing the probe) is counted as an error, not hidden in a retry.

Phases (``measure_system``): ``idle``, the system started and warm with nothing to do, just
before the workload; ``creating``, from the first job create until the harness's last create has
returned; ``reconciling``, from then until every job's pods exist. "During" is the last two
together. ``reconciling`` is reported on its own because the harness creates the jobs as the
cluster's administrator, as fast as the server takes them: on a real server that flow is exempt
from APF, and it slows the probe whatever system runs (500 creates alone took a real
kube-apiserver on 2 cores from about 4 ms to 500 ms of probe p99). The reconciling window is the
one where what loads the server is the system's work (and the simulated nodes running its pods).

The probe runs as its own process (``main`` of this module, started by ``TenantProbe``): the
harness's event loop is busy during a burst (creating jobs, informers on thousands of pods), and
latency measured there would include the harness's own lag. ``TenantProbe`` drives it over stdin
and stdout, one line each way: ``phase NAME`` starts rounds if they are stopped and tags those
started from now on with ``NAME`` (answer: ``{"phase": NAME}``); ``pause`` stops starting rounds
and answers, once the outstanding ones have finished, with every phase marked since the last pause
(``{"phases": [PhaseSamples as JSON, ...]}``; a round counts in the phase it started in); ``quit``
(or end of input) exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.informers.resource import CONFIGMAPS, NAMESPACES
from kubetrain.informers.transport import ApiStatusError

from ..apimetrics import RequestCounts
from ..harness import HarnessError
from ..stats import percentile

__all__ = [
    "CREATING",
    "FIGURES",
    "IDLE",
    "PROBE_CONFIGMAP",
    "PROBE_NAMESPACE",
    "RECONCILING",
    "REQUESTS",
    "PhaseSamples",
    "ProbeOptions",
    "Prober",
    "TenantProbe",
    "ensure_probe_objects",
    "probe_figures",
    "probe_section",
    "without_probe",
]

PROBE_NAMESPACE = "tenant-probe"
"""The probe's namespace; ``tools/conformance/real_cluster.py --service-accounts`` gives the probe's
ServiceAccount rights on ConfigMaps here and nowhere else."""
PROBE_CONFIGMAP = "probe"
REQUESTS = ("GET configmaps", "PATCH configmaps", "LIST configmaps")
"""One round, in order, named as the API server's ``apiserver_request_total`` counts them."""
FIGURES = (
    "probe_idle_p50_ms",
    "probe_idle_p99_ms",
    "probe_during_p50_ms",
    "probe_during_p99_ms",
    "probe_p99_ratio",
    "probe_reconciling_p99_ms",
    "probe_reconciling_p99_ratio",
)
"""What the probe adds to a system's figures: latency of all its requests, in milliseconds, with
the system idle and during its workload (``creating`` and ``reconciling`` together), p99 during /
p99 idle, and the same for the ``reconciling`` phase alone."""
IDLE, CREATING, RECONCILING = "idle", "creating", "reconciling"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeOptions:
    """The probe's pace (``BenchOptions.probe``; None there: no probe)."""

    interval_seconds: float = 0.05
    """A round starts this often (three requests)."""
    idle_seconds: float = 5.0
    """How long the idle phase runs before each system's workload (100 rounds at 50 ms)."""
    max_outstanding: int = 20
    """Rounds in flight at once; one due beyond this is skipped (and counted)."""


@dataclass(slots=True)
class PhaseSamples:
    """What the probe saw in one phase. ``latencies``: seconds of each successful request, by
    request (``REQUESTS``); ``errors``: requests that failed, by request and HTTP status
    (``"GET configmaps 429"``; ``error`` when no answer came)."""

    phase: str
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    rounds: int = 0
    skipped: int = 0

    def all_latencies(self) -> list[float]:
        return [v for values in self.latencies.values() for v in values]

    def requests(self) -> RequestCounts:
        """Requests the API server answered, by ``"VERB resource"`` (``apimetrics`` keys)."""
        out: RequestCounts = {k: len(v) for k, v in self.latencies.items() if v}
        for key, n in self.errors.items():
            request, _, code = key.rpartition(" ")
            if code.isdigit():
                out[request] = out.get(request, 0) + n
        return out

    @classmethod
    def merged(cls, phase: str, parts: list[PhaseSamples]) -> PhaseSamples:
        """One phase made of ``parts`` (lengths, samples, errors and rounds added up)."""
        out = cls(phase=phase)
        for part in parts:
            out.seconds += part.seconds
            out.rounds += part.rounds
            out.skipped += part.skipped
            for key, values in part.latencies.items():
                out.latencies.setdefault(key, []).extend(values)
            for key, n in part.errors.items():
                out.errors[key] = out.errors.get(key, 0) + n
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "seconds": self.seconds,
            "latencies": self.latencies,
            "errors": self.errors,
            "rounds": self.rounds,
            "skipped": self.skipped,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhaseSamples:
        return cls(
            phase=str(data["phase"]),
            seconds=float(data["seconds"]),
            latencies={k: [float(x) for x in v] for k, v in data["latencies"].items()},
            errors={k: int(v) for k, v in data["errors"].items()},
            rounds=int(data["rounds"]),
            skipped=int(data["skipped"]),
        )


# -- figures (pure) ----------------------------------------------------------------------------


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000.0


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def probe_figures(phases: Mapping[str, PhaseSamples]) -> dict[str, Any]:
    """``FIGURES`` of one system from its phases by name (``IDLE``, ``CREATING``,
    ``RECONCILING``); None where a phase is missing or has no sample."""
    empty = PhaseSamples(phase="")
    idle = phases.get(IDLE, empty).all_latencies()
    reconciling = phases.get(RECONCILING, empty).all_latencies()
    during = phases.get(CREATING, empty).all_latencies() + reconciling
    idle_p99 = percentile(idle, 99)
    during_p99 = percentile(during, 99)
    reconciling_p99 = percentile(reconciling, 99)
    return {
        "probe_idle_p50_ms": _ms(percentile(idle, 50)),
        "probe_idle_p99_ms": _ms(idle_p99),
        "probe_during_p50_ms": _ms(percentile(during, 50)),
        "probe_during_p99_ms": _ms(during_p99),
        "probe_p99_ratio": _ratio(during_p99, idle_p99),
        "probe_reconciling_p99_ms": _ms(reconciling_p99),
        "probe_reconciling_p99_ratio": _ratio(reconciling_p99, idle_p99),
    }


def probe_section(phases: Mapping[str, PhaseSamples]) -> dict[str, Any]:
    """The probe's part of a system's result.json entry: per phase, its length, rounds, skipped
    rounds, errors, and per request the count and p50/p99 in ms (the figures pool them)."""
    out: dict[str, Any] = {}
    for samples in phases.values():
        out[samples.phase] = {
            "seconds": samples.seconds,
            "rounds": samples.rounds,
            "skipped": samples.skipped,
            "errors": samples.errors,
            "requests": {
                name: {
                    "count": len(values),
                    "p50_ms": _ms(percentile(values, 50)),
                    "p99_ms": _ms(percentile(values, 99)),
                }
                for name, values in samples.latencies.items()
            },
        }
    return out


def without_probe(counts: Mapping[str, int], phases: list[PhaseSamples]) -> RequestCounts:
    """``counts`` (an API server delta) less the probe's requests of the same window."""
    mine = PhaseSamples.merged("", phases).requests()
    out = {k: v - mine.get(k, 0) for k, v in counts.items()}
    return {k: v for k, v in out.items() if v > 0}


# -- the probe process -------------------------------------------------------------------------


class Prober:
    """The rounds, in the probe process. ``mark(phase)`` starts them when they are stopped and
    tags those started from now on with ``phase``; ``end()`` stops starting them and returns
    every phase marked since the last ``end`` once their outstanding rounds have finished.
    Invariant: rounds run only while ``phases`` is not empty; the last one gets new rounds. A
    phase that closes before its first tick gets one round as it closes (a burst of a few jobs can
    have every pod before the last create returns): every phase has a sample."""

    def __init__(
        self, client: ApiClient, namespace: str, configmap: str, options: ProbeOptions
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.configmap = configmap
        self.options = options
        self.phases: list[PhaseSamples] = []
        self._marked = 0.0
        self._rounds: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._counter = 0

    def mark(self, phase: str) -> None:
        now = time.monotonic()
        if self.phases:
            self.phases[-1].seconds = now - self._marked
            self._at_least_one_round(self.phases[-1])
        self.phases.append(PhaseSamples(phase=phase))
        self._marked = now
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())

    async def end(self) -> list[PhaseSamples]:
        if self._ticker is None:
            raise RuntimeError("pause without a phase")
        self._ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticker
        self._ticker = None
        self.phases[-1].seconds = time.monotonic() - self._marked
        self._at_least_one_round(self.phases[-1])
        if self._rounds:
            await asyncio.wait(set(self._rounds))
        phases, self.phases = self.phases, []
        return phases

    async def _tick(self) -> None:
        due = time.monotonic()
        while True:
            samples = self.phases[-1]
            if len(self._rounds) < self.options.max_outstanding:
                self._start_round(samples)
            else:
                samples.skipped += 1
            due += self.options.interval_seconds
            # a late tick (a stalled loop) starts one round, not the ones it missed
            due = max(due, time.monotonic())
            await asyncio.sleep(due - time.monotonic())

    def _start_round(self, samples: PhaseSamples) -> None:
        samples.rounds += 1
        task = asyncio.create_task(self._round(samples))
        self._rounds.add(task)
        task.add_done_callback(self._rounds.discard)

    def _at_least_one_round(self, samples: PhaseSamples) -> None:
        if samples.rounds == 0 and samples.skipped == 0:
            self._start_round(samples)

    async def _round(self, samples: PhaseSamples) -> None:
        self._counter += 1
        patch = {"data": {"round": str(self._counter)}}
        ns, name = self.namespace, self.configmap
        await self._timed(samples, REQUESTS[0], self.client.get(CONFIGMAPS, ns, name))
        await self._timed(samples, REQUESTS[1], self.client.patch(CONFIGMAPS, ns, name, patch))
        await self._timed(samples, REQUESTS[2], self.client.list(CONFIGMAPS, ns))

    @staticmethod
    async def _timed(samples: PhaseSamples, request: str, call: Any) -> None:
        start = time.perf_counter()
        try:
            await call
        except ApiStatusError as exc:
            key = f"{request} {exc.code}"
            samples.errors[key] = samples.errors.get(key, 0) + 1
            return
        except (ConnectionError, TimeoutError):
            key = f"{request} error"
            samples.errors[key] = samples.errors.get(key, 0) + 1
            return
        samples.latencies.setdefault(request, []).append(time.perf_counter() - start)


def _emit(doc: Mapping[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
    sys.stdout.buffer.flush()


async def _serve(args: argparse.Namespace) -> int:
    config = await load_kubeconfig(args.kubeconfig)
    options = ClientOptions(
        qps=0,
        adaptive=None,
        max_retries=0,
        registry=CollectorRegistry(),
        user_agent="kubetrain-bench-tenant-probe",
    )
    probe_options = ProbeOptions(
        interval_seconds=args.interval, max_outstanding=args.max_outstanding
    )
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    async with ApiClient(config, options) as client:
        await client.get(CONFIGMAPS, args.namespace, args.configmap)  # rights, and a connection
        prober = Prober(client, args.namespace, args.configmap, probe_options)
        _emit({"ready": True})
        while line := (await stdin.readline()).decode().strip():
            command, _, argument = line.partition(" ")
            if command == "phase" and argument:
                prober.mark(argument)
                _emit({"phase": argument})
            elif line == "pause":
                _emit({"phases": [p.to_json() for p in await prober.end()]})
            elif line == "quit":
                break
            else:
                print(f"tenant probe: unknown command {line!r}", file=sys.stderr, flush=True)
                return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m kubetrain.bench.scenarios.tenant_probe",
        description="The benchmark's tenant probe (driven over stdin by the harness).",
    )
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--namespace", default=PROBE_NAMESPACE)
    p.add_argument("--configmap", default=PROBE_CONFIGMAP)
    defaults = ProbeOptions()
    p.add_argument("--interval", type=float, default=defaults.interval_seconds)
    p.add_argument("--max-outstanding", type=int, default=defaults.max_outstanding)
    return asyncio.run(_serve(p.parse_args(argv)))


# -- the harness's side ------------------------------------------------------------------------


async def ensure_probe_objects(client: ApiClient, namespace: str = PROBE_NAMESPACE) -> None:
    """The probe's namespace and ConfigMap, created by the harness (an administrator) when
    absent; the probe itself only reads, patches and lists."""
    await client.create_if_absent(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    )
    await client.create_if_absent(
        CONFIGMAPS,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": PROBE_CONFIGMAP, "namespace": namespace},
            "data": {"round": "0"},
        },
    )


_ENTRY = "import sys; from kubetrain.bench.scenarios.tenant_probe import main; sys.exit(main())"


class TenantProbe:
    """The probe process, from the harness. ``start``, then ``mark(phase)`` once or more and
    ``end()`` (those phases' samples), again as needed, then ``stop`` (in a ``finally``)."""

    def __init__(
        self,
        *,
        kubeconfig: str,
        log_path: Path,
        options: ProbeOptions,
        namespace: str = PROBE_NAMESPACE,
        answer_timeout: float = 60.0,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.options = options
        self.namespace = namespace
        self.answer_timeout = answer_timeout
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the process and wait until it has read the ConfigMap once."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # noqa: ASYNC230 - once, before the child runs
            self._proc = await asyncio.create_subprocess_exec(
                # -c, not -m: the scenarios package imports this module before -m would run it
                sys.executable, "-c", _ENTRY,
                "--kubeconfig", self.kubeconfig,
                "--namespace", self.namespace,
                "--interval", str(self.options.interval_seconds),
                "--max-outstanding", str(self.options.max_outstanding),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                limit=2**26,  # one line holds a phase's samples
            )  # fmt: skip
        await self._answer()

    async def mark(self, phase: str) -> None:
        """Start rounds if they are stopped; those started from now on count in ``phase``."""
        await self._send(f"phase {phase}")
        await self._answer()

    async def end(self) -> dict[str, PhaseSamples]:
        """Stop starting rounds; the phases marked since the last ``end``, by name, once their
        last rounds have finished."""
        await self._send("pause")
        phases = (PhaseSamples.from_json(p) for p in (await self._answer())["phases"])
        return {p.phase: p for p in phases}

    async def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.returncode is None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                assert proc.stdin is not None
                proc.stdin.write(b"quit\n")
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def _send(self, command: str) -> None:
        proc = self._running()
        assert proc.stdin is not None
        proc.stdin.write(command.encode() + b"\n")
        await proc.stdin.drain()

    async def _answer(self) -> dict[str, Any]:
        proc = self._running()
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), self.answer_timeout)
        except TimeoutError:
            line = b""
        if not line:
            raise HarnessError(
                f"tenant probe gave no answer (exit status {proc.returncode}); "
                f"last lines of {self.log_path}:\n{self._log_tail()}"
            )
        answer: dict[str, Any] = orjson.loads(line)
        return answer

    def _running(self) -> asyncio.subprocess.Process:
        if self._proc is None:
            raise HarnessError("tenant probe: not started")
        return self._proc

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


if __name__ == "__main__":
    raise SystemExit(main())
