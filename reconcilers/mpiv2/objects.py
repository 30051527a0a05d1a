"""The children of a ``kubeflow.org/v2beta1`` MPIJob, built as mpi-operator v0.8.2 builds them.

Users move MPIJobs between mpi-operator and kubetrain; their images, Kueue and their scripts read
the names, labels, environment, volumes and hostfile lines the Go controller
(``pkg/controller/mpi_job_controller.go``) writes, so each builder here reproduces one Go function
field for field: ``newConfigMap``, ``updateDiscoverHostsInConfigMap``, ``newJobService``,
``newSSHAuthSecret``, ``newWorker``, ``newLauncherPodTemplate``, ``newLauncherJob``,
``syncLauncherSchedulingDirectives`` and the small predicates next to them.

Everything is pure: objects are plain dicts as parsed from JSON, arguments come from a shared cache
and are never mutated (templates are deep-copied before they are changed), and nothing talks to
the API server. Dicts follow the JSON Go marshals: a field Go leaves at its zero value with
``omitempty`` is absent. The async reconciler decides what to create, update or delete.

The MPIJob passed in is already defaulted (slotsPerWorker, sshAuthMountPath, mpiImplementation,
launcherCreationPolicy, each replica's replicas and restartPolicy, runPolicy.cleanPodPolicy). It is
stored as ``kubeflow.org/v1``, but children name their owner ``kubeflow.org/v2beta1`` as
mpi-operator does, so tools that walk owner references see the API the user wrote.

Gang scheduling (PodGroups, schedulerName) is not part of this module.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kubetrain.base.objects import Obj

# -- identity ------------------------------------------------------------------------------------

API_VERSION = "kubeflow.org/v2beta1"
KIND = "MPIJob"
OPERATOR_NAME = "mpi-operator"
CONTROLLER_AGENT_NAME = "mpi-job-controller"
"""The event source component mpi-operator records events under."""

LAUNCHER = "launcher"
WORKER = "worker"
LAUNCHER_REPLICA_TYPE = "Launcher"
WORKER_REPLICA_TYPE = "Worker"

# -- names ---------------------------------------------------------------------------------------

LAUNCHER_SUFFIX = "-launcher"
WORKER_SUFFIX = "-worker"
CONFIG_SUFFIX = "-config"
SSH_AUTH_SUFFIX = "-ssh"

CONFIG_VOLUME = "mpi-job-config"
CONFIG_MOUNT_PATH = "/etc/mpi"
HOSTFILE_KEY = "hostfile"
DISCOVER_HOSTS_KEY = "discover_hosts.sh"

SSH_AUTH_VOLUME = "ssh-auth"
ROOT_SSH_PATH = "/root/.ssh"
SSH_PRIVATE_KEY = "ssh-privatekey"
"""``corev1.SSHAuthPrivateKey``: the key a ``kubernetes.io/ssh-auth`` Secret must hold."""
SSH_PUBLIC_KEY = "ssh-publickey"
SSH_PRIVATE_KEY_FILE = "id_rsa"
SSH_PUBLIC_KEY_FILE = SSH_PRIVATE_KEY_FILE + ".pub"
SSH_AUTHORIZED_KEYS_FILE = "authorized_keys"
SSH_AUTH_SECRET_TYPE = "kubernetes.io/ssh-auth"

# -- labels --------------------------------------------------------------------------------------

OPERATOR_NAME_LABEL = "training.kubeflow.org/operator-name"
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
JOB_ROLE_LABEL = "training.kubeflow.org/job-role"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"
APP_LABEL = "app"

# -- spec values ---------------------------------------------------------------------------------

OPENMPI = "OpenMPI"
INTEL = "Intel"
MPICH = "MPICH"

LAUNCHER_CREATION_AT_STARTUP = "AtStartup"
LAUNCHER_CREATION_WAIT_FOR_WORKERS_READY = "WaitForWorkersReady"

CLEAN_POD_POLICY_ALL = "All"
CLEAN_POD_POLICY_RUNNING = "Running"
CLEAN_POD_POLICY_NONE = "None"

RESTART_POLICY_EXIT_CODE = "ExitCode"

DEFAULT_WORKER_COMMAND = ("/usr/sbin/sshd", "-De")
DNS_CLUSTER_FIRST_WITH_HOST_NET = "ClusterFirstWithHostNet"

OPENMPI_SLOTS_ENV = "OMPI_MCA_orte_set_default_slots"
INTEL_MPI_SLOTS_ENV = "I_MPI_PERHOST"
ROLE_ENV = "K_MPI_JOB_ROLE"

POD_TEMPLATE_RESTART_POLICY_REASON = "SetPodTemplateRestartPolicy"
POD_TEMPLATE_RESTART_POLICY_MESSAGE = (
    "Restart policy in pod template overridden by restart policy in replica spec"
)

_DECIMAL = re.compile(r"[+-]?[0-9]+")
_HOSTFILE_PATH = f"{CONFIG_MOUNT_PATH}/{HOSTFILE_KEY}"
_CONNECTION_ATTEMPTS = "-o ConnectionAttempts=10"


def _ssh_volume_items() -> list[dict[str, Any]]:
    return [
        {"key": SSH_PRIVATE_KEY, "path": SSH_PRIVATE_KEY_FILE},
        {"key": SSH_PUBLIC_KEY, "path": SSH_PUBLIC_KEY_FILE},
        {"key": SSH_PUBLIC_KEY, "path": SSH_AUTHORIZED_KEYS_FILE},
    ]


def _config_volume_items() -> list[dict[str, Any]]:
    return [
        {"key": HOSTFILE_KEY, "path": HOSTFILE_KEY, "mode": 0o444},
        {"key": DISCOVER_HOSTS_KEY, "path": DISCOVER_HOSTS_KEY, "mode": 0o555},
    ]


def _implementation_env(implementation: str, slots: int) -> list[dict[str, Any]]:
    """The launcher's environment for one MPI implementation (none for an unknown one)."""
    if implementation == OPENMPI:
        return [
            {"name": "OMPI_MCA_orte_keep_fqdn_hostnames", "value": "true"},
            {"name": "OMPI_MCA_orte_default_hostfile", "value": _HOSTFILE_PATH},
            {"name": "OMPI_MCA_plm_rsh_args", "value": _CONNECTION_ATTEMPTS},
            {"name": OPENMPI_SLOTS_ENV, "value": str(slots)},
        ]
    if implementation == INTEL:
        return [
            {"name": "I_MPI_HYDRA_HOST_FILE", "value": _HOSTFILE_PATH},
            {"name": "I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS", "value": _CONNECTION_ATTEMPTS},
            {"name": INTEL_MPI_SLOTS_ENV, "value": str(slots)},
        ]
    if implementation == MPICH:
        return [
            {"name": "HYDRA_HOST_FILE", "value": _HOSTFILE_PATH},
            {"name": "HYDRA_LAUNCH_EXTRA_ARGS", "value": _CONNECTION_ATTEMPTS},
        ]
    return []


