"""MPIJob v1: launcher + workers driven through ``kubectl exec`` (reference 1.7).

No services. Per job the controller also applies a ConfigMap ``<job>-config`` (``hostfile``,
``kubexec.sh``, ``discover_hosts.sh``), and for the launcher a ServiceAccount, a Role allowed to
exec into exactly the job's workers, and a RoleBinding. The texts are the reference's, byte for
byte.

Decisions:
- the launcher pod carries ``replica-index: "0"`` (the reference omits it) so that every kind's
  pods are planned by index the same way; selectors of the reference still match;
- a launcher template that names its own ``serviceAccountName`` keeps it: no ServiceAccount is
  created (the user's is not taken over) and the RoleBinding binds the user's account;
- Failed pods are not re-created (the reference's MPI pod loop has none); a failed launcher fails
  the job with the pod's reason (``Evicted`` -> ``MPIJobEvicted``) or ``MPIJobFailed``, an evicted
  worker fails it with ``MPIJobEvicted``, any other failed pod fails it with ``MPIJobFailed``
  (the reference set a Restarting condition for ExitCode that nothing acted on).
"""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import MPIJOB
from kubetrain.reconcilers.common.decision import StatusWork
from kubetrain.reconcilers.common.jobs import name_of, namespace_of
from kubetrain.reconcilers.common.naming import general_name, owner_reference
from kubetrain.reconcilers.common.replica_status import pods_of_type
from kubetrain.reconcilers.kinds.base import BaseAdapter, DomainOptions, env

LAUNCHER_SUFFIX = "-launcher"
CONFIG_SUFFIX = "-config"
CONFIG_VOLUME = "mpi-job-config"
CONFIG_MOUNT = "/etc/mpi"
KUBECTL_VOLUME = "mpi-job-kubectl"
KUBECTL_MOUNT = "/opt/kube"
KUBECTL_DELIVERY = "kubectl-delivery"
MODE_SCRIPT = 0o555
MODE_HOSTFILE = 0o444


def slots_per_worker(job: Obj) -> int:
    slots = job.get("spec", {}).get("slotsPerWorker")
    return 1 if slots is None else int(slots)


def worker_replicas(job: Obj) -> int:
    worker = (job.get("spec", {}).get("mpiReplicaSpecs") or {}).get("Worker") or {}
    return int(worker.get("replicas") or 0)


def is_gpu_launcher(job: Obj) -> bool:
    """A launcher container limits a resource ending in ``.com/gpu`` or containing ``gpu``."""
    launcher = (job.get("spec", {}).get("mpiReplicaSpecs") or {}).get("Launcher") or {}
    for c in (launcher.get("template") or {}).get("spec", {}).get("containers") or []:
        for key in (c.get("resources") or {}).get("limits") or {}:
            if key.endswith(".com/gpu") or "gpu" in key:
                return True
    return False


def kubexec_script(job: Obj) -> str:
    text = f"#!/bin/sh\nset -x\nPOD_NAME=$1\nshift\n{KUBECTL_MOUNT}/kubectl exec ${{POD_NAME}}"
    main = job.get("spec", {}).get("mainContainer")
    if main:
        text += f" --container {main}"
    return text + ' -- /bin/sh -c "$*"'


def hostfile(job: Obj) -> str:
    name, slots = name_of(job), slots_per_worker(job)
    text = f"{name}{LAUNCHER_SUFFIX} slots={slots}\n" if is_gpu_launcher(job) else ""
    for i in range(worker_replicas(job)):
        text += f"{name}-worker-{i} slots={slots}\n"
    return text


def discover_hosts(job: Obj, pods: list[Obj]) -> str:
    """``#!/bin/sh`` + ``echo <pod>:<slots>`` per Running worker of this job, sorted by name."""
    name, slots = name_of(job), slots_per_worker(job)
    text = "#!/bin/sh"
    if is_gpu_launcher(job):
        text += f"\necho {name}{LAUNCHER_SUFFIX}:{slots}\n"
    running = sorted(
        p["metadata"]["name"]
        for p in pods_of_type(pods, "Worker")
        if p.get("status", {}).get("phase") == "Running"
    )
    for pod_name in running:
        text += f"\necho {pod_name}:{slots}"
    return text


