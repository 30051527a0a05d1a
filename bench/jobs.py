"""The benchmark's job shape, the job kinds a run can submit, and how the harness submits jobs.

Default shape (BENCHMARKS.md): PyTorchJob, 1 Master + 3 Workers, simulated pods that run a set
time and exit 0. ``create_jobs`` submits them as fast as the API server accepts them, with a
bounded number of requests in flight.

``--job-kind`` (``JOB_KINDS``) picks what a burst submits: ``pytorchjob`` (the default, above),
``mpijob-v2beta1``, mpi-operator's ``kubeflow.org/v2beta1`` MPIJob of the same shape (``masters``
is the one Launcher, ``workers`` the Workers), created through the CRD's conversion webhook and
run by kubetrain's v2beta1 controller with the launcher as a batch/v1 Job (``mpijob_v2beta1``), or
``trainjob``, Kubeflow Trainer v2's ``trainer.kubeflow.org/v1alpha1`` TrainJob of as many nodes as
the shape has pods, on the built-in ``torch-distributed`` runtime, run by kubetrain's TrainJob
controller through one JobSet (``trainjob``; the backlog scenario takes it too).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import NAMESPACES, ResourceRef, kubeflow
from kubetrain.reconcilers.trainer.resources import TRAINJOBS

__all__ = [
    "BENCH_PATCH_MANAGER",
    "JOBSET_NAME_LABEL",
    "JOB_KINDS",
    "JOB_NAME_LABEL",
    "MPIJOBS_V2BETA1",
    "MPIJOB_V2BETA1",
    "MPI_WORKER_RUN_SECONDS",
    "PYTORCHJOB",
    "TRAINER_RUNTIME",
    "TRAINJOB",
    "BenchJobKind",
    "JobShape",
    "create_jobs",
    "create_namespace",
    "mpijob_v2beta1",
    "pytorchjob",
    "trainjob",
]

SIM = "sim.kubetrain.dev/"
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
"""The pods' label naming their job, which every v1 system (and MPIJob v2beta1's) sets."""
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
"""The pods' label naming their JobSet (JobSet's controller sets it on each Job's pod template);
a TrainJob's JobSet has the TrainJob's name."""
TRAINER_RUNTIME = "torch-distributed"
"""The ClusterTrainingRuntime the bench's TrainJobs run on (built in, installed by the harness)."""
BENCH_PATCH_MANAGER = "example.com/bench"
"""``runtimePatches[].manager`` of the bench's own patch (the pods' simulated run time)."""
PYTORCHJOBS = kubeflow("PyTorchJob")
MPIJOBS_V2BETA1 = ResourceRef("kubeflow.org", "v2beta1", "mpijobs", True, "MPIJob")
MPI_WORKER_RUN_SECONDS = 3600.0
"""An MPI worker runs ``sshd -De`` until it is deleted: its simulated run time is far longer than
any launcher's, so the workers run until the launcher finished and the job's
``cleanPodPolicy: Running`` deletes them (as in mpi-operator's examples)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobShape:
    """One benchmark job. Invariant: ``masters`` >= 1, ``workers`` >= 0, ``run_seconds`` >= 0."""

    masters: int = 1
    workers: int = 3
    run_seconds: float = 1.0
    """How long each simulated container runs (``sim.kubetrain.dev/run-seconds``)."""
    ttl_seconds_after_finished: int | None = None

    @property
    def pods(self) -> int:
        return self.masters + self.workers

    @property
    def services(self) -> int:
        """One headless service per pod (the reference operator's rule)."""
        return self.masters + self.workers


def pytorchjob(name: str, namespace: str, shape: JobShape) -> dict[str, Any]:
    """A PyTorchJob manifest of ``shape``."""

    def replica(n: int) -> dict[str, Any]:
        return {
            "replicas": n,
            "restartPolicy": "OnFailure",
            "template": {
                "metadata": {"annotations": {SIM + "run-seconds": str(shape.run_seconds)}},
                "spec": {"containers": [{"name": "pytorch", "image": "busybox:1"}]},
            },
        }

    specs = {"Master": replica(shape.masters)}
    if shape.workers:
        specs["Worker"] = replica(shape.workers)
    spec: dict[str, Any] = {"pytorchReplicaSpecs": specs}
    if shape.ttl_seconds_after_finished is not None:
        spec["runPolicy"] = {"ttlSecondsAfterFinished": shape.ttl_seconds_after_finished}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def mpijob_v2beta1(name: str, namespace: str, shape: JobShape) -> dict[str, Any]:
    """An MPIJob ``kubeflow.org/v2beta1`` of ``shape`` shaped like mpi-operator's
    ``examples/v2beta1/pi/pi.yaml``: one Launcher (``shape.masters`` must be 1) that runs
    ``shape.run_seconds`` and ``shape.workers`` Workers that run until they are deleted
    (``MPI_WORKER_RUN_SECONDS``, ``cleanPodPolicy: Running``)."""
    if shape.masters != 1:
        raise ValueError(f"an MPIJob has exactly one Launcher, got masters={shape.masters}")

    def template(container: str, seconds: float, command: list[str]) -> dict[str, Any]:
        return {
            "metadata": {"annotations": {SIM + "run-seconds": str(seconds)}},
            "spec": {
                "containers": [
                    {"name": container, "image": "mpioperator/mpi-pi:openmpi", "command": command}
                ]
            },
        }

    specs: dict[str, Any] = {
        "Launcher": {
            "replicas": 1,
            "template": template("mpi-launcher", shape.run_seconds, ["mpirun", "/home/pi"]),
        }
    }
    if shape.workers:
        specs["Worker"] = {
            "replicas": shape.workers,
            "template": template("mpi-worker", MPI_WORKER_RUN_SECONDS, ["/usr/sbin/sshd", "-De"]),
        }
    run_policy: dict[str, Any] = {"cleanPodPolicy": "Running"}
    if shape.ttl_seconds_after_finished is not None:
        run_policy["ttlSecondsAfterFinished"] = shape.ttl_seconds_after_finished
    return {
        "apiVersion": "kubeflow.org/v2beta1",
        "kind": "MPIJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"slotsPerWorker": 1, "runPolicy": run_policy, "mpiReplicaSpecs": specs},
    }


def trainjob(name: str, namespace: str, shape: JobShape) -> dict[str, Any]:
    """A TrainJob ``trainer.kubeflow.org/v1alpha1`` of ``shape.pods`` nodes on the built-in
    ``torch-distributed`` ClusterTrainingRuntime: one JobSet, one Job of that parallelism, one
    pod a node, each running ``shape.run_seconds`` and exiting 0.

    The simulated run time reaches the pods through a ``runtimePatches`` entry (manager
    ``BENCH_PATCH_MANAGER``) that annotates job ``node``'s pod template, not through a bench-owned
    TrainingRuntime: a patch keeps the manifest self-contained like the other kinds' (no object
    to create in each measured namespace before its warm-up, no runtime per run time), and the
    jobs run on the runtime users run, with the strategic merge every patched TrainJob (e.g.
    Kueue's) goes through. TrainJobs have no ``ttlSecondsAfterFinished``."""
    if shape.ttl_seconds_after_finished is not None:
        raise ValueError("a TrainJob has no ttlSecondsAfterFinished (its runtime's JobSet does)")
    node_pod_template = {"metadata": {"annotations": {SIM + "run-seconds": str(shape.run_seconds)}}}
    patch = {
        "manager": BENCH_PATCH_MANAGER,
        "trainingRuntimeSpec": {
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {"name": "node", "template": {"spec": {"template": node_pod_template}}}
                    ]
                }
            }
        },
    }
    return {
        "apiVersion": TRAINJOBS.api_version,
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "runtimeRef": {"name": TRAINER_RUNTIME},
            "trainer": {"numNodes": shape.pods},
            "runtimePatches": [patch],
        },
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchJobKind:
    """What ``--job-kind`` selects: how jobs are written and watched, what a run needs, and the
    writes a job needs at the least (the burst's write amplification divides by them)."""

    name: str
    """The ``--job-kind`` value."""
    kind: str
    """The kind; unless ``read_api`` is given the harness watches and reads it as
    ``kubeflow.org/v1`` (the storage version of the Kubeflow v1 kinds, MPIJob v2beta1's
    included, so the harness's own reads never need a conversion)."""
    api: ResourceRef
    """What the harness creates the jobs as."""
    read_api: ResourceRef | None = None
    """What the harness watches and reads them as; None: ``kubeflow(kind)``."""
    manifest: Callable[[str, str, JobShape], dict[str, Any]]
    systems: tuple[str, ...]
    """The systems that can run it."""
    kube_controllers: bool = False
    """The cluster runs its Job controller (a batch/v1 Job is part of each job)."""
    webhooks: bool = False
    """The kubetrain operator serves its webhooks (here: the CRD's conversion) and the harness
    installs them before the jobs are created."""
    not_operator: tuple[tuple[str, str], ...] = ()
    """(verb or ``*``, resource) of more writes that are never the measured system's
    (``apimetrics.NOT_OPERATOR``'s rule), e.g. the Job controller's."""
    succeeded_condition: str = "Succeeded"
    """The condition type (status True) of a job that succeeded (a TrainJob's: ``Complete``)."""
    pod_job_label: str = JOB_NAME_LABEL
    """The pods' label whose value is their job's name."""
    scenarios: tuple[str, ...] | None = ("burst",)
    """The scenarios that can run it; None: every one."""
    trainer: bool = False
    """Kubeflow Trainer v2's: the harness installs the Trainer CRDs and the built-in
    ClusterTrainingRuntimes, and the kubetrain operator runs its TrainJob controller."""

    @property
    def watched(self) -> ResourceRef:
        """What the harness watches and reads the jobs as."""
        return self.read_api if self.read_api is not None else kubeflow(self.kind)

    def pods_to_succeed(self, pods_per_job: int) -> int:
        """Of a job's ``pods_per_job`` pods, those that end Succeeded when it succeeds: all, but
        an MPIJob's launcher pod alone (its workers run until they are deleted)."""
        return 1 if self.name == MPIJOB_V2BETA1_NAME else pods_per_job

    def services(self, shape: JobShape) -> int:
        """Services the system makes for a job: one per pod for v1 kinds, one headless Service
        for MPI v2beta1, none for a TrainJob (its JobSet's headless Service is JobSet's)."""
        if self.name == TRAINJOB_NAME:
            return 0
        return 1 if self.name == MPIJOB_V2BETA1_NAME else shape.services

    def minimal_writes(self, shape: JobShape, *, status_writes: int) -> int:
        """The writes one job needs at the least, ``status_writes`` status changes included.

        PyTorchJob: one create per pod and per Service. MPIJob v2beta1 (what mpi-operator
        writes): the Service, the ConfigMap, the SSH Secret, one create per worker pod, the
        launcher Job, one update of the ConfigMap (its ``discover_hosts.sh`` lists the running
        workers, none when it was created), and one delete per worker once the launcher
        finished (``cleanPodPolicy: Running``). Not counted: the launcher's pod, its tracking
        finalizer, the Job's status and Events, which the cluster's Job controller writes, and
        the kubelets' final DELETEs (the harness leaves all of them out).

        TrainJob (what Kubeflow Trainer v2.3.0 writes, and kubetrain's TrainJob controller):
        the runtime snapshot ConfigMap (one apply: the first build snapshots the runtime and
        every later build reads it back from the cache), the JobSet (one apply: a running JobSet
        is never changed) and the status changes. The controller writes status as one merge
        patch per reconcile that changed it, so the fewest writes are the changes a user must
        see: ``Pending`` (the first write: ``status.phase`` and ``startTime``, kubetrain's
        visible phase from the start), ``Running`` (every training pod ready) and ``Complete``
        (the JobSet's ``Completed``), the same three as the v1 kinds' Created, Running and
        Succeeded. Every other status write, e.g. ``jobsStatus`` following the JobSet's
        counts of active/ready Jobs between those, is amplification. Not counted: the JobSet
        controller's writes (its Job, its headless Service, its status, its Events) and the Job
        controller's (the pods, their tracking finalizers, the Job's status, its Events)."""
        if self.name == TRAINJOB_NAME:
            return 2 + status_writes
        if self.name == MPIJOB_V2BETA1_NAME:
            configmap_update = 1 if shape.workers else 0
            return 3 + shape.workers + 1 + configmap_update + shape.workers + status_writes
        return shape.pods + shape.services + status_writes


