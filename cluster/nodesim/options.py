"""``NodeSimOptions``: every knob of the node simulator, with its documented default.

The CLI (``kubetrain cluster``/``up``, ``python -m kubetrain.cluster.nodesim``) builds one from
the flags its fields declare (``base.flags``), ``EmbeddedCluster(nodes=N)`` directly; the simulator
never reads flags or environment.
Per-pod behaviour (how long a container runs, how it exits) comes from pod annotations; the
``default_*`` fields here are what a pod without the annotation gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubetrain.base.flags import flag

__all__ = ["DEFAULT_SCHEDULER", "GANG_SCHEDULERS", "NodeSimOptions"]

DEFAULT_SCHEDULER = "default-scheduler"
GANG_SCHEDULERS = frozenset({"volcano", "scheduler-plugins-scheduler"})
"""Volcano's scheduler name and the one scheduler-plugins is deployed (and the training
operator's e2e tests run) under: pods of these names are gang-scheduled when in a PodGroup."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSimOptions:
    """What the simulator registers and how simulated pods behave by default."""

    nodes: int = field(default=4, metadata=flag("--nodes", "nodes to register"))
    """Named ``{node_name_prefix}{i}`` for i in 0..nodes-1."""
    node_name_prefix: str = "kubetrain-node-"
    cpu: str = field(default="32", metadata=flag("--node-cpu", "cpu per node"))
    """Each node's capacity and allocatable cpu (a quantity)."""
    memory: str = field(default="128Gi", metadata=flag("--node-memory", "memory per node"))
    """Each node's capacity and allocatable memory."""
    pods: int = field(default=110, metadata=flag("--node-pods", "pods per node"))
    """Each node's pod capacity (kube's default ``--max-pods``)."""
    gpus: int = field(default=8, metadata=flag("--node-gpus", "nvidia.com/gpu per node"))
    """0: the resource is not advertised."""
    node_labels: tuple[tuple[str, str], ...] = ()
    """Extra labels on every node, besides hostname/os/arch and ``type=kubetrain-sim``."""
    scheduler_names: frozenset[str] = field(
        default_factory=lambda: frozenset({DEFAULT_SCHEDULER, *GANG_SCHEDULERS}),
        metadata=flag("--scheduler-name", "schedule pods of this schedulerName"),
    )
    """Pods whose ``spec.schedulerName`` is one of these are scheduled by the simulator. A pod
    of ``volcano`` with the annotation ``scheduling.k8s.io/group-name``, or of any other name
    but ``default-scheduler`` with the label ``scheduling.x-k8s.io/pod-group``, is scheduled with
    its PodGroup (all or nothing) when ``gang_scheduling`` is on and the server serves the
    group's CRD; any other pod alone."""
    gang_scheduling: bool = field(
        default=True,
        metadata=flag(
            "--gang-scheduling",
            "gang-schedule pods of Volcano and scheduler-plugins PodGroups",
            negatable=True,
        ),
    )
    """Watch PodGroups (of the flavours the server serves) and PriorityClasses; off: every pod
    is scheduled alone, first come first served."""
    preemption: bool = field(
        default=False,
        metadata=flag(
            "--preemption",
            "let a pod or gang that fits nowhere evict lower-priority pods (whole groups)",
        ),
    )
    """Off (the default): a pod that fits nowhere waits, whatever its priority. On: as
    kube-scheduler's DefaultPreemption, it evicts strictly lower-priority pods (a gang member:
    its whole group) when that makes it fit (victims get ``DisruptionTarget`` and are deleted),
    is nominated (``status.nominatedNodeName``) and keeps that room until they are gone;
    ``preemptionPolicy: Never`` opts a pod (or its PriorityClass) out. A Volcano group may then
    be admitted against what lower-priority pods hold."""
    lease_renew_seconds: float = 10.0
    """How often each node renews its Lease in ``kube-node-lease`` (the kubelet's 10 s)."""
    default_run_seconds: float = field(
        default=1.0,
        metadata=flag(
            "--pod-run-seconds",
            "container run time without the sim.kubetrain.dev/run-seconds annotation",
        ),
    )
    init_run_seconds: float = 0.0
    """How long each init container runs."""
    default_start_delay_seconds: float = field(
        default=0.0,
        metadata=flag("--pod-start-delay-seconds", "ContainerCreating time without the annotation"),
    )
    """Image pull + create time (``ContainerCreating``) without ``start-delay-seconds``."""
    restart_delay_seconds: float = 0.0
    """Time a crashed container waits (``CrashLoopBackOff``) before its in-place restart."""
    default_log_lines: int = 1
    """Lines each container logs per run without ``log``/``log-lines`` annotations."""
    termination_exit_code: int = 143
    """Exit code of a container stopped by pod deletion (SIGTERM: 128 + 15)."""
    workers: int = 16
    """Concurrent pod status writers."""
    bind_concurrency: int = 16
    """Concurrent binding requests."""
    qps: float = 0.0
    """Client-side request limit of the simulator's API client (<= 0: none, like a kubelet
    against the embedded cluster; set it when sharing a real server)."""
    burst: int = 100
    """Client-side burst when ``qps > 0``."""

    def __post_init__(self) -> None:
        if self.nodes < 0:
            raise ValueError(f"NodeSimOptions.nodes must be >= 0, got {self.nodes}")
        for name in (
            "default_run_seconds",
            "init_run_seconds",
            "default_start_delay_seconds",
            "restart_delay_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"NodeSimOptions.{name} must be >= 0, got {getattr(self, name)}")
        if self.lease_renew_seconds <= 0:
            raise ValueError(
                f"NodeSimOptions.lease_renew_seconds must be > 0, got {self.lease_renew_seconds}"
            )
        if self.workers < 1 or self.bind_concurrency < 1:
            raise ValueError("NodeSimOptions.workers and bind_concurrency must be >= 1")
        if self.pods < 1:
            raise ValueError(f"NodeSimOptions.pods must be >= 1, got {self.pods}")

    def node_names(self) -> list[str]:
        return [f"{self.node_name_prefix}{i}" for i in range(self.nodes)]
