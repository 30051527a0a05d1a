"""Trainer v2.3.0's MPI plugin, the part the JobSet build uses: the runtime's MPI policy with
its defaults, slots per node, and the names, volumes, env and hostfile text of the ``node`` and
``launcher`` jobs (``pkg/runtime/framework/plugins/mpi/mpi.go``). Pure; the objects beside the
JobSet (the hostfile ConfigMap, the SSH Secret) are ``plugins/mpi.py``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.trainer.runtime_info import gpus_per_node, ml_policy_name

__all__ = [
    "AUTHORIZED_KEYS_FILE",
    "HOSTFILE_CONFIGMAP_SUFFIX",
    "HOSTFILE_DIR",
    "HOSTFILE_KEY",
    "HOSTFILE_MODE",
    "HOSTFILE_VOLUME",
    "LAUNCHER",
    "NODE",
    "OPENMPI",
    "OPENMPI_DEFAULT_SLOTS_ENV",
    "OPENMPI_HOSTFILE_ENV",
    "OPENMPI_KEEP_FQDN_ENV",
    "OPENMPI_RSH_ARGS",
    "OPENMPI_RSH_ARGS_ENV",
    "PRIVATE_KEY_FILE",
    "PRIVATE_KEY_MODE",
    "PUBLIC_KEY_FILE",
    "PUBLIC_KEY_MODE",
    "SSH_AUTH_DEFAULT_MODE",
    "SSH_AUTH_SECRET_SUFFIX",
    "SSH_AUTH_SECRET_TYPE",
    "SSH_AUTH_VOLUME",
    "SSH_PRIVATE_KEY",
    "SSH_PUBLIC_KEY",
    "MPIPolicy",
    "hostfile",
    "hostfile_configmap_name",
    "hostfile_volume",
    "launcher_env",
    "mpi_policy",
    "mpi_slots",
    "ssh_auth_secret_name",
    "ssh_auth_volume",
]

#: The trainer container's name (``constants.Node``), also the MPI node job's.
NODE = "node"

#: The launcher job's name (``constants.Launcher``); its trainer container is still ``node``.
LAUNCHER = "launcher"
OPENMPI = "OpenMPI"

SSH_AUTH_SECRET_SUFFIX = "-mpi-ssh-auth"
SSH_AUTH_SECRET_TYPE = "kubernetes.io/ssh-auth"
SSH_AUTH_VOLUME = "mpi-ssh-auth"
#: ``corev1.SSHAuthPrivateKey`` and ``constants.MPISSHPublicKey``: the Secret's data keys.
SSH_PRIVATE_KEY = "ssh-privatekey"
SSH_PUBLIC_KEY = "ssh-publickey"
PRIVATE_KEY_FILE = "id_rsa"
PUBLIC_KEY_FILE = "id_rsa.pub"
AUTHORIZED_KEYS_FILE = "authorized_keys"
SSH_AUTH_DEFAULT_MODE = 0o400
PRIVATE_KEY_MODE = 0o640
PUBLIC_KEY_MODE = 0o644

HOSTFILE_CONFIGMAP_SUFFIX = "-mpi-hostfile"
HOSTFILE_VOLUME = "mpi-hostfile"
HOSTFILE_DIR = "/etc/mpi"
HOSTFILE_KEY = "hostfile"
HOSTFILE_MODE = 0o444

OPENMPI_HOSTFILE_ENV = "OMPI_MCA_orte_default_hostfile"
OPENMPI_KEEP_FQDN_ENV = "OMPI_MCA_orte_keep_fqdn_hostnames"
OPENMPI_DEFAULT_SLOTS_ENV = "OMPI_MCA_orte_set_default_slots"
OPENMPI_RSH_ARGS_ENV = "OMPI_MCA_plm_rsh_args"
OPENMPI_RSH_ARGS = "-o ConnectionAttempts=10"


@dataclass(frozen=True, slots=True)
class MPIPolicy:
    """``mlPolicy.mpi`` with the CRD's defaults filled in (the API server fills them on a stored
    runtime; a runtime spec built in memory may leave them out)."""

    num_proc_per_node: int = 1
    implementation: str = OPENMPI
    ssh_auth_mount_path: str = "/root/.ssh"
    run_launcher_as_node: bool = False


def mpi_policy(ml_policy: Mapping[str, Any] | None) -> MPIPolicy | None:
    """The runtime's MPI policy, or None when ``mlPolicy`` is not MPI."""
    if ml_policy_name(ml_policy) != "mpi":
        return None
    raw: Mapping[str, Any] = (ml_policy or {})["mpi"] or {}
    defaults = MPIPolicy()
    nproc = raw.get("numProcPerNode")
    implementation = raw.get("mpiImplementation")
    mount_path = raw.get("sshAuthMountPath")
    as_node = raw.get("runLauncherAsNode")
    return MPIPolicy(
        num_proc_per_node=defaults.num_proc_per_node if nproc is None else int(nproc),
        implementation=defaults.implementation if implementation is None else str(implementation),
        ssh_auth_mount_path=defaults.ssh_auth_mount_path if mount_path is None else str(mount_path),
        run_launcher_as_node=bool(as_node) if as_node is not None else False,
    )