MPIJOB_V2BETA1_NAME = "mpijob-v2beta1"
TRAINJOB_NAME = "trainjob"
PYTORCHJOB = BenchJobKind(
    name="pytorchjob",
    kind="PyTorchJob",
    api=PYTORCHJOBS,
    manifest=pytorchjob,
    systems=("kubetrain", "raw", "kopf", "reference"),
    scenarios=None,
)
MPIJOB_V2BETA1 = BenchJobKind(
    name=MPIJOB_V2BETA1_NAME,
    kind="MPIJob",
    api=MPIJOBS_V2BETA1,
    manifest=mpijob_v2beta1,
    systems=("kubetrain",),
    kube_controllers=True,
    webhooks=True,
    not_operator=(
        ("POST", "mpijobs"),  # the harness creates the jobs
        ("*", "jobs/status"),  # the Job controller (kubetrain writes it only on a resume)
        ("PATCH", "pods"),  # the Job controller's tracking finalizer (kubetrain never patches)
    ),
)
TRAINJOB = BenchJobKind(
    name=TRAINJOB_NAME,
    kind="TrainJob",
    api=TRAINJOBS,
    read_api=TRAINJOBS,
    manifest=trainjob,
    systems=("kubetrain",),
    kube_controllers=True,  # JobSet's controller makes the Job, the Job controller its pods
    not_operator=(
        ("POST", "trainjobs"),  # the harness creates the jobs
        # JobSet's controller: the Job, the headless Service, the JobSet's status. kubetrain's
        # TrainJob controller never writes a Job, a Service nor a JobSet's status (it applies
        # the JobSet, PATCH jobsets), and the v1 controller the operator must also run
        # (``systems.system_process``) has no job in the namespace.
        ("*", "jobs"),
        ("*", "services"),
        ("*", "jobsets/status"),
        # The Job controller: the pods, their tracking finalizers, the Job's status.
        ("*", "pods"),
        ("*", "jobs/status"),
    ),
    succeeded_condition="Complete",
    pod_job_label=JOBSET_NAME_LABEL,
    scenarios=("burst", "backlog"),
    trainer=True,
)
JOB_KINDS: dict[str, BenchJobKind] = {k.name: k for k in (PYTORCHJOB, MPIJOB_V2BETA1, TRAINJOB)}
"""``--job-kind`` -> what it runs."""


async def create_namespace(client: ApiClient, name: str) -> None:
    await client.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )


async def create_jobs(
    client: ApiClient,
    manifests: list[dict[str, Any]],
    *,
    concurrency: int = 32,
    ref: ResourceRef = PYTORCHJOBS,
    on_created: Callable[[str, float], None] | None = None,
    before_each: Callable[[int], Awaitable[None]] | None = None,
) -> float:
    """Create every manifest (as ``ref``) with at most ``concurrency`` requests in flight;
    returns the seconds it took. ``on_created(name, when)`` is called as each create returns; ``before_each(i)``, when
    given, is awaited before the i-th create is sent (arrival schedules)."""
    gate = asyncio.Semaphore(concurrency)
    start = time.monotonic()

    async def one(i: int, manifest: dict[str, Any]) -> None:
        if before_each is not None:
            await before_each(i)
        async with gate:
            await client.create(ref, manifest)
        if on_created is not None:
            on_created(manifest["metadata"]["name"], time.time())

    await asyncio.gather(*(one(i, m) for i, m in enumerate(manifests)))
    return time.monotonic() - start