def _nvidia_disable_env() -> list[dict[str, Any]]:
    # Empty values, so a launcher that does not compute cannot grab GPUs by accident.
    return [{"name": "NVIDIA_VISIBLE_DEVICES"}, {"name": "NVIDIA_DRIVER_CAPABILITIES"}]


# -- reading the MPIJob --------------------------------------------------------------------------


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name") or "")


def _namespace(obj: Obj) -> str:
    return str(_meta(obj).get("namespace") or "")


def _spec(job: Obj) -> Mapping[str, Any]:
    spec = job.get("spec")
    return spec if isinstance(spec, dict) else {}


def _run_policy(job: Obj) -> Mapping[str, Any]:
    policy = _spec(job).get("runPolicy")
    return policy if isinstance(policy, dict) else {}


def replica_spec(job: Obj, replica_type: str) -> Mapping[str, Any] | None:
    """``spec.mpiReplicaSpecs[replica_type]`` (``Launcher`` or ``Worker``), or None."""
    specs = _spec(job).get("mpiReplicaSpecs")
    if not isinstance(specs, dict):
        return None
    rspec = specs.get(replica_type)
    return rspec if isinstance(rspec, dict) else None


def slots_per_worker(job: Obj) -> int:
    """``spec.slotsPerWorker``, 1 when unset (the API default)."""
    slots = _spec(job).get("slotsPerWorker")
    return 1 if slots is None else int(slots)