def _meta(job: Obj, name: str) -> Obj:
    return {
        "name": name,
        "namespace": namespace_of(job),
        "labels": {"app": name_of(job)},
        "ownerReferences": [owner_reference(MPIJOB, job)],
    }


def config_map(job: Obj, pods: list[Obj]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(job, name_of(job) + CONFIG_SUFFIX),
        "data": {
            "hostfile": hostfile(job),
            "kubexec.sh": kubexec_script(job),
            "discover_hosts.sh": discover_hosts(job, pods),
        },
    }


def launcher_service_account_name(job: Obj) -> str:
    launcher = (job.get("spec", {}).get("mpiReplicaSpecs") or {}).get("Launcher") or {}
    own: str = (launcher.get("template") or {}).get("spec", {}).get("serviceAccountName") or ""
    return own or name_of(job) + LAUNCHER_SUFFIX


def launcher_rbac(job: Obj) -> list[Obj]:
    """[ServiceAccount (unless the template names one), Role, RoleBinding]."""
    name = name_of(job) + LAUNCHER_SUFFIX
    sa_name = launcher_service_account_name(job)
    out: list[Obj] = []
    if sa_name == name:
        out.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(job, name)})
    workers = [f"{name_of(job)}-worker-{i}" for i in range(worker_replicas(job))]
    exec_rule: Obj = {"verbs": ["create"], "apiGroups": [""], "resources": ["pods/exec"]}
    if workers:
        exec_rule["resourceNames"] = workers
    out.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(job, name),
            "rules": [
                {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]},
                exec_rule,
            ],
        }
    )
    out.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(job, name),
            "subjects": [
                {"kind": "ServiceAccount", "name": sa_name, "namespace": namespace_of(job)}
            ],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        }
    )
    return out


def _config_volume(job: Obj, items: list[tuple[str, int]]) -> Obj:
    return {
        "name": CONFIG_VOLUME,
        "configMap": {
            "name": name_of(job) + CONFIG_SUFFIX,
            "items": [{"key": k, "path": k, "mode": m} for k, m in items],
        },
    }


