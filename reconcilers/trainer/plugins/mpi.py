"""Trainer v2.3.0's MPI plugin: the hostfile ConfigMap and the SSH Secret beside the JobSet, and
the names, volumes and env the JobSet build's MPI branch puts on the ``node`` and ``launcher``
jobs (``pkg/runtime/framework/plugins/mpi/mpi.go``).

Why a plugin module: ``deepspeed-distributed`` and ``mlx-distributed`` run ``mpirun`` in the
launcher pod, which reaches every node pod over SSH and reads the hosts from a hostfile. Both
files come from objects that are not part of the JobSet: a ConfigMap ``<tj>-mpi-hostfile``
(key ``hostfile``, one ``<endpoint> slots=<n>`` line per node pod, plus the launcher's own when
``runLauncherAsNode``) and an immutable ``kubernetes.io/ssh-auth`` Secret ``<tj>-mpi-ssh-auth``
holding a fresh ECDSA P-521 key pair. Every pod of the two jobs mounts the Secret; the launcher
also mounts the hostfile at ``/etc/mpi`` and gets the ``OMPI_MCA_*`` env that points OpenMPI at it.

The builder is pure, so it cannot ask the API server whether the Secret exists as Go does before
generating a key; the Secret is returned in ``created`` (the reconciler's create answers 409 once
it exists, and the first key stays). The ConfigMap is ``applied``, so a count changed while the
TrainJob is suspended reaches the hostfile.

The hostfile is read off the JobSet the build produced (counts, ``replicas``, the network
subdomain), so it always names the pods that JobSet makes. Validation (reserved ``OMPI_*`` env,
``numNodes >= 2`` needing both jobs) is the TrainJob webhook's, not this module's.
"""

from __future__ import annotations

import base64

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.mpiv2.objects import generate_ssh_key_pair
from kubetrain.reconcilers.trainer.jobset_build import runtime_resources_per_node
from kubetrain.reconcilers.trainer.mpi_policy import (
    HOSTFILE_KEY,
    SSH_AUTH_SECRET_TYPE,
    SSH_PRIVATE_KEY,
    SSH_PUBLIC_KEY,
    hostfile,
    hostfile_configmap_name,
    mpi_policy,
    mpi_slots,
    ssh_auth_secret_name,
)
from kubetrain.reconcilers.trainer.side_objects import SideObjects, side_object_metadata

__all__ = ["build_mpi_objects", "new_ssh_auth_secret"]


def build_mpi_objects(trainjob: Obj, runtime_spec: Obj, jobset: Obj) -> SideObjects:
    """The ``SideObjectBuilder``: for an MPI runtime, the hostfile ConfigMap (applied) and a new
    SSH Secret (created once); nothing for any other runtime."""
    policy = mpi_policy(runtime_spec.get("mlPolicy"))
    if policy is None:
        return SideObjects()
    name = str((trainjob.get("metadata") or {}).get("name", ""))
    trainer = (trainjob.get("spec") or {}).get("trainer")
    slots = mpi_slots(policy, trainer, runtime_resources_per_node(jobset.get("spec") or {}))
    configmap: Obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": side_object_metadata(trainjob, hostfile_configmap_name(name)),
        "data": {HOSTFILE_KEY: hostfile(jobset, policy, slots)},
    }
    return SideObjects(applied=[configmap], created=[new_ssh_auth_secret(trainjob)])


def new_ssh_auth_secret(trainjob: Obj) -> Obj:
    """``<tj>-mpi-ssh-auth``: immutable, ``kubernetes.io/ssh-auth``, a fresh ECDSA P-521 pair
    (PEM ``EC PRIVATE KEY``; the OpenSSH public key line), base64 in ``data``."""
    private_pem, public = generate_ssh_key_pair()
    name = str((trainjob.get("metadata") or {}).get("name", ""))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": side_object_metadata(trainjob, ssh_auth_secret_name(name)),
        "type": SSH_AUTH_SECRET_TYPE,
        "immutable": True,
        "data": {
            SSH_PRIVATE_KEY: base64.b64encode(private_pem).decode("ascii"),
            SSH_PUBLIC_KEY: base64.b64encode(public).decode("ascii"),
        },
    }
