"""The six kubeflow.org/v1 job kinds, described once.

The values are the reference operator's (``training-operator-v1.md`` section 1.1); reconcilers,
CRDs, the CLI's ``--enable-scheme`` and the metrics' ``framework`` label all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "kubeflow.org"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True, slots=True)
class JobKind:
    kind: str  # "PyTorchJob"
    plural: str  # "pytorchjobs"
    replica_field: str  # the spec field holding the replica map, e.g. "pytorchReplicaSpecs"
    replica_types: tuple[str, ...]  # canonical spellings; () = any key accepted (TFJob)
    default_container: str  # container that gets the default port and whose exit code counts
    default_port_name: str
    default_port: int
    default_restart_policy: str
    framework: str  # the `framework` label of training_operator_jobs_* metrics
    scalable: bool  # has the scale subresource (Worker replicas)
    short_names: tuple[str, ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def controller_name(self) -> str:
        """The `training.kubeflow.org/operator-name` label value and the controller's name."""
        return f"{self.kind.lower()}-controller"

    @property
    def scheme_name(self) -> str:
        """The value of ``--enable-scheme`` that selects this kind."""
        return self.kind.lower()


TFJOB = JobKind(
    kind="TFJob",
    plural="tfjobs",
    replica_field="tfReplicaSpecs",
    replica_types=("Chief", "Evaluator", "Master", "PS", "Worker"),
    default_container="tensorflow",
    default_port_name="tfjob-port",
    default_port=2222,
    default_restart_policy="Never",
    framework="tensorflow",
    scalable=False,
)
PYTORCHJOB = JobKind(
    kind="PyTorchJob",
    plural="pytorchjobs",
    replica_field="pytorchReplicaSpecs",
    replica_types=("Master", "Worker"),
    default_container="pytorch",
    default_port_name="pytorchjob-port",
    default_port=23456,
    default_restart_policy="OnFailure",
    framework="pytorch",
    scalable=True,
)
XGBOOSTJOB = JobKind(
    kind="XGBoostJob",
    plural="xgboostjobs",
    replica_field="xgbReplicaSpecs",
    replica_types=("Master", "Worker"),
    default_container="xgboost",
    default_port_name="xgboostjob-port",
    default_port=9999,
    default_restart_policy="Never",
    framework="xgboost",
    scalable=False,
)
PADDLEJOB = JobKind(
    kind="PaddleJob",
    plural="paddlejobs",
    replica_field="paddleReplicaSpecs",
    replica_types=("Master", "Worker"),
    default_container="paddle",
    default_port_name="master",
    default_port=36543,
    default_restart_policy="OnFailure",
    framework="paddle",
    scalable=True,
)
JAXJOB = JobKind(
    kind="JAXJob",
    plural="jaxjobs",
    replica_field="jaxReplicaSpecs",
    replica_types=("Worker",),
    default_container="jax",
    default_port_name="jaxjob-port",
    default_port=6666,
    default_restart_policy="Never",
    framework="jax",
    scalable=True,
)
MPIJOB = JobKind(
    kind="MPIJob",
    plural="mpijobs",
    replica_field="mpiReplicaSpecs",
    replica_types=("Launcher", "Worker"),
    default_container="mpi",
    default_port_name="mpi-port",
    default_port=9999,
    default_restart_policy="Never",
    framework="mpi",
    scalable=False,
)

ALL_KINDS: tuple[JobKind, ...] = (TFJOB, PYTORCHJOB, XGBOOSTJOB, MPIJOB, PADDLEJOB, JAXJOB)
BY_KIND: dict[str, JobKind] = {k.kind: k for k in ALL_KINDS}
BY_SCHEME: dict[str, JobKind] = {k.scheme_name: k for k in ALL_KINDS}


def kinds_for_schemes(schemes: list[str] | None) -> tuple[JobKind, ...]:
    """Resolve ``--enable-scheme`` values (case-insensitive); none given means every kind.

    Raises ValueError naming the unknown value and the accepted ones.
    """
    if not schemes:
        return ALL_KINDS
    out: list[JobKind] = []
    for raw in schemes:
        kind = BY_SCHEME.get(raw.strip().lower())
        if kind is None:
            accepted = ", ".join(sorted(BY_SCHEME))
            raise ValueError(f"--enable-scheme: unknown kind {raw!r}; accepted: {accepted}")
        if kind not in out:
            out.append(kind)
    return tuple(out)