def mpi_implementation(job: Obj) -> str:
    """``spec.mpiImplementation``; ``OpenMPI`` when unset (the API default)."""
    return str(_spec(job).get("mpiImplementation") or OPENMPI)


def ssh_auth_mount_path(job: Obj) -> str:
    """``spec.sshAuthMountPath``; ``/root/.ssh`` when unset (the API default)."""
    return str(_spec(job).get("sshAuthMountPath") or ROOT_SSH_PATH)


def launcher_creation_policy(job: Obj) -> str:
    """``spec.launcherCreationPolicy``; ``AtStartup`` when unset (the API default)."""
    return str(_spec(job).get("launcherCreationPolicy") or LAUNCHER_CREATION_AT_STARTUP)


def run_launcher_as_worker(job: Obj) -> bool:
    """``spec.runLauncherAsWorker``: the launcher also runs ranks and is listed as a host."""
    return bool(_spec(job).get("runLauncherAsWorker"))


def is_mpijob_suspended(job: Obj) -> bool:
    """``spec.runPolicy.suspend``."""
    return bool(_run_policy(job).get("suspend"))


def clean_pod_policy(job: Obj) -> str | None:
    """``spec.runPolicy.cleanPodPolicy`` (defaulted to ``None`` by the API)."""
    policy = _run_policy(job).get("cleanPodPolicy")
    return None if policy is None else str(policy)


# -- identity of children ------------------------------------------------------------------------


def owner_reference(job: Obj) -> dict[str, Any]:
    """The controller reference every child carries (``metav1.NewControllerRef``), naming
    ``kubeflow.org/v2beta1`` whatever version the job was read in."""
    meta = _meta(job)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": str(meta.get("name") or ""),
        "uid": str(meta.get("uid") or ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def default_labels(job_name: str, role: str) -> dict[str, str]:
    """The operator, job-name and job-role labels of the launcher's and workers' pods."""
    return {
        OPERATOR_NAME_LABEL: OPERATOR_NAME,
        JOB_NAME_LABEL: job_name,
        JOB_ROLE_LABEL: role,
    }


def worker_selector(job_name: str) -> dict[str, str]:
    """The labels every worker pod of the job carries; match them to list the job's workers."""
    return default_labels(job_name, WORKER)


def worker_replicas(job: Obj) -> int:
    """``mpiReplicaSpecs.Worker.replicas``; 0 when there is no Worker spec or no count."""
    rspec = replica_spec(job, WORKER_REPLICA_TYPE)
    if rspec is None or rspec.get("replicas") is None:
        return 0
    return int(rspec["replicas"])


def worker_name(job: Obj, index: int) -> str:
    """``<job>-worker-<index>``."""
    return f"{_name(job)}{WORKER_SUFFIX}-{index}"


def launcher_name(job: Obj) -> str:
    """``<job>-launcher``: the launcher Job, and the hostname of its pod."""
    return _name(job) + LAUNCHER_SUFFIX


def config_map_name(job: Obj) -> str:
    """``<job>-config``."""
    return _name(job) + CONFIG_SUFFIX


def ssh_secret_name(job: Obj) -> str:
    """``<job>-ssh``."""
    return _name(job) + SSH_AUTH_SUFFIX


def service_name(job: Obj) -> str:
    """The headless Service is named like the job (it is the pods' subdomain)."""
    return _name(job)


def worker_replica_index_label(job: Obj, index: int) -> str:
    """The replica-index label of worker ``index``: shifted by one when the launcher is rank
    holder 0, so every pod of the job has a distinct index (Kueue's TAS needs that)."""
    return str(index + 1 if run_launcher_as_worker(job) else index)


def _child_meta(job: Obj, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": _namespace(job),
        "labels": {APP_LABEL: _name(job)},
        "ownerReferences": [owner_reference(job)],
    }


# -- ConfigMap -----------------------------------------------------------------------------------


def _domain(host: str, job_name: str, namespace: str, cluster_domain: str) -> str:
    fqdn = f"{host}.{job_name}.{namespace}.svc"
    return f"{fqdn}.{cluster_domain}" if cluster_domain else fqdn


def _hostfile_line(job: Obj, fqdn: str, slots: int) -> str:
    implementation = _spec(job).get("mpiImplementation") or ""
    if implementation == OPENMPI:
        return f"{fqdn} slots={slots}\n"
    if implementation in (INTEL, MPICH):
        return f"{fqdn}:{slots}\n"
    return ""


def new_config_map(job: Obj, worker_replicas: int, *, cluster_domain: str = "") -> Obj:
    """``<job>-config`` with the ``hostfile`` (launcher first when it runs as a worker).

    OpenMPI lines read ``<host> slots=<n>``, Intel MPI and MPICH ``<host>:<n>``; an unknown
    implementation yields an empty hostfile, as in Go. ``discover_hosts.sh`` is added by
    ``with_discover_hosts``.
    """
    name, namespace = _name(job), _namespace(job)
    slots = slots_per_worker(job)
    lines: list[str] = []
    if run_launcher_as_worker(job):
        fqdn = _domain(launcher_name(job), name, namespace, cluster_domain)
        lines.append(_hostfile_line(job, fqdn, slots))
    for i in range(worker_replicas):
        fqdn = _domain(worker_name(job, i), name, namespace, cluster_domain)
        lines.append(_hostfile_line(job, fqdn, slots))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _child_meta(job, config_map_name(job)),
        "data": {HOSTFILE_KEY: "".join(lines)},
    }