class MPIAdapter(BaseAdapter):
    kind = MPIJOB
    needs_services = False
    restarts_failed_pods = False

    def pod_name(self, job_name: str, rtype: str, index: int) -> str:
        if rtype == "Launcher":
            return job_name + LAUNCHER_SUFFIX
        return general_name(job_name, rtype, index)

    def is_master_role(self, job: Obj, rtype: str, index: int) -> bool:
        return rtype == "Launcher"

    def decorate_pod(
        self, job: Obj, rtype: str, index: int, pod: Obj, options: DomainOptions
    ) -> None:
        spec = pod["spec"]
        containers = spec.get("containers") or []
        if not containers:
            return
        main = containers[0]
        if rtype == "Worker":
            if not main.get("command"):
                main["command"] = ["sleep"]
                main["args"] = ["365d"]
            main["volumeMounts"] = [
                *(main.get("volumeMounts") or []),
                {"name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT},
            ]
            spec["volumes"] = [
                *(spec.get("volumes") or []),
                _config_volume(job, [("kubexec.sh", MODE_SCRIPT)]),
            ]
            return
        self._decorate_launcher(job, pod, main, options)

    def _decorate_launcher(self, job: Obj, pod: Obj, main: Obj, options: DomainOptions) -> None:
        spec = pod["spec"]
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = name_of(job) + LAUNCHER_SUFFIX
        resources = {"cpu": "100m", "memory": "512Mi", "ephemeral-storage": "5Gi"}
        spec["initContainers"] = [
            *(spec.get("initContainers") or []),
            {
                "name": KUBECTL_DELIVERY,
                "image": options.mpi_kubectl_delivery_image,
                "imagePullPolicy": "IfNotPresent",
                "env": [env("TARGET_DIR", KUBECTL_MOUNT), env("NAMESPACE", namespace_of(job))],
                "volumeMounts": [
                    {"name": KUBECTL_VOLUME, "mountPath": KUBECTL_MOUNT},
                    {"name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT},
                ],
                "resources": {"limits": dict(resources), "requests": dict(resources)},
            },
        ]
        user_env = main.get("env") or []
        user_names = {e.get("name") for e in user_env}
        added = [
            env("OMPI_MCA_plm_rsh_agent", f"{CONFIG_MOUNT}/kubexec.sh"),
            env("OMPI_MCA_orte_default_hostfile", f"{CONFIG_MOUNT}/hostfile"),
        ]
        if not is_gpu_launcher(job):
            added += [env("NVIDIA_VISIBLE_DEVICES", ""), env("NVIDIA_DRIVER_CAPABILITIES", "")]
        for var, value in (
            ("I_MPI_HYDRA_BOOTSTRAP", "rsh"),
            ("I_MPI_HYDRA_BOOTSTRAP_EXEC", f"{CONFIG_MOUNT}/kubexec.sh"),
        ):
            if var not in user_names:
                added.append(env(var, value))
        main["env"] = [*user_env, *added]
        main["volumeMounts"] = [
            *(main.get("volumeMounts") or []),
            {"name": KUBECTL_VOLUME, "mountPath": KUBECTL_MOUNT},
            {"name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT},
        ]
        spec["volumes"] = [
            *(spec.get("volumes") or []),
            {"name": KUBECTL_VOLUME, "emptyDir": {}},
            _config_volume(
                job,
                [
                    ("kubexec.sh", MODE_SCRIPT),
                    ("hostfile", MODE_HOSTFILE),
                    ("discover_hosts.sh", MODE_SCRIPT),
                ],
            ),
        ]

    def update_status(self, work: StatusWork, job: Obj, pods: list[Obj]) -> None:
        name, ns = name_of(job), namespace_of(job)
        workers = [p for p in pods_of_type(pods, "Worker") if not _terminating(p)]
        for pod in workers:
            status = pod.get("status", {})
            if status.get("phase") == "Failed" and status.get("reason") == "Evicted":
                work.fail(
                    f"MPIJob {ns}/{name} has failed because worker pod "
                    f"{pod['metadata']['name']} was evicted.",
                    reason="MPIJobEvicted",
                )
                return
        launcher = next((p for p in pods_of_type(pods, "Launcher") if not _terminating(p)), None)
        if launcher is not None:
            status = launcher.get("status", {})
            phase = status.get("phase")
            if phase == "Succeeded":
                work.succeed(f"MPIJob {ns}/{name} successfully completed.")
                return
            if phase == "Failed":
                pod_reason = status.get("reason") or ""
                reason = (
                    "MPIJobEvicted" if pod_reason == "Evicted" else pod_reason or "MPIJobFailed"
                )
                message = status.get("message") or (
                    f"MPIJob {ns}/{name} has failed because launcher pod failed."
                )
                work.fail(message, reason=reason)
                return
            running_workers = sum(
                1 for p in workers if p.get("status", {}).get("phase") == "Running"
            )
            if phase == "Running" and running_workers == worker_replicas(job):
                work.running(f"MPIJob {ns}/{name} is running.")
        failed_workers = [p for p in workers if p.get("status", {}).get("phase") == "Failed"]
        if failed_workers:
            work.fail(
                f"MPIJob {name} is failed because {len(failed_workers)} Worker replica(s) failed."
            )

    def extra_objects(self, job: Obj, pods: list[Obj], options: DomainOptions) -> list[Obj]:
        return [config_map(job, pods), *launcher_rbac(job)]


def _terminating(pod: Obj) -> bool:
    return bool(pod.get("metadata", {}).get("deletionTimestamp"))


MPI = MPIAdapter()
