"""TrainJob + (Cluster)TrainingRuntime spec -> the JobSet Kubeflow Trainer v2.3.0 applies for it.

Why a pure step: the TrainJob controller only has to fetch the runtime (or its snapshot), call
``build_jobset`` and server-side apply the result; everything Trainer's plugin framework decides
about the JobSet's shape is here, testable without a cluster, and a Go behaviour that matters
(env order, which job gets ``numNodes``, what a patch may change) is written once.

The build follows ``pkg/runtime/core/trainingruntime.go`` (``newRuntimeInfo``, then the
framework's phases) and its plugins, in this order:

1. JobSet labels and annotations: the template's ``metadata`` merged with each runtimePatch's
   ``trainingRuntimeSpec.template.metadata``, in list order.
2. Each runtimePatch's ``trainingRuntimeSpec.template.spec`` applied to the template's JobSetSpec
   as a strategic merge patch (``strategic_merge.py``), in list order; then the replicatedJobs are
   put back in the runtime's order.
3. One PodSet per replicatedJob: count = ``parallelism`` (default 1), or ``mlPolicy.numNodes``
   (default 1) for the job labelled ``trainjob-ancestor-step: trainer`` when the runtime has an
   mlPolicy; never below 1. ``trainer.resourcesPerNode`` is merged into that job's container
   ``node`` (limits and requests per resource; resource claims are dropped, as Go's apply
   configuration drops them).
4. The ML policy (EnforceMLPolicy): the TrainJob's ``trainer.numNodes`` replaces the trainer
   count, then torch (``PET_*`` and port 29500, also into ``envInjection`` targets), JAX
   (``JAX_*``), XGBoost (``DMLC_*``) or plain ML (the TrainJob's env only). Plain ML also runs
   for XGBoost (Go runs every plugin whose policy matches; plain ML matches all but torch, MPI
   and JAX); Go's plugin order is a map's, so the env order there is ours: the TrainJob's env,
   then ``DMLC_*``.
5. ``parallelism = completions = count`` on every replicatedJob (SyncParallelCount).
6. The JobSet plugin's Build: initializer jobs ``replicas: 1`` with ``STORAGE_URI``, the
   TrainJob's env and ``envFrom.secretRef``; the trainer job ``replicas: 1``, container ``node``
   image, command, args and env from ``trainjob.spec.trainer``; ``spec.suspend`` = the TrainJob's
   (removed when the TrainJob has none); a controller ownerReference to the TrainJob; the
   JobSet's name and namespace are the TrainJob's.

Env and port lists are upserted as Go's ``pkg/apply`` does: an existing entry with the same
name (env) or the same ``containerPort`` *or* the same name (ports; two unnamed ports count as
the same name, as ``ptr.Equal(nil, nil)`` does) is replaced in place, anything else appended.

MPI (``_enforce_mpi``; the ConfigMap and Secret beside the JobSet are ``plugins/mpi.py``'s):
the TrainJob's ``numNodes`` sets the count of job ``node`` (``numNodes - 1``, at least 1, with
``runLauncherAsNode``; the launcher keeps ``mlPolicy.numNodes``), both jobs mount the SSH Secret
and the launcher the hostfile with the ``OMPI_MCA_*`` env; with ``runLauncherAsNode`` job
``node`` also gets ``resourcesPerNode`` (phase 3) and the TrainJob's env (phase 4, where Go's
JobSet builder adds it: nothing else touches that env in between).

TorchTune (a torch runtime whose TrainJob's ``trainer.command`` is exactly ``tune run``): no
``PET_MASTER_*`` env; the command becomes ``tune run [--rdzv_endpoint=...] <recipe> --config
<model><suffix> <runtime overrides>`` (``torchtune.py`` has the decision table). Gang
scheduling (``podGroupPolicy``): every pod gets the label ``scheduling.x-k8s.io/pod-group``
(coscheduling) or the annotation ``scheduling.k8s.io/group-name`` (volcano) naming the
TrainJob, after the trainer build; the PodGroups are ``plugins/podgroup.py``'s.

Not ported: Flux (``UnsupportedRuntime``) and the TrainJobStatus feature gate's env (off by
default in v2.3.0). Validation is
the webhooks' business: what Go only rejects there is built here as Go's builder would build it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from kubetrain.base.jsoncopy import json_copy
from kubetrain.base.objects import Obj
from kubetrain.informers.transforms import has_true_condition
from kubetrain.reconcilers.trainer import mpi_policy as mpi
from kubetrain.reconcilers.trainer.runtime_info import (
    BuildError,
    UnsupportedRuntime,
    cpus_per_node,
    gpus_per_node,
    ml_policy_name,
)
from kubetrain.reconcilers.trainer.strategic_merge import (
    JOBSET_SPEC,
    RESOURCE_REQUIREMENTS,
    StrategicMergeError,
    strategic_merge,
    typed_patch,
)
from kubetrain.reconcilers.trainer.torchtune import (
    TORCHTUNE_ENTRYPOINT as TORCHTUNE_ENTRYPOINT_ARGS,
)
from kubetrain.reconcilers.trainer.torchtune import torchtune_command

__all__ = [
    "ANCESTOR_LABEL",
    "CLUSTER_TRAINING_RUNTIME_KIND",
    "CONTAINER_TRAINER_PORT",
    "JOBSET_API_VERSION",
    "JOB_COMPLETION_INDEX_FIELD_PATH",
    "TRAINER_API_GROUP",
    "TRAINER_API_VERSION",
    "TRAINING_RUNTIME_KIND",
    "BuildError",
    "RuntimeRef",
    "UnsupportedRuntime",
    "build_jobset",
    "jobset_finished",
    "ml_policy_name",
    "runtime_key",
    "runtime_registry_key",
    "runtime_resources_per_node",
    "should_apply_jobset",
]

TRAINER_API_GROUP = "trainer.kubeflow.org"
TRAINER_API_VERSION = f"{TRAINER_API_GROUP}/v1alpha1"
TRAINJOB_KIND = "TrainJob"
TRAINING_RUNTIME_KIND = "TrainingRuntime"
CLUSTER_TRAINING_RUNTIME_KIND = "ClusterTrainingRuntime"
JOBSET_API_VERSION = "jobset.x-k8s.io/v1alpha2"
JOBSET_KIND = "JobSet"

#: The label on a replicatedJob template naming its role (``constants.LabelTrainJobAncestor``).
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"
ANCESTOR_TRAINER = "trainer"
DATASET_INITIALIZER = "dataset-initializer"
MODEL_INITIALIZER = "model-initializer"
#: The trainer job's container (and, for MPI, a job) name.
NODE = "node"
#: ``constants.ContainerTrainerPort``: torch master, JAX coordinator and XGBoost tracker port.
CONTAINER_TRAINER_PORT = 29500
JOB_COMPLETION_INDEX_FIELD_PATH = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
STORAGE_URI_ENV = "STORAGE_URI"
TORCHTUNE_ENTRYPOINT = list(TORCHTUNE_ENTRYPOINT_ARGS)
#: The pods' gang membership: scheduler-plugins' ``PodGroupLabel`` and Volcano's
#: ``KubeGroupNameAnnotationKey``; the group is named after the TrainJob.
COSCHEDULING_POD_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
VOLCANO_GROUP_NAME_ANNOTATION = "scheduling.k8s.io/group-name"


# --- runtimeRef ------------------------------------------------------------------------------


class RuntimeRef(NamedTuple):
    """``spec.runtimeRef`` with the CRD's defaults applied."""

    kind: str
    api_group: str
    name: str