def discover_hosts_script(
    job: Obj, running_workers: Sequence[Obj], *, cluster_domain: str = ""
) -> str:
    """The ``discover_hosts.sh`` text: one ``echo <fqdn>`` per pod, sorted by pod name, after
    the launcher's when it runs as a worker. Each pod's own namespace goes into its FQDN."""
    name = _name(job)
    out = ["#!/bin/sh\n"]
    if run_launcher_as_worker(job):
        out.append(f"echo {_domain(launcher_name(job), name, _namespace(job), cluster_domain)}\n")
    for pod in sorted(running_workers, key=_name):
        out.append(f"echo {_domain(_name(pod), name, _namespace(pod), cluster_domain)}\n")
    return "".join(out)


def with_discover_hosts(
    config_map: Obj, job: Obj, running_workers: Sequence[Obj], *, cluster_domain: str = ""
) -> Obj:
    """A copy of ``config_map`` whose ``discover_hosts.sh`` lists ``running_workers``.

    The caller passes the pods it means to list (Go passes the workers in phase Running:
    ``running_pods`` filters them); they are not filtered again here.
    """
    out = dict(config_map)
    data = dict(config_map.get("data") or {})
    data[DISCOVER_HOSTS_KEY] = discover_hosts_script(
        job, running_workers, cluster_domain=cluster_domain
    )
    out["data"] = data
    return out


def desired_config_map(job: Obj, all_workers: Sequence[Obj], *, cluster_domain: str = "") -> Obj:
    """What getOrCreateConfigMap wants: the hostfile for the spec's worker count and the
    discover script over those of ``all_workers`` that are Running."""
    cm = new_config_map(job, worker_replicas(job), cluster_domain=cluster_domain)
    return with_discover_hosts(cm, job, running_pods(all_workers), cluster_domain=cluster_domain)


def config_map_needs_update(existing: Obj, desired: Obj) -> bool:
    """True when the ConfigMap's data differs (an absent and an empty map are equal)."""
    return dict(existing.get("data") or {}) != dict(desired.get("data") or {})


# -- Service -------------------------------------------------------------------------------------


def new_service(job: Obj) -> Obj:
    """The headless Service ``<job>`` fronting the launcher and workers.

    It publishes not-ready addresses only when the launcher runs as a worker, so the launcher's
    name resolves before it is Ready and it does not wait on itself.
    """
    name = _name(job)
    spec: dict[str, Any] = {
        "clusterIP": "None",
        "selector": {OPERATOR_NAME_LABEL: OPERATOR_NAME, JOB_NAME_LABEL: name},
    }
    if run_launcher_as_worker(job):
        spec["publishNotReadyAddresses"] = True
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _child_meta(job, name),
        "spec": spec,
    }


