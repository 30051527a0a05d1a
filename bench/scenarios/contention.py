"""``contention``: more jobs than the simulated cluster holds at once, of mixed priorities, run with
and without gang scheduling.

Why: without gang scheduling a distributed job can get some of its pods placed and hold them while
the rest wait for room (each worker of a real job waits for its peers: the held room is wasted,
and two such jobs can deadlock). With it (``--gang-scheduler-name``, a PodGroup per job and a
scheduler that binds a group all or nothing) a job is placed whole or not at all, and a higher
priority job goes first.

The cluster holds ``capacity_pods`` pods (4 nodes); ``jobs`` PyTorchJobs of ``shape.pods`` pods
each are created at once, every third one at PriorityClass ``bench-high``, the others at
``bench-low``. kubetrain runs once per variant of ``GANG_VARIANTS`` (other systems are skipped).
The harness lists the namespace's pods every ``contention_sample_seconds`` and reports per
variant (``GangTally``):

- ``admission_seconds_{high,low}_{p50,p99}``: job created -> every pod of it bound to a node;
- ``half_scheduled_jobs``: jobs seen with some but not all of their pods bound for at least
  ``HALF_SCHEDULED_SECONDS`` (0 with gang scheduling);
- ``held_pod_seconds``: room held by those jobs' bound pods meanwhile;
- ``idle_capacity_while_waiting``: the share of the cluster's pod places left empty while some
  job waited for all its pods to be bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field, replace
from typing import Any

from kubetrain.informers.resource import PODS, PRIORITYCLASSES
from kubetrain.informers.transport import ApiStatusError

from ..jobs import JobShape, pytorchjob
from ..measure import JobTimes
from ..stats import percentile
from .context import BenchContext, measure_system, namespace_for

__all__ = [
    "FIGURES",
    "GANG_VARIANTS",
    "HALF_SCHEDULED_SECONDS",
    "LATENCIES",
    "PRIORITY_CLASSES",
    "GangTally",
    "contention_job",
    "run",
]

JOB_NAME_LABEL = "training.kubeflow.org/job-name"
HIGH, LOW = "bench-high", "bench-low"
PRIORITY_CLASSES = {HIGH: 1000, LOW: 10}
"""The PriorityClasses the jobs use (name -> value), created by the scenario if missing."""
HALF_SCHEDULED_SECONDS = 1.0
"""A job counts as half-scheduled when some but not all of its pods stay bound this long (shorter
spells are the binding of a whole group, pod by pod)."""
GANG_VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kubetrain", ()),
    ("kubetrain-volcano", ("--gang-scheduler-name", "volcano")),
    ("kubetrain-scheduler-plugins", ("--gang-scheduler-name", "scheduler-plugins-scheduler")),
)
"""(label, extra ``kubetrain operator`` flags) of each run."""
LATENCIES = ("admission_high", "admission_low")
FIGURES = (
    "admission_seconds_high_p50",
    "admission_seconds_high_p99",
    "admission_seconds_low_p50",
    "admission_seconds_low_p99",
    "half_scheduled_jobs",
    "held_pod_seconds",
    "idle_capacity_while_waiting",
    "jobs_succeeded",
    "jobs_not_succeeded",
    "wall_seconds_to_all_succeeded",
)


def contention_job(
    name: str, namespace: str, shape: JobShape, priority_class: str
) -> dict[str, Any]:
    """A PyTorchJob of ``shape`` at ``priority_class``: in ``schedulingPolicy`` (the PodGroup's)
    and in every pod template (the pods' own)."""
    job = pytorchjob(name, namespace, shape)
    spec = job["spec"]
    spec.setdefault("runPolicy", {})["schedulingPolicy"] = {"priorityClass": priority_class}
    for replica in spec["pytorchReplicaSpecs"].values():
        replica["template"]["spec"]["priorityClassName"] = priority_class
    return job


@dataclass(slots=True)
class _Spell:
    since: float
    last: float
    bound: int


@dataclass
class GangTally:
    """Figures from successive samples of the pods (pure: fed by ``observe``).

    Invariant: ``all_bound_at`` holds, per job, the first sample time at which every one of its
    ``pods_per_job`` pods was bound.
    """

    capacity_pods: int
    pods_per_job: int
    expected_jobs: int
    """Jobs of the workload: until each has had all its pods bound, jobs wait (with Volcano a
    waiting job has no pods at all yet)."""
    all_bound_at: dict[str, float] = field(default_factory=dict)
    half_scheduled: set[str] = field(default_factory=set)
    held_pod_seconds: float = 0.0
    _spells: dict[str, _Spell] = field(default_factory=dict)
    _waiting_seconds: float = 0.0
    _idle_while_waiting: float = 0.0
    _last_at: float | None = None
    _last_idle: float | None = None
    _started: bool = False
    """A pod of the workload was seen: from then on, jobs without all their pods bound wait."""
    """Share of the room empty at the last sample, None when no pod waited then."""

    def observe(self, at: float, pods: list[tuple[str, bool, bool]]) -> None:
        """One sample at time ``at``: every pod as (job name, bound to a node, terminal). What a
        sample shows is taken to hold until the next one."""
        bound: dict[str, int] = {}
        occupied = 0
        for job, is_bound, terminal in pods:
            if is_bound:
                bound[job] = bound.get(job, 0) + 1
                occupied += not terminal
        if self._last_at is not None and self._last_idle is not None:
            dt = max(0.0, at - self._last_at)
            self._waiting_seconds += dt
            self._idle_while_waiting += self._last_idle * dt
        for job, spell in list(self._spells.items()):
            self.held_pod_seconds += spell.bound * max(0.0, at - spell.last)
            spell.last = at
            if 0 < bound.get(job, 0) < self.pods_per_job:
                spell.bound = bound[job]
                if at - spell.since >= HALF_SCHEDULED_SECONDS:
                    self.half_scheduled.add(job)
            else:
                del self._spells[job]
        for job, n in bound.items():
            if n >= self.pods_per_job:
                self.all_bound_at.setdefault(job, at)
            elif job not in self._spells:
                self._spells[job] = _Spell(since=at, last=at, bound=n)
        self._started = self._started or bool(pods)
        jobs_waiting = self._started and len(self.all_bound_at) < self.expected_jobs
        self._last_at = at
        self._last_idle = (
            max(0, self.capacity_pods - occupied) / self.capacity_pods if jobs_waiting else None
        )

    def admission_seconds(
        self, created: dict[str, float], priority_of: dict[str, str]
    ) -> dict[str, list[float]]:
        """Seconds from create to every pod bound, by ``LATENCIES`` name; ``created``: job ->
        create time, ``priority_of``: job -> PriorityClass name."""
        out: dict[str, list[float]] = {"admission_high": [], "admission_low": []}
        for job, at in self.all_bound_at.items():
            if job in created and job in priority_of:
                key = "admission_high" if priority_of[job] == HIGH else "admission_low"
                out[key].append(at - created[job])
        return out

    def figures(self, created: dict[str, float], priority_of: dict[str, str]) -> dict[str, Any]:
        """The scenario's figures (arguments as ``admission_seconds``)."""
        admission = self.admission_seconds(created, priority_of)
        out: dict[str, Any] = {}
        for label in ("high", "low"):
            out[f"admission_seconds_{label}_p50"] = percentile(admission[f"admission_{label}"], 50)
            out[f"admission_seconds_{label}_p99"] = percentile(admission[f"admission_{label}"], 99)
        out["half_scheduled_jobs"] = len(self.half_scheduled)
        out["held_pod_seconds"] = self.held_pod_seconds
        out["idle_capacity_while_waiting"] = (
            self._idle_while_waiting / self._waiting_seconds if self._waiting_seconds else None
        )
        return out


async def _ensure_priority_classes(ctx: BenchContext) -> None:
    for name, value in PRIORITY_CLASSES.items():
        body = {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "description": "kubetrain bench contention",
        }
        await ctx.client.create_if_absent(PRIORITYCLASSES, body)


async def _sample(
    ctx: BenchContext, namespace: str, tally: GangTally, jobs: set[str], every: float
) -> None:
    """List the namespace's pods every ``every`` seconds into ``tally`` (the scenario's jobs
    only: not the warm-up's)."""
    while True:
        try:
            listed = await ctx.client.list(PODS, namespace)
        except ApiStatusError as e:
            if not e.is_not_found:
                raise
            listed = {"items": []}
        at = time.time()
        pods = []
        for pod in listed.get("items") or []:
            job = ((pod.get("metadata") or {}).get("labels") or {}).get(JOB_NAME_LABEL)
            if job not in jobs:
                continue
            phase = (pod.get("status") or {}).get("phase")
            bound = bool((pod.get("spec") or {}).get("nodeName"))
            pods.append((job, bound, phase in ("Succeeded", "Failed")))
        tally.observe(at, pods)
        await asyncio.sleep(every)


def _done(t: JobTimes) -> bool:
    return t.succeeded is not None or t.failed is not None


async def run(ctx: BenchContext) -> dict[str, Any]:
    opts = ctx.options
    shape = opts.shape
    await _ensure_priority_classes(ctx)
    variants = GANG_VARIANTS[: opts.contention_variants]
    systems: dict[str, Any] = {}
    for system in opts.systems:
        if system != "kubetrain":
            ctx.say(f"[contention] {system}: skipped (gang scheduling is run with kubetrain)")
            continue
        for label, flags in variants:
            variant_ctx = replace(
                ctx,
                options=replace(
                    opts,
                    system=replace(opts.system, operator_args=(*opts.system.operator_args, *flags)),
                ),
            )
            scenario = "contention" if label == "kubetrain" else f"contention-{label[10:]}"
            namespace = namespace_for(variant_ctx, scenario, system)
            priority_of = {f"job-{i:04d}": HIGH if i % 3 == 0 else LOW for i in range(opts.jobs)}
            manifests = [contention_job(n, namespace, shape, p) for n, p in priority_of.items()]
            ctx.say(
                f"[contention/{label}] {opts.jobs} jobs of {shape.pods} pods on room for "
                f"{opts.contention_capacity_pods} pods"
            )
            tally = GangTally(
                capacity_pods=opts.contention_capacity_pods,
                pods_per_job=shape.pods,
                expected_jobs=opts.jobs,
            )
            sampler = asyncio.create_task(
                _sample(ctx, namespace, tally, set(priority_of), opts.contention_sample_seconds)
            )
            try:
                m = await measure_system(
                    variant_ctx,
                    system,
                    scenario=scenario,
                    manifests=manifests,
                    done=_done,
                    pods_per_job=shape.pods,
                )
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            created = {name: t.created for name, t in m.jobs.items() if t.created is not None}
            succeeded = sum(1 for t in m.jobs.values() if t.succeeded is not None)
            figures = tally.figures(created, priority_of)
            figures.update(
                jobs_succeeded=succeeded,
                jobs_not_succeeded=len(m.jobs) - succeeded,
                wall_seconds_to_all_succeeded=None if m.timed_out else m.wall_seconds,
            )
            systems[label] = {
                "namespace": m.namespace,
                "operator_flags": list(flags),
                "figures": figures,
                "latency_samples": tally.admission_seconds(created, priority_of),
                "api_requests": m.requests,
            }
    return {
        "parameters": {
            "jobs": opts.jobs,
            "capacity_pods": opts.contention_capacity_pods,
            "pods_per_job": shape.pods,
            "run_seconds": shape.run_seconds,
            "priority_classes": PRIORITY_CLASSES,
            "high_priority_share": "every third job",
        },
        "figures": list(FIGURES),
        "latencies": list(LATENCIES),
        "systems": systems,
    }