def runtime_key(trainjob: Obj) -> RuntimeRef:
    """``(kind, apiGroup, name)`` of the runtime a TrainJob names. An absent ``kind`` is
    ``ClusterTrainingRuntime`` and an absent ``apiGroup`` ``trainer.kubeflow.org`` (the CRD's
    ``+kubebuilder:default``s; an explicit ``""`` stays, as the API server keeps it)."""
    ref = (trainjob.get("spec") or {}).get("runtimeRef") or {}
    kind = ref.get("kind")
    group = ref.get("apiGroup")
    return RuntimeRef(
        kind=kind if isinstance(kind, str) else CLUSTER_TRAINING_RUNTIME_KIND,
        api_group=group if isinstance(group, str) else TRAINER_API_GROUP,
        name=str(ref.get("name") or ""),
    )


def runtime_registry_key(ref: RuntimeRef) -> str:
    """The key Trainer looks its runtimes up by, ``schema.GroupKind.String()``:
    ``ClusterTrainingRuntime.trainer.kubeflow.org`` (just the kind when the group is empty). An
    unknown key is what the controller reports as ``unsupported runtime: <key>``."""
    return f"{ref.kind}.{ref.api_group}" if ref.api_group else ref.kind


#: Whether a JobSet reached a terminal condition (``Completed`` or ``Failed``): it never runs again.
jobset_finished = has_true_condition("Completed", "Failed")


