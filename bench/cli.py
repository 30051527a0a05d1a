"""``kubetrain bench SCENARIO``: flags, the run (cluster process, CRDs, each scenario) and the
report. ``kubetrain/cli.py`` only declares the subcommand and hands over here."""

from __future__ import annotations

import argparse
import asyncio
import math
import shlex
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError

from .harness import ClusterProcess, HarnessError, server_url
from .jobs import JOB_KINDS, PYTORCHJOB, BenchJobKind, JobShape
from .report import machine_description, versions, write_report
from .scenarios import SCENARIOS
from .scenarios.context import BenchContext, BenchOptions
from .scenarios.tenant_probe import PROBE_NAMESPACE, ProbeOptions
from .systems import DEFAULT_SYSTEMS, SYSTEMS, SystemOptions

__all__ = ["add_bench_flags", "options_from_args", "run_bench"]

CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
)
QUICK_JOBS = 20
DEFAULT_JOBS = {
    "backlog": (50_000, 500),
    "ttl": (5_000, QUICK_JOBS),
    "failover": (200, QUICK_JOBS),
    "contention": (60, 12),
}
"""Scenario -> (default --jobs, --quick --jobs) where it differs from (500, QUICK_JOBS)."""
LARGE_JOBS = {"burst": 5_000, "backlog": 200_000, "ttl": 20_000}
"""``--large``: ten times the default sizes (issue 14). The large backlog's finished jobs have had
their pods cleaned (``--no-backlog-pods``), as large clusters run with cleanPodPolicy All; the
default backlog (50,000 jobs with their 200,000 pods) is the other half of that target."""