def service_needs_update(existing: Obj, desired: Obj) -> bool:
    """getOrCreateService's test: the selector or publishNotReadyAddresses differ."""
    have = existing.get("spec") or {}
    want = desired.get("spec") or {}
    return dict(have.get("selector") or {}) != dict(want.get("selector") or {}) or bool(
        have.get("publishNotReadyAddresses")
    ) != bool(want.get("publishNotReadyAddresses"))


def with_service_update(existing: Obj, desired: Obj) -> Obj:
    """A copy of ``existing`` with the desired selector and publishNotReadyAddresses."""
    out = copy.deepcopy(existing)
    spec = out.setdefault("spec", {})
    want = desired.get("spec") or {}
    spec["selector"] = dict(want.get("selector") or {})
    if want.get("publishNotReadyAddresses"):
        spec["publishNotReadyAddresses"] = True
    else:
        spec.pop("publishNotReadyAddresses", None)
    return out


# -- SSH Secret ----------------------------------------------------------------------------------


def generate_ssh_key_pair() -> tuple[bytes, bytes]:
    """A fresh ECDSA P-521 key: (PEM ``EC PRIVATE KEY`` in SEC 1 DER, as
    ``x509.MarshalECPrivateKey``; the OpenSSH ``authorized_keys`` line with its newline, as
    ``ssh.MarshalAuthorizedKey``)."""
    key = ec.generate_private_key(ec.SECP521R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private_pem, public + b"\n"


def new_ssh_auth_secret(job: Obj) -> Obj:
    """``<job>-ssh`` of type ``kubernetes.io/ssh-auth`` with a new key pair, base64 in ``data``.

    Every call makes a new key; the reconciler creates the Secret once and keeps it while
    ``ssh_secret_keys_valid`` holds.
    """
    private_pem, public = generate_ssh_key_pair()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _child_meta(job, ssh_secret_name(job)),
        "type": SSH_AUTH_SECRET_TYPE,
        "data": {
            SSH_PRIVATE_KEY: base64.b64encode(private_pem).decode("ascii"),
            SSH_PUBLIC_KEY: base64.b64encode(public).decode("ascii"),
        },
    }


def ssh_secret_keys_valid(secret: Obj) -> bool:
    """getOrCreateSSHAuthSecret's test of an existing Secret: its data has exactly the keys
    ``ssh-privatekey`` and ``ssh-publickey`` (values are not checked). When False, Go replaces
    the Secret's data with a new key pair (``with_new_ssh_keys``)."""
    return sorted((secret.get("data") or {}).keys()) == [SSH_PRIVATE_KEY, SSH_PUBLIC_KEY]


def with_new_ssh_keys(secret: Obj, job: Obj) -> Obj:
    """A copy of ``secret`` whose data is a freshly generated key pair."""
    out = copy.deepcopy(secret)
    out["data"] = new_ssh_auth_secret(job)["data"]
    return out


# -- pods ----------------------------------------------------------------------------------------


def _template(job: Obj, replica_type: str) -> dict[str, Any]:
    rspec = replica_spec(job, replica_type)
    if rspec is None:
        raise ValueError(f"MPIJob {_namespace(job)}/{_name(job)} has no {replica_type} spec")
    template = copy.deepcopy(rspec.get("template") or {})
    if not isinstance(template.get("metadata"), dict):
        template["metadata"] = {}
    if not isinstance(template.get("spec"), dict):
        template["spec"] = {}
    containers = template["spec"].get("containers")
    if not containers:
        raise ValueError(
            f"MPIJob {_namespace(job)}/{_name(job)}: the {replica_type} template has no container"
        )
    return template


def _set_restart_policy(pod_spec: dict[str, Any], rspec: Mapping[str, Any] | None) -> None:
    policy = str((rspec or {}).get("restartPolicy") or "")
    if policy == RESTART_POLICY_EXIT_CODE:
        policy = "Never"
    if policy:
        pod_spec["restartPolicy"] = policy
    else:
        pod_spec.pop("restartPolicy", None)