def should_apply_jobset(trainjob: Obj, existing_jobset: Obj | None) -> bool:
    """Whether Trainer's JobSet plugin builds (and so re-applies) the JobSet: always when there
    is none, and otherwise only while the TrainJob or the JobSet is suspended. A running JobSet is
    never updated; a suspended one is, which is how Kueue's patches reach it. A finished JobSet
    (``Completed`` or ``Failed``) is never written: it runs no more, and its cached form is
    compacted (``compact.py``), so a write of it would drop its pod templates."""
    if existing_jobset is None:
        return True
    if jobset_finished(existing_jobset):
        return False
    return bool((trainjob.get("spec") or {}).get("suspend")) or bool(
        (existing_jobset.get("spec") or {}).get("suspend")
    )


# --- the build -------------------------------------------------------------------------------


@dataclass
class _PodSet:
    """Trainer's ``runtime.PodSet``: one per replicatedJob, in the same order."""

    name: str
    ancestor: str | None
    count: int


def build_jobset(
    trainjob: Obj,
    runtime_spec: Obj,
    *,
    runtime_labels: Mapping[str, str] | None = None,
) -> Obj:
    """The JobSet (``jobset.x-k8s.io/v1alpha2``) Trainer v2.3.0 applies for ``trainjob`` from
    ``runtime_spec`` (a TrainingRuntimeSpec: ``mlPolicy``, ``podGroupPolicy``,
    ``template{metadata, spec}``), as a new dict; the arguments are not changed.

    ``runtime_labels`` are the runtime object's own ``metadata.labels``. Trainer v2.3.0 does not
    copy them anywhere (only ``template.metadata`` reaches the JobSet), so they do not change the
    result; the parameter lets a caller hand over the whole runtime without picking it apart.

    Raises ``UnsupportedRuntime`` for a Flux mlPolicy, and ``BuildError`` where Go's build
    returns an error.
    """
    del runtime_labels  # documented above: Trainer v2.3.0 never reads them while building
    spec = trainjob.get("spec") or {}
    trainer = spec.get("trainer")
    ml_policy = runtime_spec.get("mlPolicy")
    policy = ml_policy_name(ml_policy)
    if policy == "flux":
        raise UnsupportedRuntime(policy, "only torch, MPI, jax, xgboost and plain ML are built")

    template = runtime_spec.get("template") or {}
    patches = [p for p in spec.get("runtimePatches") or [] if isinstance(p, dict)]
    labels, annotations = _propagation_metadata(template.get("metadata") or {}, patches)
    jobset_spec = _merge_runtime_patches(template.get("spec") or {}, patches)

    pod_sets = _pod_sets(jobset_spec, ml_policy, trainer)
    tune_command = _enforce_ml_policy(policy, ml_policy, pod_sets, jobset_spec, trainjob)
    _sync_parallel_count(pod_sets, jobset_spec)
    _build_initializers(jobset_spec, spec.get("initializer"))
    if tune_command is not None and trainer is not None:  # TorchTune: Go rewrites the command
        trainer = {**trainer, "command": tune_command}
    _build_trainer(jobset_spec, trainer)
    # --- gang scheduling (Coscheduling, Volcano): the pods' group label/annotation ---
    _enforce_pod_group_policy(runtime_spec.get("podGroupPolicy"), jobset_spec, trainjob)

    if spec.get("suspend") is None:
        jobset_spec.pop("suspend", None)
    else:
        jobset_spec["suspend"] = spec["suspend"]

    meta = trainjob.get("metadata") or {}
    metadata: Obj = {"name": meta.get("name", ""), "namespace": meta.get("namespace", "")}
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    metadata["ownerReferences"] = [
        {
            "apiVersion": TRAINER_API_VERSION,
            "kind": TRAINJOB_KIND,
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return {
        "apiVersion": JOBSET_API_VERSION,
        "kind": JOBSET_KIND,
        "metadata": metadata,
        "spec": jobset_spec,
    }


def _propagation_metadata(
    template_meta: Mapping[str, Any], patches: list[Obj]
) -> tuple[dict[str, str], dict[str, str]]:
    labels = dict(template_meta.get("labels") or {})
    annotations = dict(template_meta.get("annotations") or {})
    for patch in patches:
        patch_meta = _dig(patch, "trainingRuntimeSpec", "template", "metadata") or {}
        labels.update(patch_meta.get("labels") or {})
        annotations.update(patch_meta.get("annotations") or {})
    return labels, annotations


def _merge_runtime_patches(template_spec: Mapping[str, Any], patches: list[Obj]) -> Obj:
    order = {rjob.get("name"): i for i, rjob in enumerate(_replicated_jobs(template_spec))}
    merged: Obj = json_copy(dict(template_spec))
    for patch in patches:
        patch_spec = _dig(patch, "trainingRuntimeSpec", "template", "spec")
        if not isinstance(patch_spec, dict):
            continue
        try:
            merged = strategic_merge(merged, typed_patch(patch_spec), JOBSET_SPEC)
        except StrategicMergeError as err:
            raise BuildError(f"runtimePatch {patch.get('manager', '')!r}: {err}") from None
    if isinstance(merged.get("replicatedJobs"), list):
        # sort.SliceStable on the runtime's positions; a job only a patch added is position 0,
        # as Go's map lookup of a missing name gives.
        merged["replicatedJobs"].sort(key=lambda rjob: order.get(rjob.get("name"), 0))
    return merged


def _pod_sets(
    jobset_spec: Obj, ml_policy: Mapping[str, Any] | None, trainer: Obj | None
) -> list[_PodSet]:
    resources_per_node = (trainer or {}).get("resourcesPerNode")
    pod_sets: list[_PodSet] = []
    for rjob in _replicated_jobs(jobset_spec):
        job_template = rjob.get("template") or {}
        parallelism = (job_template.get("spec") or {}).get("parallelism")
        count = 1 if parallelism is None else int(parallelism)
        labels = (job_template.get("metadata") or {}).get("labels") or {}
        ancestor = labels.get(ANCESTOR_LABEL) if ANCESTOR_LABEL in labels else None
        if ancestor == ANCESTOR_TRAINER and ml_policy is not None:
            num_nodes = ml_policy.get("numNodes")
            count = 1 if num_nodes is None else int(num_nodes)
            if resources_per_node is not None:
                node = _first_container(_pod_spec(rjob).get("containers"), NODE)
                if node is not None:
                    node["resources"] = _merged_resources(node.get("resources"), resources_per_node)
        # --- MPI: with runLauncherAsNode, job ``node`` trains too and gets resourcesPerNode ---
        if (
            resources_per_node is not None
            and ancestor != ANCESTOR_TRAINER
            and rjob.get("name") == NODE
            and _mpi_launcher_as_node(ml_policy)
        ):
            node = _first_container(_pod_spec(rjob).get("containers"), NODE)
            if node is not None:
                node["resources"] = _merged_resources(node.get("resources"), resources_per_node)
        # --- end MPI ---
        pod_sets.append(
            _PodSet(name=str(rjob.get("name", "")), ancestor=ancestor, count=max(count, 1))
        )
    return pod_sets


def _merged_resources(base: Mapping[str, Any] | None, override: Mapping[str, Any]) -> Obj:
    """``MergeResourceRequirements`` into a new apply configuration, which Go fills with limits
    and requests only."""
    merged = strategic_merge(
        typed_patch(dict(base or {})), typed_patch(dict(override)), RESOURCE_REQUIREMENTS
    )
    return {k: merged[k] for k in ("limits", "requests") if merged.get(k)}


def _enforce_ml_policy(
    policy: str,
    ml_policy: Mapping[str, Any] | None,
    pod_sets: list[_PodSet],
    jobset_spec: Obj,
    trainjob: Obj,
) -> list[str] | None:
    """Returns the TorchTune command when the torch plugin synthesized one (else None)."""
    # --- MPI: its own counts, mounts and env (Go runs no PlainML for MPI) ---
    if policy == "mpi":
        _enforce_mpi(ml_policy, pod_sets, jobset_spec, trainjob)
        return None
    # --- end MPI ---
    spec = trainjob.get("spec") or {}
    trainer = spec.get("trainer")
    name = str((trainjob.get("metadata") or {}).get("name", ""))
    tune_command: list[str] | None = None
    trainer_ps = next((ps for ps in pod_sets if ps.ancestor == ANCESTOR_TRAINER), None)
    if policy == "xgboost" and trainer_ps is None:
        return None
    if trainer_ps is not None and trainer is not None and trainer.get("numNodes") is not None:
        trainer_ps.count = int(trainer["numNodes"])
    num_nodes = trainer_ps.count if trainer_ps is not None else 1
    node = _trainer_container(pod_sets, jobset_spec) if trainer is not None else None
    master = f"{name}-{NODE}-0-0.{name}"

    if policy in ("plainml", "xgboost", "torch") and node is not None and trainer is not None:
        _upsert_env(node, (_env_var(e) for e in trainer.get("env") or []))

    if policy == "torch":
        nproc: str = "auto"
        if trainer is not None and trainer.get("numProcPerNode") is not None:
            nproc = str(int(trainer["numProcPerNode"]))
        resources = runtime_resources_per_node(jobset_spec)
        if trainer is not None and trainer.get("resourcesPerNode") is not None:
            resources = trainer["resourcesPerNode"]
        if nproc == "auto" and gpus_per_node(resources) == 0:
            nproc = str(max(1, cpus_per_node(resources)))
        pet = [
            {"name": "PET_NNODES", "value": str(num_nodes)},
            {"name": "PET_NPROC_PER_NODE", "value": nproc},
            _field_ref_env("PET_NODE_RANK"),
        ]
        master_env = [
            {"name": "PET_MASTER_ADDR", "value": master},
            {"name": "PET_MASTER_PORT", "value": str(CONTAINER_TRAINER_PORT)},
        ]
        if node is not None:
            _upsert_env(node, pet)
            if trainer is not None and trainer.get("command") == TORCHTUNE_ENTRYPOINT:
                # TorchTune: no PET_MASTER_*; the rendezvous goes on the command line.
                tune_command = _torchtune_command(
                    trainjob, jobset_spec, num_nodes, nproc, gpus_per_node(resources)
                )
            else:
                _upsert_env(node, master_env)
            _upsert_port(node, {"containerPort": CONTAINER_TRAINER_PORT})
        targets = ((ml_policy or {}).get("torch") or {}).get("envInjection") or {}
        for target in targets.get("targets") or []:
            for container_name in target.get("containerNames") or []:
                container = _container_by_job(jobset_spec, target.get("jobName"), container_name)
                if container is None:
                    raise BuildError(
                        f"envInjection target podSet {target.get('jobName')!r} container "
                        f"{container_name!r} not found in runtime template"
                    )
                _upsert_env(container, pet)
                _upsert_env(container, master_env)

    elif policy == "jax" and node is not None:
        _upsert_env(
            node,
            [
                {"name": "JAX_NUM_PROCESSES", "value": str(num_nodes)},
                _field_ref_env("JAX_PROCESS_ID"),
                {"name": "JAX_COORDINATOR_ADDRESS", "value": f"{master}:{CONTAINER_TRAINER_PORT}"},
            ],
        )
        _upsert_port(node, {"containerPort": CONTAINER_TRAINER_PORT})

    elif policy == "xgboost" and node is not None and trainer is not None:
        resources = runtime_resources_per_node(jobset_spec)
        if trainer.get("resourcesPerNode") is not None:
            resources = trainer["resourcesPerNode"]
        workers_per_node = gpus_per_node(resources) or 1
        _upsert_env(
            node,
            [
                {"name": "DMLC_TRACKER_URI", "value": master},
                {"name": "DMLC_TRACKER_PORT", "value": str(CONTAINER_TRAINER_PORT)},
                _field_ref_env("DMLC_TASK_ID"),
                {"name": "DMLC_NUM_WORKER", "value": str(num_nodes * workers_per_node)},
            ],
        )
        _upsert_port(node, {"containerPort": CONTAINER_TRAINER_PORT})
    return tune_command


# --- TorchTune (torchtune.py holds the decision table) ---------------------------------------


def _torchtune_command(
    trainjob: Obj, jobset_spec: Obj, num_nodes: int, nproc: str, gpus: int
) -> list[str]:
    """The Torch plugin's rewrite of ``trainer.command`` for ``tune run``: the overrides come
    from container ``node`` of every trainer-ancestor job of the (patched) runtime template,
    read before the TrainJob's command replaces it."""
    spec = trainjob.get("spec") or {}
    trainer = spec.get("trainer") or {}
    runtime_commands = [
        [str(entry) for entry in container.get("command") or []]
        for rjob in _replicated_jobs(jobset_spec)
        if _ancestor(rjob) == ANCESTOR_TRAINER
        for container in _pod_spec(rjob).get("containers") or []
        if container.get("name") == NODE
    ]
    return torchtune_command(
        entrypoint=TORCHTUNE_ENTRYPOINT,
        trainjob_name=str((trainjob.get("metadata") or {}).get("name", "")),
        runtime_name=str((spec.get("runtimeRef") or {}).get("name") or ""),
        num_nodes=num_nodes,
        num_proc_per_node=nproc,
        gpus=gpus,
        args=[str(arg) for arg in trainer.get("args") or []],
        runtime_commands=runtime_commands,
        port=CONTAINER_TRAINER_PORT,
    )


# --- gang scheduling: EnforcePodGroupPolicy + the JobSet builder's PodLabels/PodAnnotations ---


def _enforce_pod_group_policy(
    pod_group_policy: Mapping[str, Any] | None, jobset_spec: Obj, trainjob: Obj
) -> None:
    """Coscheduling labels every pod ``scheduling.x-k8s.io/pod-group: <tj>``; Volcano annotates
    it ``scheduling.k8s.io/group-name: <tj>``. Merged into each replicatedJob's pod template
    metadata (Go's ``WithLabels``/``WithAnnotations``: existing keys of other names stay). The
    PodGroup objects themselves are ``plugins/podgroup.py``'s."""
    if not pod_group_policy:
        return
    name = str((trainjob.get("metadata") or {}).get("name", ""))
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    if pod_group_policy.get("coscheduling") is not None:
        labels[COSCHEDULING_POD_GROUP_LABEL] = name
    if pod_group_policy.get("volcano") is not None:
        annotations[VOLCANO_GROUP_NAME_ANNOTATION] = name
    for rjob in _replicated_jobs(jobset_spec):
        pod_template = (
            rjob.setdefault("template", {}).setdefault("spec", {}).setdefault("template", {})
        )
        for key, entries in (("labels", labels), ("annotations", annotations)):
            if entries:
                meta = pod_template.setdefault("metadata", {})
                meta[key] = {**(meta.get(key) or {}), **entries}


# --- MPI (EnforceMLPolicy of plugins/mpi/mpi.go; the side objects are plugins/mpi.py's) ------


def _mpi_launcher_as_node(ml_policy: Mapping[str, Any] | None) -> bool:
    """Whether the runtime's MPI policy runs training on the launcher as well."""
    mpi = (ml_policy or {}).get("mpi")
    return isinstance(mpi, dict) and bool(mpi.get("runLauncherAsNode"))


def _enforce_mpi(
    ml_policy: Mapping[str, Any] | None, pod_sets: list[_PodSet], jobset_spec: Obj, trainjob: Obj
) -> None:
    """The MPI plugin's EnforceMLPolicy: the TrainJob's ``numNodes`` sets job ``node``'s count
    (one fewer, at least 1, when the launcher trains too); jobs ``node`` and ``launcher`` get the
    SSH Secret volume and, in container ``node``, its mount at ``sshAuthMountPath``; the
    launcher's ``node`` also mounts the hostfile at ``/etc/mpi`` and gets the OpenMPI env. With
    ``runLauncherAsNode`` the TrainJob's env goes to job ``node``'s container too (Go's JobSet
    builder does that; nothing changes that env between here and there)."""
    policy = mpi.mpi_policy(ml_policy)
    if policy is None:
        return
    trainer = (trainjob.get("spec") or {}).get("trainer")
    name = str((trainjob.get("metadata") or {}).get("name", ""))
    node_ps = next((ps for ps in pod_sets if ps.name == NODE), None)
    if trainer is not None and trainer.get("numNodes") is not None and node_ps is not None:
        num_nodes = int(trainer["numNodes"])
        node_ps.count = max(num_nodes - 1, 1) if policy.run_launcher_as_node else num_nodes
    slots = mpi.mpi_slots(policy, trainer, runtime_resources_per_node(jobset_spec))

    for rjob in _replicated_jobs(jobset_spec):
        job_name = rjob.get("name")
        if job_name not in (NODE, mpi.LAUNCHER):
            continue
        launcher = job_name == mpi.LAUNCHER
        pod_spec = rjob.setdefault("template", {}).setdefault("spec", {})
        pod_spec = pod_spec.setdefault("template", {}).setdefault("spec", {})
        _upsert_named(pod_spec.setdefault("volumes", []), mpi.ssh_auth_volume(name))
        if launcher:
            _upsert_named(pod_spec.setdefault("volumes", []), mpi.hostfile_volume(name))
        for container in pod_spec.get("containers") or []:
            if not isinstance(container, dict) or container.get("name") != NODE:
                continue
            mounts: list[Obj] = container.setdefault("volumeMounts", [])
            _upsert_mount(
                mounts, {"name": mpi.SSH_AUTH_VOLUME, "mountPath": policy.ssh_auth_mount_path}
            )
            if launcher:
                _upsert_mount(mounts, {"name": mpi.HOSTFILE_VOLUME, "mountPath": mpi.HOSTFILE_DIR})
                if policy.implementation != mpi.OPENMPI:
                    raise BuildError(
                        f"MPI implementation for {policy.implementation!r} is not supported"
                    )
                _upsert_env(container, mpi.launcher_env(slots))
            elif policy.run_launcher_as_node and trainer is not None:
                _upsert_env(container, (_env_var(e) for e in trainer.get("env") or []))


def _upsert_named(items: list[Obj], item: Obj) -> None:
    """``apply.UpsertVolumes``: replace the entry of the same name, else append."""
    for i, existing in enumerate(items):
        if existing.get("name") == item.get("name"):
            items[i] = item
            return
    items.append(item)


def _upsert_mount(mounts: list[Obj], mount: Obj) -> None:
    """``apply.UpsertVolumeMounts``: keyed by ``mountPath``, not by name."""
    for i, existing in enumerate(mounts):
        if existing.get("mountPath") == mount.get("mountPath"):
            mounts[i] = mount
            return
    mounts.append(mount)


# --- end MPI ---------------------------------------------------------------------------------


def _sync_parallel_count(pod_sets: list[_PodSet], jobset_spec: Obj) -> None:
    for ps in pod_sets:
        for rjob in _replicated_jobs(jobset_spec):
            if rjob.get("name") == ps.name:
                job_spec = rjob.setdefault("template", {}).setdefault("spec", {})
                job_spec["parallelism"] = ps.count
                job_spec["completions"] = ps.count
                break


def _build_initializers(jobset_spec: Obj, initializer: Mapping[str, Any] | None) -> None:
    """Builder.Initializer: ``replicas: 1`` on the initializer jobs, and the TrainJob's
    ``initializer.{dataset,model}`` into the container of the same name."""
    for rjob in _replicated_jobs(jobset_spec):
        ancestor = _ancestor(rjob)
        for step, source_key in ((DATASET_INITIALIZER, "dataset"), (MODEL_INITIALIZER, "model")):
            if ancestor != step:
                continue
            rjob["replicas"] = 1
            source = (initializer or {}).get(source_key)
            if source is None:
                continue
            for container in _pod_spec(rjob).get("containers") or []:
                if container.get("name") != step:
                    continue
                if source.get("storageUri") is not None:
                    _upsert_env(
                        container, [{"name": STORAGE_URI_ENV, "value": source["storageUri"]}]
                    )
                _upsert_env(container, (_env_var(e) for e in source.get("env") or []))
                secret = source.get("secretRef")
                if secret is not None:
                    container.setdefault("envFrom", []).append(
                        {"secretRef": {"name": secret.get("name", "")}}
                    )


def _build_trainer(jobset_spec: Obj, trainer: Mapping[str, Any] | None) -> None:
    """Builder.Trainer: ``replicas: 1`` on the trainer job, and the TrainJob's image, command,
    args and env on its container ``node``."""
    for rjob in _replicated_jobs(jobset_spec):
        if _ancestor(rjob) != ANCESTOR_TRAINER:
            continue
        rjob["replicas"] = 1
        if trainer is None:
            continue
        for container in _pod_spec(rjob).get("containers") or []:
            if container.get("name") != NODE:
                continue
            for key in ("image", "command", "args"):
                if trainer.get(key) is not None:
                    container[key] = json_copy(trainer[key])
            _upsert_env(container, (_env_var(e) for e in trainer.get("env") or []))


# --- resources -------------------------------------------------------------------------------


def runtime_resources_per_node(jobset_spec: Obj) -> Obj | None:
    """``runtime.ExtractResourcePerNodeFromRuntime``: the resources of container ``node`` in the
    first job named ``node`` or labelled the trainer (after ``resourcesPerNode`` was merged)."""
    for rjob in _replicated_jobs(jobset_spec):
        if rjob.get("name") == NODE or _ancestor(rjob) == ANCESTOR_TRAINER:
            for container in _pod_spec(rjob).get("containers") or []:
                if container.get("name") == NODE and container.get("resources") is not None:
                    resources: Obj = container["resources"]
                    return resources
    return None


# --- lists, as Go's pkg/apply upserts them --------------------------------------------------


def _env_var(env: Mapping[str, Any]) -> Obj:
    """``apply.EnvVar``: a corev1.EnvVar as an apply configuration. A plain variable always
    carries ``value`` (``""`` when absent); ``valueFrom`` keeps the four sources Go copies."""
    out: Obj = {"name": env.get("name", "")}
    source = env.get("valueFrom")
    if source is None:
        out["value"] = env.get("value", "")
        return out
    copied: Obj = {}
    if (ref := source.get("fieldRef")) is not None:
        copied["fieldRef"] = {"fieldPath": ref.get("fieldPath", "")}
    if (ref := source.get("resourceFieldRef")) is not None:
        copied["resourceFieldRef"] = {
            "containerName": ref.get("containerName", ""),
            "resource": ref.get("resource", ""),
            "divisor": ref.get("divisor", "0"),
        }
    for key in ("configMapKeyRef", "secretKeyRef"):
        if (ref := source.get(key)) is not None:
            selector: Obj = {"key": ref.get("key", ""), "name": ref.get("name", "")}
            if ref.get("optional") is not None:
                selector["optional"] = ref["optional"]
            copied[key] = selector
    out["valueFrom"] = copied
    return out


def _field_ref_env(name: str) -> Obj:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": JOB_COMPLETION_INDEX_FIELD_PATH}}}


def _upsert_env(container: Obj, env: Iterable[Obj]) -> None:
    """``apply.UpsertEnvVars``: replace the entry of the same name, else append; nothing to add
    leaves ``env`` as it was (absent stays absent, as Go leaves an empty list unset)."""
    env = list(env)
    if not env:
        return
    items: list[Obj] = container.setdefault("env", [])
    for var in env:
        for i, existing in enumerate(items):
            if existing.get("name") == var.get("name"):
                items[i] = json_copy(var)
                break
        else:
            items.append(json_copy(var))


def _upsert_port(container: Obj, port: Obj) -> None:
    """``apply.UpsertPort``: the same ``containerPort`` or the same name, where two absent
    names are the same name (``ptr.Equal(nil, nil)``)."""
    ports: list[Obj] = container.setdefault("ports", [])
    for i, existing in enumerate(ports):
        if existing.get("containerPort") == port.get("containerPort") or existing.get(
            "name"
        ) == port.get("name"):
            ports[i] = dict(port)
            return
    ports.append(dict(port))


# --- navigation ------------------------------------------------------------------------------


def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _replicated_jobs(jobset_spec: Mapping[str, Any]) -> list[Obj]:
    jobs = jobset_spec.get("replicatedJobs")
    return [job for job in jobs if isinstance(job, dict)] if isinstance(jobs, list) else []


def _ancestor(rjob: Mapping[str, Any]) -> str | None:
    labels = _dig(rjob, "template", "metadata", "labels") or {}
    value = labels.get(ANCESTOR_LABEL)
    return value if isinstance(value, str) else None


def _pod_spec(rjob: Mapping[str, Any]) -> Obj:
    spec = _dig(rjob, "template", "spec", "template", "spec")
    return spec if isinstance(spec, dict) else {}


def _first_container(containers: Any, name: str) -> Obj | None:
    for container in containers or []:
        if isinstance(container, dict) and container.get("name") == name:
            return container
    return None


def _trainer_container(pod_sets: list[_PodSet], jobset_spec: Obj) -> Obj | None:
    """``FindContainerByPodSetAncestorContainerName(trainer, node)``: container ``node`` of the
    first job labelled the trainer."""
    jobs = _replicated_jobs(jobset_spec)
    for index, ps in enumerate(pod_sets):
        if ps.ancestor == ANCESTOR_TRAINER:
            return _first_container(_pod_spec(jobs[index]).get("containers"), NODE)
    return None


def _container_by_job(jobset_spec: Obj, job_name: Any, container_name: str) -> Obj | None:
    """``FindContainerByPodSetName``: containers first, then init containers."""
    for rjob in _replicated_jobs(jobset_spec):
        if rjob.get("name") == job_name:
            pod_spec = _pod_spec(rjob)
            return _first_container(pod_spec.get("containers"), container_name) or _first_container(
                pod_spec.get("initContainers"), container_name
            )
    return None