def mpi_slots(
    policy: MPIPolicy, trainer: Mapping[str, Any] | None, runtime_resources: Obj | None
) -> int:
    """Slots per node (``OMPI_MCA_orte_set_default_slots`` and each hostfile line): the
    TrainJob's ``numProcPerNode``, else the runtime's; when the runtime's is 1, the GPU count per
    node if above 1 (the TrainJob's ``resourcesPerNode``, else ``runtime_resources``: container
    ``node``'s resources in the built template)."""
    if trainer is not None and trainer.get("numProcPerNode") is not None:
        return int(trainer["numProcPerNode"])
    if policy.num_proc_per_node != 1:
        return policy.num_proc_per_node
    resources = runtime_resources
    if trainer is not None and trainer.get("resourcesPerNode") is not None:
        resources = trainer["resourcesPerNode"]
    gpus = gpus_per_node(resources)
    return gpus if gpus > 1 else 1


def ssh_auth_secret_name(trainjob_name: str) -> str:
    return f"{trainjob_name}{SSH_AUTH_SECRET_SUFFIX}"


def hostfile_configmap_name(trainjob_name: str) -> str:
    return f"{trainjob_name}{HOSTFILE_CONFIGMAP_SUFFIX}"


def ssh_auth_volume(trainjob_name: str) -> Obj:
    """Volume ``mpi-ssh-auth`` on the node and launcher pods: the private key as ``id_rsa``
    (0640) and the public key twice, as ``id_rsa.pub`` and ``authorized_keys`` (0644)."""
    return {
        "name": SSH_AUTH_VOLUME,
        "secret": {
            "secretName": ssh_auth_secret_name(trainjob_name),
            "defaultMode": SSH_AUTH_DEFAULT_MODE,
            "items": [
                {"key": SSH_PRIVATE_KEY, "path": PRIVATE_KEY_FILE, "mode": PRIVATE_KEY_MODE},
                {"key": SSH_PUBLIC_KEY, "path": PUBLIC_KEY_FILE, "mode": PUBLIC_KEY_MODE},
                {"key": SSH_PUBLIC_KEY, "path": AUTHORIZED_KEYS_FILE, "mode": PUBLIC_KEY_MODE},
            ],
        },
    }


def hostfile_volume(trainjob_name: str) -> Obj:
    """Volume ``mpi-hostfile`` on the launcher pod: the ConfigMap's ``hostfile`` (0444)."""
    return {
        "name": HOSTFILE_VOLUME,
        "configMap": {
            "name": hostfile_configmap_name(trainjob_name),
            "items": [{"key": HOSTFILE_KEY, "path": HOSTFILE_KEY, "mode": HOSTFILE_MODE}],
        },
    }


def launcher_env(slots: int) -> list[Obj]:
    """The OpenMPI env of the launcher's ``node`` container, in Go's order."""
    return [
        {"name": OPENMPI_HOSTFILE_ENV, "value": f"{HOSTFILE_DIR}/{HOSTFILE_KEY}"},
        {"name": OPENMPI_KEEP_FQDN_ENV, "value": "true"},
        {"name": OPENMPI_DEFAULT_SLOTS_ENV, "value": str(slots)},
        {"name": OPENMPI_RSH_ARGS_ENV, "value": OPENMPI_RSH_ARGS},
    ]


def hostfile(jobset: Obj, policy: MPIPolicy, slots: int) -> str:
    """The hostfile text: ``<tj>-<job>-<replica>-<pod>.<subdomain> slots=<n>`` for every pod of
    job ``node`` (and of ``launcher`` with ``runLauncherAsNode``), in the JobSet's job order;
    empty for an implementation other than OpenMPI (Go writes no line for one)."""
    if policy.implementation != OPENMPI:
        return ""
    meta = jobset.get("metadata") or {}
    spec = jobset.get("spec") or {}
    name = str(meta.get("name", ""))
    subdomain = (spec.get("network") or {}).get("subdomain") or name
    lines: list[str] = []
    for rjob in spec.get("replicatedJobs") or []:
        job_name = rjob.get("name")
        if job_name != NODE and not (policy.run_launcher_as_node and job_name == LAUNCHER):
            continue
        replicas = rjob.get("replicas")
        parallelism = ((rjob.get("template") or {}).get("spec") or {}).get("parallelism")
        pods = max(1 if parallelism is None else int(parallelism), 1)
        for replica in range(1 if replicas is None else int(replicas)):
            for pod in range(pods):
                lines.append(f"{name}-{job_name}-{replica}-{pod}.{subdomain} slots={slots}\n")
    return "".join(lines)