def add_bench_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", choices=sorted(SCENARIOS), help="the load scenario")
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="jobs (default: 500, --quick: 20; ttl: 5,000; failover: 200; backlog: finished "
        "jobs, 50,000, --quick: 500; contention: 60 on room for 64 pods, --quick: 12 on 16)",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a small run (about a minute) for CI")
    size.add_argument(
        "--large",
        action="store_true",
        help="ten times the default: burst 5,000 jobs (20,000 pods), backlog 200,000 finished "
        "jobs whose pods were cleaned, ttl 20,000 jobs (tens of minutes on 2 cores)",
    )
    p.add_argument("--out", default=None, metavar="DIR", help="report directory")
    p.add_argument(
        "--kubeconfig",
        default=None,
        help="run against this cluster (default: start `kubetrain cluster` as a process); the "
        "harness always uses it",
    )
    p.add_argument(
        "--operator-kubeconfig",
        default=None,
        metavar="FILE",
        help="what the measured systems run with, all alike (default: --kubeconfig); e.g. a "
        "service account's from tools/conformance/real_cluster.py --service-accounts",
    )
    p.add_argument(
        "--probe-kubeconfig",
        default=None,
        metavar="FILE",
        help="what the burst's tenant probe runs with (default: --kubeconfig)",
    )
    p.add_argument(
        "--no-probe",
        action="store_true",
        help="burst: no tenant probe (a client timing steady reads and writes in namespace "
        f"{PROBE_NAMESPACE!r} with the system idle and during the burst)",
    )
    p.add_argument(
        "--systems",
        default=None,
        help="comma-separated systems to compare, from "
        + ", ".join(SYSTEMS)
        + " (default: "
        + ",".join(DEFAULT_SYSTEMS)
        + "; soak, failover, contention: kubetrain; 'reference' needs "
        "tools/conformance/build_reference_operator.sh)",
    )
    p.add_argument(
        "--job-kind",
        choices=sorted(JOB_KINDS),
        default=PYTORCHJOB.name,
        help="burst: what the jobs are: pytorchjob (1 Master + 3 Workers), mpijob-v2beta1 "
        "(mpi-operator's kubeflow.org/v2beta1 MPIJob, 1 Launcher + 3 Workers, created through "
        "kubetrain's conversion webhook; kubetrain only, on a cluster running its Job "
        "controller for the launcher Job) or trainjob (burst and backlog: Kubeflow Trainer "
        "v2's TrainJob of 4 nodes on the built-in torch-distributed runtime, one JobSet each; "
        "kubetrain only, with its TrainJob controller, on a cluster running its JobSet and "
        "Job controllers; default: %(default)s)",
    )
    p.add_argument(
        "--run-seconds",
        type=float,
        default=None,
        help="simulated pod run time (default: 1; contention: 4, so that waiting is seen)",
    )
    p.add_argument("--timeout", type=float, default=None, help="per-system wait, seconds")
    p.add_argument("--operator-qps", type=float, default=0.0, help="kubetrain --kube-api-qps "
                   "(<= 0: no fixed cap, the operator's default adaptive limit; default: "
                   "%(default)s)")  # fmt: skip
    p.add_argument("--operator-burst", type=int, default=0, help="kubetrain --kube-api-burst")
    p.add_argument(
        "--operator-args",
        default="",
        help="more `kubetrain operator` flags, one shell-quoted string "
        "(e.g. '--controller-threads 4'; default: none, the operator's defaults)",
    )
    p.add_argument(
        "--reference-args",
        default="",
        help="more reference-operator flags, one shell-quoted string "
        "(e.g. '--controller-threads 128'; default: none, the reference's defaults)",
    )
    p.add_argument("--ttl-seconds", type=int, default=3, help="ttl: ttlSecondsAfterFinished")
    p.add_argument(
        "--new-jobs",
        type=int,
        default=None,
        help="backlog: jobs created while the system syncs (default: 50; --quick: 5)",
    )
    p.add_argument(
        "--arrival-seconds",
        type=float,
        default=None,
        help="backlog: the new jobs arrive evenly over this many seconds, from 2 s after the "
        "system started (default: 5; --quick: 1)",
    )
    p.add_argument(
        "--backlog-pods",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="backlog: the finished jobs keep their Succeeded pods (default; --large: "
        "--no-backlog-pods, the pods cleaned as by cleanPodPolicy All)",
    )
    p.add_argument("--seed", type=int, default=1, help="chaos: seed of kills and faults")
    p.add_argument(
        "--kills",
        type=int,
        default=None,
        help="chaos: operator SIGKILLs during the burst (default: 3; --quick: 2)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="churn, soak: job arrivals per second (default: churn 5, soak 2; --quick: 2)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="churn, soak: seconds of arrivals (default: churn 120, soak 1800; --quick: churn 15, "
        "soak 60)",
    )
    p.add_argument(
        "--restart-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="soak: SIGTERM and restart the operator this often (default: 300; --quick: 20; "
        "0: never)",
    )


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    job_kind = getattr(args, "job_kind", None) or PYTORCHJOB.name
    kind = JOB_KINDS[job_kind]
    if kind.scenarios is not None and args.scenario not in kind.scenarios:
        only = " and ".join(kind.scenarios)
        has = "scenario has" if len(kind.scenarios) == 1 else "scenarios have"
        raise ValueError(f"--job-kind {job_kind}: only the {only} {has} it")
    names = args.systems
    if names is None:
        single = ("soak", "failover", "contention")  # scenarios only kubetrain can run
        if kind is not PYTORCHJOB:
            names = ",".join(kind.systems)
        else:
            names = "kubetrain" if args.scenario in single else ",".join(DEFAULT_SYSTEMS)
    systems = tuple(s.strip() for s in names.split(",") if s.strip())
    for s in systems:
        if s not in SYSTEMS:
            raise ValueError(f"--systems: unknown system {s!r}; choose from {', '.join(SYSTEMS)}")
    others = [s for s in systems if s not in kind.systems]
    if others:
        raise ValueError(
            f"--job-kind {job_kind}: only {', '.join(kind.systems)} can run it, not "
            f"{', '.join(others)} (pass --systems {','.join(kind.systems)})"
        )
    full, quick = DEFAULT_JOBS.get(args.scenario, (500, QUICK_JOBS))
    large = bool(getattr(args, "large", False))
    if large and args.scenario not in LARGE_JOBS:
        raise ValueError(
            f"--large: {args.scenario} has no large preset (only {', '.join(sorted(LARGE_JOBS))}); "
            "pass --jobs"
        )
    preset = LARGE_JOBS[args.scenario] if large else (quick if args.quick else full)
    jobs = args.jobs if args.jobs is not None else preset
    backlog_pods = args.backlog_pods if args.backlog_pods is not None else not large
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    # 1 s a job, capped: a system that never finishes one job must not hold the run for hours.
    timeout = args.timeout if args.timeout is not None else max(120.0, min(jobs * 1.0, 900.0))
    if args.scenario == "backlog" and args.timeout is None:
        timeout = max(120.0, jobs * 0.02)
    soak = args.scenario == "soak"
    churn_rate = args.rate if args.rate is not None else (2.0 if args.quick or soak else 5.0)
    churn_seconds = args.duration if args.duration is not None else (
        (60.0 if soak else 15.0) if args.quick else (1800.0 if soak else 120.0)
    )  # fmt: skip
    restart_every = getattr(args, "restart_every", None)
    if restart_every is None:
        restart_every = 20.0 if args.quick else 300.0
    if soak and args.timeout is None:
        timeout = 60.0 if args.quick else 120.0  # after the arrivals: the last jobs' end and TTL
    if churn_rate <= 0 or churn_seconds <= 0:
        raise ValueError("--rate and --duration must be > 0")
    if args.kubeconfig is None and (args.operator_kubeconfig or args.probe_kubeconfig):
        raise ValueError("--operator-kubeconfig and --probe-kubeconfig need --kubeconfig")
    return BenchOptions(
        jobs=jobs,
        shape=JobShape(
            run_seconds=args.run_seconds
            if args.run_seconds is not None
            else (4.0 if args.scenario == "contention" else 1.0)
        ),
        systems=systems,
        timeout_seconds=timeout,
        settle_seconds=1.0 if args.quick else 2.0,
        ttl_seconds=args.ttl_seconds,
        ttl_spread_seconds=3.0 if args.quick else 5.0,
        new_jobs=args.new_jobs if args.new_jobs is not None else (5 if args.quick else 50),
        arrival_seconds=args.arrival_seconds
        if args.arrival_seconds is not None
        else (1.0 if args.quick else 5.0),
        backlog_pods=backlog_pods,
        seed=args.seed,
        chaos_kills=args.kills if args.kills is not None else (2 if args.quick else 3),
        churn_rate=churn_rate,
        churn_seconds=churn_seconds,
        sample_interval_seconds=2.0 if soak and not args.quick else 1.0,
        soak_restart_seconds=restart_every,
        soak_warmup_seconds=5.0 if args.quick else 30.0,
        contention_capacity_pods=16 if args.quick else 64,
        contention_variants=2 if args.quick else 3,
        probe=None if args.no_probe else ProbeOptions(idle_seconds=2.0 if args.quick else 5.0),
        job_kind=job_kind,
        system=SystemOptions(
            operator_qps=args.operator_qps,
            operator_burst=args.operator_burst,
            operator_args=tuple(shlex.split(args.operator_args)),
            reference_args=tuple(shlex.split(args.reference_args)),
        ),
    )


async def _install_crds(client: ApiClient, kind: BenchJobKind = PYTORCHJOB) -> None:
    """The Kubeflow v1 CRDs; for a Trainer kind also Kubeflow Trainer v2's CRDs and built-in
    ClusterTrainingRuntimes, as ``kubetrain up`` installs them (only then: with Trainer's API
    served, ``kubetrain operator``'s default ``--trainjobs auto`` would run the TrainJob
    controller in the other kinds' runs too)."""
    from kubetrain.reconcilers.api.crds import all_crds

    for crd in all_crds():
        await client.create_if_absent(CRDS, crd)
    if not kind.trainer:
        return
    from kubetrain.reconcilers.trainer.crds import trainer_crds
    from kubetrain.reconcilers.trainer.resources import CLUSTER_TRAINING_RUNTIMES
    from kubetrain.reconcilers.trainer.runtimes import builtin_runtimes

    for crd in trainer_crds():
        await client.create_if_absent(CRDS, crd)
    deadline = time.monotonic() + 60.0
    for runtime in builtin_runtimes():
        if runtime.get("kind") != CLUSTER_TRAINING_RUNTIMES.kind:
            continue
        while True:  # a real API server serves a new CRD once it is Established
            try:
                await client.create_if_absent(CLUSTER_TRAINING_RUNTIMES, runtime)
                break
            except ApiStatusError as e:
                if not e.is_not_found or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


async def run_scenario(
    scenario: str,
    options: BenchOptions,
    *,
    out: Path,
    kubeconfig: str | None,
    operator_kubeconfig: str | None = None,
    probe_kubeconfig: str | None = None,
) -> dict[str, Any]:
    """Start the cluster unless ``kubeconfig`` is given, run ``scenario``, write the report.
    The measured systems run with ``operator_kubeconfig`` and the tenant probe with
    ``probe_kubeconfig`` (default, each: ``kubeconfig``)."""
    workdir = out / "logs"
    workdir.mkdir(parents=True, exist_ok=True)
    cluster: ClusterProcess | None = None
    started = datetime.now(UTC).isoformat(timespec="seconds")
    if kubeconfig is None:
        pods = options.jobs * options.shape.pods + 16
        if scenario in ("churn", "soak"):  # up to 8 pods a job, rate x duration jobs
            pods = int(options.churn_rate * options.churn_seconds + 2) * 8 + 16
        if scenario == "contention":  # too little room, on purpose
            pods = options.contention_capacity_pods
        if scenario == "backlog":  # backlog pods sit on no node; the new jobs need room
            pods = (options.new_jobs + 2) * options.shape.pods * len(options.systems) + 16
        nodes = 4
        cluster = ClusterProcess(
            workdir=workdir,
            nodes=nodes,
            node_pods=math.ceil(pods / nodes),
            kube_controllers=options.kind.kube_controllers,
        )
        print(f"starting kubetrain cluster ({nodes} simulated nodes)", flush=True)
        await cluster.start()
        kubeconfig = cluster.kubeconfig
    try:
        url = server_url(kubeconfig)
        config = await load_kubeconfig(kubeconfig)
        client_options = ClientOptions(
            qps=0, adaptive=None, registry=CollectorRegistry(), user_agent="kubetrain-bench"
        )
        # The harness's own session scrapes the API server's /metrics (the cluster's TLS and
        # token, as a real server wants) and the operators' plain-HTTP endpoints.
        ssl_context = config.ssl_context()
        auth = await config.new_credentials().authorization()
        session_headers = {"Authorization": auth} if auth else None
        async with (
            ApiClient(config, client_options) as client,
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ssl_context if ssl_context else True),
                headers=session_headers,
            ) as session,
        ):
            await _install_crds(client, options.kind)
            ctx = BenchContext(
                options=options,
                client=client,
                session=session,
                url=url,
                kubeconfig=kubeconfig,
                workdir=workdir,
                run_id=f"{int(time.time()) % 100000:05d}",
                say=lambda line: print(line, flush=True),
                operator_kubeconfig=operator_kubeconfig or "",
                probe_kubeconfig=probe_kubeconfig or "",
            )
            section = await SCENARIOS[scenario](ctx)
    finally:
        if cluster is not None:
            await cluster.stop()
    result = {
        "started": started,
        "machine": machine_description(),
        "versions": versions(),
        "parameters": {
            "scenario": scenario,
            "cluster": "kubetrain cluster (process)" if cluster is not None else url,
            "systems": list(options.systems),
            "job_kind": options.job_kind,
            "operator_kubeconfig": operator_kubeconfig or "the cluster's (as the harness)",
            "probe_kubeconfig": probe_kubeconfig or "the cluster's (as the harness)",
            "create_concurrency": options.create_concurrency,
            "timeout_seconds": options.timeout_seconds,
            "settle_seconds": options.settle_seconds,
            "kubetrain_operator_qps": options.system.operator_qps,
            "kubetrain_operator_burst": options.system.operator_burst,
            "kubetrain_operator_args": list(options.system.operator_args),
            "reference_args": list(options.system.reference_args),
        },
        "scenarios": {scenario: section},
    }
    written = write_report(result, out)
    print("report: " + ", ".join(str(p) for p in written), flush=True)
    return result


async def run_bench(args: argparse.Namespace) -> int:
    """``kubetrain bench``: the exit status (1 with a one-line error on a harness failure)."""
    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"kubetrain bench: error: {exc}", flush=True)
        return 2
    out = Path(args.out or tempfile.mkdtemp(prefix=f"kubetrain-bench-{args.scenario}-"))
    try:
        await run_scenario(
            args.scenario,
            options,
            out=out,
            kubeconfig=args.kubeconfig,
            operator_kubeconfig=args.operator_kubeconfig,
            probe_kubeconfig=args.probe_kubeconfig,
        )
    except HarnessError as exc:
        print(f"kubetrain bench: error: {exc}", flush=True)
        return 1
    print((out / "summary.md").read_text(encoding="utf-8"), flush=True)
    return 0