def _setup_ssh(pod_spec: dict[str, Any], job: Obj) -> None:
    mount_path = ssh_auth_mount_path(job)
    secret: dict[str, Any] = {}
    if mount_path == ROOT_SSH_PATH:
        secret["defaultMode"] = 0o600
    secret["secretName"] = ssh_secret_name(job)
    secret["items"] = _ssh_volume_items()
    pod_spec.setdefault("volumes", []).append({"name": SSH_AUTH_VOLUME, "secret": secret})
    main = pod_spec["containers"][0]
    main.setdefault("volumeMounts", []).append({"name": SSH_AUTH_VOLUME, "mountPath": mount_path})


def _hostname_and_dns(pod_spec: dict[str, Any], job: Obj, hostname: str) -> None:
    pod_spec["hostname"] = hostname
    pod_spec["subdomain"] = _name(job)
    if pod_spec.get("hostNetwork"):
        pod_spec["dnsPolicy"] = DNS_CLUSTER_FIRST_WITH_HOST_NET


def new_worker(job: Obj, index: int) -> Obj:
    """Worker pod ``<job>-worker-<index>`` from the Worker template.

    Template labels and annotations are kept, the default labels and replica-index added; the
    pod is reachable as ``<pod>.<job>`` (hostname, subdomain) and searches
    ``<job>.<ns>.svc.cluster.local`` so Intel MPI and MPICH reach the launcher by hostname. A
    container without command and args runs ``/usr/sbin/sshd -De``.
    """
    name = worker_name(job, index)
    template = _template(job, WORKER_REPLICA_TYPE)
    meta, spec = template["metadata"], template["spec"]
    labels = dict(meta.get("labels") or {})
    labels.update(default_labels(_name(job), WORKER))
    labels[REPLICA_INDEX_LABEL] = worker_replica_index_label(job, index)
    _hostname_and_dns(spec, job, name)
    search = f"{_name(job)}.{_namespace(job)}.svc.cluster.local"
    dns_config = spec.get("dnsConfig")
    if not isinstance(dns_config, dict):
        spec["dnsConfig"] = {"searches": [search]}
    else:
        dns_config["searches"] = [*(dns_config.get("searches") or []), search]
    _set_restart_policy(spec, replica_spec(job, WORKER_REPLICA_TYPE))
    container = spec["containers"][0]
    if not container.get("command") and not container.get("args"):
        container["command"] = list(DEFAULT_WORKER_COMMAND)
    container["env"] = [*(container.get("env") or []), {"name": ROLE_ENV, "value": WORKER}]
    _setup_ssh(spec, job)
    pod_meta: dict[str, Any] = {
        "name": name,
        "namespace": _namespace(job),
        "labels": labels,
    }
    if meta.get("annotations"):
        pod_meta["annotations"] = dict(meta["annotations"])
    pod_meta["ownerReferences"] = [owner_reference(job)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def launcher_restart_policy_warning(job: Obj) -> tuple[str, str, str] | None:
    """The Warning event Go records each time it builds the launcher template from one that
    sets ``restartPolicy`` (the replica's restartPolicy wins): (type, reason, message)."""
    rspec = replica_spec(job, LAUNCHER_REPLICA_TYPE) or {}
    pod_spec = (rspec.get("template") or {}).get("spec") or {}
    if pod_spec.get("restartPolicy"):
        return ("Warning", POD_TEMPLATE_RESTART_POLICY_REASON, POD_TEMPLATE_RESTART_POLICY_MESSAGE)
    return None


def new_launcher_pod_template(job: Obj) -> Obj:
    """The launcher Job's pod template (a PodTemplateSpec).

    The main container gets ``K_MPI_JOB_ROLE=launcher``, the implementation's environment
    (hostfile path, ssh retries, slots), empty ``NVIDIA_*`` variables unless the launcher runs
    as a worker, the SSH volume and the ConfigMap volume (``hostfile`` 0444,
    ``discover_hosts.sh`` 0555) at ``/etc/mpi``. See ``launcher_restart_policy_warning`` for the
    event Go records alongside.
    """
    template = _template(job, LAUNCHER_REPLICA_TYPE)
    meta, spec = template["metadata"], template["spec"]
    labels = dict(meta.get("labels") or {})
    labels.update(default_labels(_name(job), LAUNCHER))
    if run_launcher_as_worker(job):
        labels[REPLICA_INDEX_LABEL] = "0"
    _hostname_and_dns(spec, job, launcher_name(job))
    container = spec["containers"][0]
    env = [*(container.get("env") or []), {"name": ROLE_ENV, "value": LAUNCHER}]
    env.extend(_implementation_env(mpi_implementation(job), slots_per_worker(job)))
    if not run_launcher_as_worker(job):
        env.extend(_nvidia_disable_env())
    container["env"] = env
    _setup_ssh(spec, job)
    _set_restart_policy(spec, replica_spec(job, LAUNCHER_REPLICA_TYPE))
    spec.setdefault("volumes", []).append(
        {
            "name": CONFIG_VOLUME,
            "configMap": {"name": config_map_name(job), "items": _config_volume_items()},
        }
    )
    container.setdefault("volumeMounts", []).append(
        {"name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT_PATH}
    )
    out_meta: dict[str, Any] = {"labels": labels}
    if meta.get("annotations"):
        out_meta["annotations"] = dict(meta["annotations"])
    out_meta["ownerReferences"] = [owner_reference(job)]
    return {"metadata": out_meta, "spec": spec}


def new_launcher_job(job: Obj) -> Obj:
    """The batch/v1 Job ``<job>-launcher`` that runs ``mpirun``.

    ttlSecondsAfterFinished, activeDeadlineSeconds and backoffLimit come from runPolicy (absent
    when unset: the Job API defaults them); podReplacementPolicy is ``Failed`` so a terminating
    launcher is not doubled; ``suspend: true`` only while the MPIJob is suspended.
    """
    policy = _run_policy(job)
    spec: dict[str, Any] = {}
    for key in ("ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit"):
        if policy.get(key) is not None:
            spec[key] = policy[key]
    spec["template"] = new_launcher_pod_template(job)
    spec["podReplacementPolicy"] = "Failed"
    if is_mpijob_suspended(job):
        spec["suspend"] = True
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _child_meta(job, launcher_name(job)),
        "spec": spec,
    }


def sync_launcher_scheduling_directives(launcher: Obj, desired_template: Obj) -> Obj:
    """A copy of ``launcher`` whose template takes the desired scheduling directives (KEP-2926):
    labels and annotations merged (desired wins), nodeSelector, tolerations and schedulingGates
    replaced (absent when the desired template has none). Used when unsuspending, so what Kueue
    injected into the MPIJob reaches the launcher."""
    out = copy.deepcopy(launcher)
    spec = out.setdefault("spec", {})
    template = spec.setdefault("template", {})
    meta = template.setdefault("metadata", {})
    want_meta = desired_template.get("metadata") or {}
    for key in ("labels", "annotations"):
        merged = {**(meta.get(key) or {}), **(want_meta.get(key) or {})}
        meta[key] = merged
    pod_spec = template.setdefault("spec", {})
    want_spec = desired_template.get("spec") or {}
    for key in ("nodeSelector", "tolerations", "schedulingGates"):
        if want_spec.get(key) is not None:
            pod_spec[key] = copy.deepcopy(want_spec[key])
        else:
            pod_spec.pop(key, None)
    return out


def with_launcher_suspend(launcher: Obj, suspend: bool) -> Obj:
    """A copy of ``launcher`` with ``spec.suspend`` set (Go writes the pointer either way)."""
    out = copy.deepcopy(launcher)
    out.setdefault("spec", {})["suspend"] = suspend
    return out


# -- predicates ----------------------------------------------------------------------------------


def _job_condition(batch_job: Obj, condition_type: str) -> Mapping[str, Any] | None:
    for cond in (batch_job.get("status") or {}).get("conditions") or ():
        if cond.get("type") == condition_type:
            return dict(cond)
    return None


def job_condition(batch_job: Obj, condition_type: str) -> Mapping[str, Any] | None:
    """The first condition of ``condition_type`` of a batch/v1 Job, or None."""
    return _job_condition(batch_job, condition_type)


def is_job_succeeded(job: Obj) -> bool:
    """The batch/v1 Job has ``Complete=True``."""
    cond = _job_condition(job, "Complete")
    return cond is not None and cond.get("status") == "True"


def is_job_failed(job: Obj) -> bool:
    """The batch/v1 Job has ``Failed=True``."""
    cond = _job_condition(job, "Failed")
    return cond is not None and cond.get("status") == "True"


def is_job_finished(job: Obj) -> bool:
    """The batch/v1 Job (the launcher) succeeded or failed."""
    return is_job_succeeded(job) or is_job_failed(job)


def is_job_suspended(batch_job: Obj) -> bool:
    """``spec.suspend`` of a batch/v1 Job."""
    return bool((batch_job.get("spec") or {}).get("suspend"))


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_pod_running(pod: Obj) -> bool:
    return _phase(pod) == "Running"


def is_pod_pending(pod: Obj) -> bool:
    return _phase(pod) == "Pending"


def is_pod_failed(pod: Obj) -> bool:
    return _phase(pod) == "Failed"


def is_pod_ready(pod: Obj) -> bool:
    """The pod has ``Ready=True``."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )


def running_pods(pods: Sequence[Obj]) -> list[Obj]:
    """The pods in phase Running, in the given order."""
    return [p for p in pods if is_pod_running(p)]


def count_running_pods(pods: Sequence[Obj]) -> int:
    return sum(1 for p in pods if is_pod_running(p))


def count_ready_pods(pods: Sequence[Obj]) -> int:
    return sum(1 for p in pods if is_pod_ready(p))


def should_create_launcher(job: Obj, workers: Sequence[Obj]) -> bool:
    """Create the launcher now: at startup, or once every worker is Ready."""
    return launcher_creation_policy(job) == LAUNCHER_CREATION_AT_STARTUP or count_ready_pods(
        workers
    ) == len(workers)


def is_clean_up_pods(clean_pod_policy: str | None) -> bool:
    """Workers are deleted when the job finishes under cleanPodPolicy ``All`` or ``Running``."""
    return clean_pod_policy in (CLEAN_POD_POLICY_ALL, CLEAN_POD_POLICY_RUNNING)


def keep_worker_on_cleanup(job: Obj, pod: Obj) -> bool:
    """deleteWorkerPods keeps a pod only under cleanPodPolicy ``Running`` when it is neither
    Running nor Pending (a Pending pod could still start). Applies on suspend too."""
    return (
        clean_pod_policy(job) == CLEAN_POD_POLICY_RUNNING
        and not is_pod_running(pod)
        and not is_pod_pending(pod)
    )


def scale_down_victims(job: Obj, workers: Sequence[Obj]) -> list[Obj]:
    """Workers getOrCreateWorker deletes when there are more pods than replicas: those whose
    replica-index label is >= replicas.

    Faithful to Go: the label is compared as written, so with runLauncherAsWorker (labels shifted
    by one) the highest wanted worker is deleted too and recreated. A label that is not a decimal
    number is skipped. A pod without the label ends the scan: Go returns from the whole worker
    pass there, with no error and no workers (``has_unlabelled_worker`` tells the caller).
    """
    replicas = worker_replicas(job)
    if len(workers) <= replicas:
        return []
    victims: list[Obj] = []
    for pod in workers:
        raw = (_meta(pod).get("labels") or {}).get(REPLICA_INDEX_LABEL)
        if raw is None:
            break
        if not isinstance(raw, str) or not _DECIMAL.fullmatch(raw):
            continue
        if int(raw) >= replicas:
            victims.append(pod)
    return victims


def has_unlabelled_worker(job: Obj, workers: Sequence[Obj]) -> bool:
    """True when Go's scale-down scan would meet a worker without the replica-index label (only
    looked at when there are more worker pods than replicas)."""
    if len(workers) <= worker_replicas(job):
        return False
    return any(REPLICA_INDEX_LABEL not in (_meta(p).get("labels") or {}) for p in workers)
