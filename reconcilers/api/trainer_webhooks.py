"""The admission webhooks of Kubeflow Trainer v2.3.0 (``trainer.kubeflow.org/v1alpha1``):
TrainJob defaulting and validation, TrainingRuntime and ClusterTrainingRuntime validation, and
their entries in kubetrain's two webhook configurations.

Why: the TrainJob controller (``reconcilers/trainer``) finds a bad TrainJob only when it builds
the JobSet, as a Warning event or a Failed condition long after ``kubectl apply`` said
``created``. Trainer refuses those at admission (``pkg/webhooks``, the runtime's
``ValidateObjects`` and the plugins' ``Validate``); this module ports those rules, so a TrainJob
that names a missing runtime, patches a job the runtime lacks or sets a reserved env var is
refused with the field and what to change, and so is a runtime the controller could not use.

Paths and rules are Trainer's (``manifests/base/webhook``): ``/mutate-...-trainjob`` sets
``runtimePatches[].time``; ``/validate-...-{trainjob,trainingruntime,clustertrainingruntime}``
on CREATE and UPDATE, the runtime ones skipped for objects labelled
``trainer.kubeflow.org/webhook-validation: disabled``. All are failurePolicy Fail.

A refusal is what controller-runtime makes of Trainer's ``field.ErrorList``: HTTP 403, reason
``Forbidden``, the message the aggregated errors (``spec.runtimeRef: Invalid value: ...``, as
kubectl prints it), plus ``status.details.causes`` with one cause per error (its field path,
reason and message), as kubetrain's v1 webhooks have them. Warnings (a deprecated
ClusterTrainingRuntime) come back as admission warnings.

What the validator reads (``TrainerObjects``): the runtime, the TrainJob's JobSet and, for
Volcano runtimes, PriorityClasses. ``CachedTrainerObjects`` reads the TrainJob controller's
informer caches, as Trainer's cached client does, and on a miss the API server (a runtime
created the moment before its TrainJob, e.g. both in one ``kubectl apply``, is not refused
because the cache lags). The webhooks are registered only where the TrainJob controller runs.

Deliberate differences from Trainer v2.3.0, each because Go's behaviour is a bug or unreachable:
- a runtime patch's replicated jobs and containers are checked against the runtime's own
  template. Go checks them against the template with the patches already merged in, where a
  patched job or container always exists, so its rule never fires in the webhook (only in its
  unit tests) and the JobSet later fails instead. The other rules see the merged template, as
  in Go (a patch may add the ``initializer`` volumeMount);
- an UPDATE that leaves ``spec`` as it was is admitted without the rules (kubetrain's ratchet,
  ``reconcilers/api/webhooks.py``): Go re-runs every rule, so deleting a runtime blocks label,
  annotation and finalizer edits of each TrainJob using it, though the TrainJob runs from its
  snapshot;
- the missing-runtime error's path is ``spec.runtimeRef`` for both kinds (Go: ``spec.RuntimeRef``
  for a ClusterTrainingRuntime); an unknown runtime kind is an Unsupported value at
  ``spec.runtimeRef`` listing the two kinds (Go: ``unsupported runtime: <kind>.<group>``);
- the Volcano PriorityClass check goes on past ``system-cluster-critical`` or
  ``system-node-critical`` (Go returns at the first, skipping later replicated jobs);
- bad values that are objects or arrays print as their JSON type (Go prints the Go struct with
  pointer addresses); plugins run in a fixed order (Go ranges over a map).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.objects import Obj
from kubetrain.engine.client import ApiClient
from kubetrain.engine.webhook.admission import (
    AdmissionResponse,
    Handler,
    Request,
    allowed,
    denied,
    json_patch,
    patched,
)
from kubetrain.engine.webhook.server import WebhookServer
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import PRIORITYCLASSES
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.validation import (
    FORBIDDEN,
    INVALID,
    NOT_SUPPORTED,
    REQUIRED,
    FieldError,
    aggregate_message,
    shown_value,
    supported_values,
)
from kubetrain.reconcilers.trainer.jobset_build import (
    ANCESTOR_LABEL,
    ANCESTOR_TRAINER,
    CLUSTER_TRAINING_RUNTIME_KIND,
    DATASET_INITIALIZER,
    MODEL_INITIALIZER,
    NODE,
    TORCHTUNE_ENTRYPOINT,
    TRAINER_API_GROUP,
    TRAINING_RUNTIME_KIND,
    runtime_key,
    runtime_registry_key,
    runtime_resources_per_node,
)
from kubetrain.reconcilers.trainer.resources import (
    CLUSTER_TRAINING_RUNTIMES,
    JOBSETS,
    TRAINING_RUNTIMES,
)
from kubetrain.reconcilers.trainer.runtime_info import gpus_per_node
from kubetrain.reconcilers.trainer.strategic_merge import (
    JOBSET_SPEC,
    StrategicMergeError,
    strategic_merge,
    typed_patch,
)
from kubetrain.reconcilers.trainer.torchtune import (
    IMMUTABLE_CONFIGS,
    LLAMA3_2_1B,
    LLAMA3_2_3B,
    LLAMA3_3_70B,
    QWEN2_5_1_5B,
    SUFFIX_QLORA_DISTRIBUTED,
    SUFFIX_QLORA_SINGLE_DEVICE,
    SUPPORTED_MODELS,
    is_lora,
    is_qlora,
    model_from_runtime_name,
    recipe_and_config,
)

__all__ = [
    "CLUSTER_TRAINING_RUNTIME_VALIDATE_PATH",
    "TRAINING_RUNTIME_VALIDATE_PATH",
    "TRAINJOB_MUTATE_PATH",
    "TRAINJOB_VALIDATE_PATH",
    "WEBHOOK_VALIDATION_LABEL",
    "CachedTrainerObjects",
    "TrainerObjects",
    "register_trainer_webhooks",
    "trainer_webhook_entries",
    "training_runtime_validator",
    "trainjob_defaulter",
    "trainjob_validator",
    "validate_replicated_jobs",
    "validate_trainjob",
]

VERSION = "v1alpha1"
_PREFIX = f"{TRAINER_API_GROUP.replace('.', '-')}-{VERSION}"
TRAINJOB_MUTATE_PATH = f"/mutate-{_PREFIX}-trainjob"
TRAINJOB_VALIDATE_PATH = f"/validate-{_PREFIX}-trainjob"
TRAINING_RUNTIME_VALIDATE_PATH = f"/validate-{_PREFIX}-trainingruntime"
CLUSTER_TRAINING_RUNTIME_VALIDATE_PATH = f"/validate-{_PREFIX}-clustertrainingruntime"

#: ``trainer.kubeflow.org/webhook-validation: disabled`` skips the runtime validators.
WEBHOOK_VALIDATION_LABEL = "trainer.kubeflow.org/webhook-validation"
SUPPORT_LABEL = "trainer.kubeflow.org/support"
SUPPORT_DEPRECATED = "deprecated"
RUNTIME_DEPRECATION_POLICY_URL = (
    "https://trainer.kubeflow.org/en/latest/operator-guides/runtime.html#runtime-deprecation-policy"
)

INITIALIZER_VOLUME = "initializer"
LAUNCHER = "launcher"
FLUX_INSTALLER = "flux-installer"
VOLCANO_QUEUE_ANNOTATION = "scheduling.volcano.sh/queue-name"
SYSTEM_PRIORITY_CLASSES = ("system-cluster-critical", "system-node-critical")

TORCH_RESERVED_ENVS = frozenset(
    ("PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT")
)
MPI_RESERVED_ENVS = frozenset(
    (
        "OMPI_MCA_orte_default_hostfile",
        "OMPI_MCA_plm_rsh_args",
        "OMPI_MCA_orte_keep_fqdn_hostnames",
        "OMPI_MCA_orte_set_default_slots",
    )
)
XGBOOST_RESERVED_ENVS = frozenset(
    ("DMLC_TRACKER_URI", "DMLC_TRACKER_PORT", "DMLC_TASK_ID", "DMLC_NUM_WORKER")
)

_ANCESTOR_CONTAINERS = {
    ANCESTOR_TRAINER: NODE,
    DATASET_INITIALIZER: DATASET_INITIALIZER,
    MODEL_INITIALIZER: MODEL_INITIALIZER,
}

_RUNTIMES_PATH = "spec.template.spec.replicatedJobs"
_RUNTIME_REF = "spec.runtimeRef"
_PATCHES = "spec.runtimePatches"
_TRAINER_ENV = "spec.trainer.env"

_CAUSE_REASONS = {
    REQUIRED: "FieldValueRequired",
    INVALID: "FieldValueInvalid",
    NOT_SUPPORTED: "FieldValueNotSupported",
    FORBIDDEN: "FieldValueForbidden",
}

_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_HTTP_PATH_FMT = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"
_HTTP_PATH = re.compile(_HTTP_PATH_FMT)


# -- JSON helpers: a webhook never raises on what the API server hands it ---------------------


def _obj(value: object) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _dig(value: object, *keys: str) -> Any:
    for key in keys:
        value = _obj(value).get(key)
    return value


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _pod_spec(rjob: object) -> Obj:
    return _obj(_dig(rjob, "template", "spec", "template", "spec"))


def _names(items: object) -> list[str]:
    return [_str(_obj(c).get("name")) for c in _list(items)]


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


# -- what the validator reads -----------------------------------------------------------------


class TrainerObjects(Protocol):
    """The objects the TrainJob validator reads besides the request."""

    async def runtime(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The TrainingRuntime (in ``namespace``) or ClusterTrainingRuntime; None if absent."""
        ...

    async def jobset(self, namespace: str, name: str) -> Obj | None:
        """The JobSet of that name; None if absent."""
        ...

    async def priority_class_exists(self, name: str) -> bool:
        """Whether the PriorityClass exists."""
        ...


@dataclass(frozen=True, slots=True)
class CachedTrainerObjects:
    """``TrainerObjects`` from the TrainJob controller's informer caches, with the API server
    asked on a cache miss (a cache still syncing or an object created a moment ago). Without
    the caches (None: the operator runs no TrainJob controller, yet its webhook configurations
    route Trainer's requests here) every read asks the API server."""

    client: ApiClient
    training_runtimes: Lister | None = None
    cluster_training_runtimes: Lister | None = None
    jobsets: Lister | None = None

    async def runtime(self, kind: str, namespace: str, name: str) -> Obj | None:
        if kind == CLUSTER_TRAINING_RUNTIME_KIND:
            cached = _cached(self.cluster_training_runtimes, None, name)
            return cached or await self._get(CLUSTER_TRAINING_RUNTIMES, None, name)
        cached = _cached(self.training_runtimes, namespace, name)
        return cached or await self._get(TRAINING_RUNTIMES, namespace, name)

    async def jobset(self, namespace: str, name: str) -> Obj | None:
        cached = _cached(self.jobsets, namespace, name)
        return cached or await self._get(JOBSETS, namespace, name)

    async def priority_class_exists(self, name: str) -> bool:
        return await self._get(PRIORITYCLASSES, None, name) is not None

    async def _get(self, ref: Any, namespace: str | None, name: str) -> Obj | None:
        try:
            return await self.client.get(ref, namespace, name)
        except ApiStatusError as e:
            if e.is_not_found:
                return None
            raise


def _cached(lister: Lister | None, namespace: str | None, name: str) -> Obj | None:
    return None if lister is None else lister.get(namespace, name)


# -- refusals -----------------------------------------------------------------------------------


def _refusal(
    kind: str, obj: Obj, errors: list[FieldError], notes: Iterable[str]
) -> AdmissionResponse:
    """controller-runtime's answer to a validator error (403 Forbidden, the aggregated errors
    as the message), with a cause per error as kubetrain's webhooks give them."""
    name = _str(_obj(obj.get("metadata")).get("name"))
    return denied(
        aggregate_message(errors),
        code=403,
        reason="Forbidden",
        details={
            "name": name,
            "group": TRAINER_API_GROUP,
            "kind": kind,
            "causes": [
                {
                    "reason": _CAUSE_REASONS.get(e.type, e.type),
                    "message": e.message,
                    "field": e.field,
                }
                for e in errors
            ],
        },
        warnings=list(notes),
    )


def _answer(kind: str, obj: Obj, errors: list[FieldError], notes: list[str]) -> AdmissionResponse:
    return _refusal(kind, obj, errors, notes) if errors else allowed(warnings=notes)


# -- runtimes -----------------------------------------------------------------------------------


def validate_replicated_jobs(runtime: Obj) -> list[FieldError]:
    """Trainer's ``validateReplicatedJobs``: a replicated job labelled as a TrainJob ancestor
    runs once (``replicas`` 1) and has its container (``node`` for ``trainer``, else the
    ancestor's name)."""
    errors: list[FieldError] = []
    for i, rjob in enumerate(_list(_dig(runtime, "spec", "template", "spec", "replicatedJobs"))):
        labels = _obj(_dig(rjob, "template", "metadata", "labels"))
        ancestor = labels.get(ANCESTOR_LABEL)
        if ancestor not in _ANCESTOR_CONTAINERS:
            continue
        path = f"{_RUNTIMES_PATH}[{i}]"
        replicas = _obj(rjob).get("replicas", 1)  # the CRD's default
        if replicas != 1:
            errors.append(
                FieldError(INVALID, f"{path}.replicas", shown_value(replicas), "always must be 1")
            )
        containers = _pod_spec(rjob).get("containers")
        if _ANCESTOR_CONTAINERS[ancestor] not in _names(containers):
            errors.append(
                FieldError(
                    INVALID,
                    f"{path}.template.spec.template.spec.containers",
                    shown_value(containers),
                    f"must contain the required container for the ancestor: {ancestor}",
                )
            )
    return errors


def _deprecated(labels: object) -> bool:
    return bool(_obj(labels).get(SUPPORT_LABEL) == SUPPORT_DEPRECATED)


def training_runtime_validator(kind: str) -> Handler:
    """The TrainingRuntime (``kind``) or ClusterTrainingRuntime validator. As in Trainer: a
    TrainingRuntime is checked on CREATE only, a ClusterTrainingRuntime on CREATE and UPDATE,
    and a deprecated ClusterTrainingRuntime's create is warned about."""
    cluster = kind == CLUSTER_TRAINING_RUNTIME_KIND

    def check(request: Request) -> AdmissionResponse:
        obj = request.get("object")
        if not isinstance(obj, dict):
            return allowed()
        create = request.get("operation") == "CREATE"
        if not create and not cluster:
            return allowed()
        notes: list[str] = []
        meta = _obj(obj.get("metadata"))
        if cluster and create and _deprecated(meta.get("labels")):
            notes.append(
                f'ClusterTrainingRuntime "{_str(meta.get("name"))}" is deprecated and will be '
                "removed in a future release of Kubeflow Trainer. See runtime deprecation "
                f"policy: {RUNTIME_DEPRECATION_POLICY_URL}"
            )
        return _answer(kind, obj, validate_replicated_jobs(obj), notes)

    return check


# -- TrainJob defaulting --------------------------------------------------------------------------


def _format_time(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _without_time(patch: Obj) -> Obj:
    return {k: v for k, v in patch.items() if k != "time"}


def _semantic(value: Any) -> Any:
    """A value as ``equality.Semantic.DeepEqual`` compares typed fields: null, ``[]`` and
    ``{}`` for an absent slice or map are all absent."""
    if isinstance(value, dict):
        out = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != []}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def default_runtime_patch_times(obj: Obj, old: Obj | None, now: datetime) -> Obj:
    """``obj`` (a copy) with Trainer's ``runtimePatches[].time``: on create, ``now`` where
    unset; on update, a patch whose manager was there before keeps the old time when it is
    otherwise unchanged and gets ``now`` when it changed; a new manager's patch gets ``now``
    where unset."""
    patches = _dig(obj, "spec", "runtimePatches")
    if not isinstance(patches, list) or not patches:
        return obj
    stamp = _format_time(now)
    new_obj = copy.deepcopy(obj)
    new_patches = new_obj["spec"]["runtimePatches"]
    old_by_manager: dict[str, Obj] = {}
    if old is not None:
        for p in _list(_dig(old, "spec", "runtimePatches")):
            if isinstance(p, dict) and isinstance(p.get("manager"), str):
                old_by_manager[p["manager"]] = p
    for patch in new_patches:
        if not isinstance(patch, dict):
            continue
        before = old_by_manager.get(_str(patch.get("manager"))) if old is not None else None
        if before is not None:
            unchanged = _semantic(_without_time(before)) == _semantic(_without_time(patch))
            if unchanged and before.get("time") is not None:
                patch["time"] = before["time"]
            elif unchanged:
                patch.pop("time", None)
            else:
                patch["time"] = stamp
        elif patch.get("time") is None:
            patch["time"] = stamp
    return new_obj


def trainjob_defaulter(clock: Clock = REAL_CLOCK) -> Handler:
    """The TrainJob mutating handler: a JSONPatch setting ``runtimePatches[].time``."""

    def default(request: Request) -> AdmissionResponse:
        obj = request.get("object")
        if not isinstance(obj, dict):
            return allowed()
        old = request.get("oldObject") if request.get("operation") == "UPDATE" else None
        target = default_runtime_patch_times(
            obj, old if isinstance(old, dict) else None, clock.utcnow()
        )
        return patched(json_patch(obj, target))

    return default


# -- TrainJob validation ----------------------------------------------------------------------


def _merged_template_spec(runtime: Obj, trainjob: Obj) -> Obj:
    """The runtime's JobSet spec with the TrainJob's runtime patches merged in, as Trainer's
    ``newRuntimeInfo`` gives it to the plugins; the runtime's own when a patch cannot merge."""
    spec = _obj(_dig(runtime, "spec", "template", "spec"))
    merged: Obj = spec
    try:
        for patch in _list(_dig(trainjob, "spec", "runtimePatches")):
            patch_spec = _dig(patch, "trainingRuntimeSpec", "template", "spec")
            if isinstance(patch_spec, dict):
                merged = strategic_merge(merged, typed_patch(patch_spec), JOBSET_SPEC)
    except (StrategicMergeError, TypeError, ValueError, AttributeError):
        return spec
    return merged


def _propagated_annotations(runtime: Obj, trainjob: Obj) -> Obj:
    annotations = dict(_obj(_dig(runtime, "spec", "template", "metadata", "annotations")))
    for patch in _list(_dig(trainjob, "spec", "runtimePatches")):
        annotations.update(
            _obj(_dig(patch, "trainingRuntimeSpec", "template", "metadata", "annotations"))
        )
    return annotations


def _job_containers(spec: Obj) -> dict[str, set[str]]:
    """Each replicated job's container and init container names."""
    out: dict[str, set[str]] = {}
    for rjob in _list(spec.get("replicatedJobs")):
        pod = _pod_spec(rjob)
        out[_str(_obj(rjob).get("name"))] = set(_names(pod.get("initContainers"))) | set(
            _names(pod.get("containers"))
        )
    return out


def _initializer_errors(merged: Obj, trainjob: Obj, ref: object) -> list[FieldError]:
    errors: list[FieldError] = []
    initializer = _obj(_dig(trainjob, "spec", "initializer"))
    containers = _job_containers(merged)
    for key, job, config in (
        ("dataset", DATASET_INITIALIZER, "datasetConfig"),
        ("model", MODEL_INITIALIZER, "modelConfig"),
    ):
        if initializer.get(key) is None:
            continue
        if job not in containers:
            detail = f"must have {job} job when trainJob is configured with input {config}"
        elif job not in containers[job]:
            detail = f"must have container with name - {job} in the {job} job"
        elif not any(
            INITIALIZER_VOLUME in _names(c.get("volumeMounts"))
            for rjob in _list(merged.get("replicatedJobs"))
            if _obj(rjob).get("name") == job
            for c in map(_obj, _list(_pod_spec(rjob).get("containers")))
            if c.get("name") == job
        ):
            detail = (
                f"must have volumeMount with name - {INITIALIZER_VOLUME} in container {job} "
                f"of the {job} job"
            )
        else:
            continue
        errors.append(FieldError(INVALID, _RUNTIME_REF, shown_value(ref), detail))
    return errors


def _domain_prefixed_path_errors(path: str, value: object) -> list[FieldError]:
    """apimachinery's ``validation.IsDomainPrefixedPath``."""
    if not isinstance(value, str) or not value:
        return [FieldError(REQUIRED, path)]
    host, slash, rest = value.partition("/")
    if not slash or not host or not rest:
        return [
            FieldError(
                INVALID, path, value, 'must be a domain-prefixed path (such as "acme.io/foo")'
            )
        ]
    errors: list[FieldError] = []
    if len(host) > 253:
        errors.append(FieldError(INVALID, path, host, "must be no more than 253 characters"))
    if not _DNS1123_SUBDOMAIN.fullmatch(host):
        errors.append(
            FieldError(
                INVALID,
                path,
                host,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character "
                "(e.g. 'example.com', regex used for validation is "
                f"'{_DNS1123_SUBDOMAIN.pattern}')",
            )
        )
    if not _HTTP_PATH.fullmatch(rest):
        errors.append(
            FieldError(
                INVALID,
                path,
                rest,
                f"Invalid path (regex used for validation is '{_HTTP_PATH_FMT}')",
            )
        )
    return errors


def _runtime_patch_errors(runtime_spec: Obj, trainjob: Obj) -> list[FieldError]:
    """Managers are domain-prefixed paths; patched jobs and containers exist in the runtime's
    template; no env for the ``node`` and initializer containers."""
    errors: list[FieldError] = []
    patches = _dig(trainjob, "spec", "runtimePatches")
    shown = shown_value(patches)
    containers = _job_containers(runtime_spec)
    for patch in _list(patches):
        errors += _domain_prefixed_path_errors(f"{_PATCHES}.manager", _obj(patch).get("manager"))
        patch_spec = _dig(patch, "trainingRuntimeSpec", "template", "spec")
        for rjob in _list(_obj(patch_spec).get("replicatedJobs")):
            name = _str(_obj(rjob).get("name"))
            if name not in containers:
                errors.append(
                    FieldError(
                        INVALID,
                        _PATCHES,
                        shown,
                        "must not have replicated job that doesn't exist in the runtime job "
                        "template",
                    )
                )
                continue
            pod = _pod_spec(rjob)
            for init_name in _names(pod.get("initContainers")):
                if init_name not in containers[name]:
                    errors.append(
                        FieldError(
                            INVALID,
                            _PATCHES,
                            shown,
                            f"must not have initContainer that doesn't exist in the runtime job "
                            f"{name}",
                        )
                    )
            for patched_container in map(_obj, _list(pod.get("containers"))):
                cname = _str(patched_container.get("name"))
                if cname not in containers[name]:
                    errors.append(
                        FieldError(
                            INVALID,
                            _PATCHES,
                            shown,
                            f"must not have container that doesn't exist in the runtime job {name}",
                        )
                    )
                elif _list(patched_container.get("env")) and cname in (
                    DATASET_INITIALIZER,
                    MODEL_INITIALIZER,
                    NODE,
                ):
                    errors.append(
                        FieldError(
                            INVALID,
                            _PATCHES,
                            shown,
                            f"must not have envs for the {DATASET_INITIALIZER}, "
                            f"{MODEL_INITIALIZER}, {NODE} containers",
                        )
                    )
    return errors


async def _patch_change_errors(
    old: Obj | None, new: Obj, objects: TrainerObjects
) -> list[FieldError]:
    """runtimePatches may change only while the TrainJob is suspended before or after the
    update, and not while its JobSet still has active Jobs (Trainer #3469)."""
    if old is None:
        return []
    old_spec, new_spec = _obj(old.get("spec")), _obj(new.get("spec"))
    if _semantic(old_spec.get("runtimePatches") or []) == _semantic(
        new_spec.get("runtimePatches") or []
    ):
        return []
    if old_spec.get("suspend") is not True and new_spec.get("suspend") is not True:
        return [
            FieldError(
                FORBIDDEN,
                _PATCHES,
                detail="RuntimePatches can only be modified when the TrainJob is suspended "
                "before or after the update",
            )
        ]
    meta = _obj(new.get("metadata"))
    jobset = await objects.jobset(_str(meta.get("namespace")), _str(meta.get("name")))
    return [
        FieldError(
            FORBIDDEN,
            _PATCHES,
            detail="RuntimePatches cannot be modified when the JobSet's ReplicatedJob "
            f"{_str(status.get('name'))} is still active",
        )
        for status in map(_obj, _list(_dig(jobset, "status", "replicatedJobsStatus")))
        if _int(status.get("active"), 0) > 0
    ]


def _reserved_env_errors(trainjob: Obj, reserved: frozenset[str]) -> list[FieldError]:
    env = _dig(trainjob, "spec", "trainer", "env")
    found = sorted({n for n in _names(env) if n in reserved})
    if not found:
        return []
    return [
        FieldError(
            INVALID,
            _TRAINER_ENV,
            shown_value(env),
            f"must not have reserved envs, invalid envs configured: [{' '.join(found)}]",
        )
    ]


def _find_container(merged: Obj, job: str, container: str) -> bool:
    for rjob in _list(merged.get("replicatedJobs")):
        if _obj(rjob).get("name") == job:
            pod = _pod_spec(rjob)
            names = _names(pod.get("containers")) + _names(pod.get("initContainers"))
            return container in names
    return False


def _torch_errors(merged: Obj, torch: Obj, trainjob: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    for target in map(_obj, _list(_dig(torch, "envInjection", "targets"))):
        job = _str(target.get("jobName"))
        for container in map(_str, _list(target.get("containerNames"))):
            if not _find_container(merged, job, container):
                errors.append(
                    FieldError(
                        INVALID,
                        _RUNTIME_REF,
                        shown_value(target),
                        f'envInjection target podSet "{job}" container "{container}" not found '
                        "in runtime template",
                    )
                )
    trainer = _dig(trainjob, "spec", "trainer")
    if isinstance(trainer, dict):
        errors += _reserved_env_errors(trainjob, TORCH_RESERVED_ENVS)
        if trainer.get("command") == TORCHTUNE_ENTRYPOINT:
            errors += _torchtune_errors(merged, trainjob, trainer)
    return errors


def _torchtune_errors(merged: Obj, trainjob: Obj, trainer: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    name = _str(_dig(trainjob, "spec", "runtimeRef", "name"))
    model = model_from_runtime_name(name)
    name_path = f"{_RUNTIME_REF}.name"
    if model not in SUPPORTED_MODELS:
        errors.append(
            FieldError(
                INVALID,
                name_path,
                name,
                f"must have a supported pretrained model, invalid model configured: {model}",
            )
        )
    num_nodes = _int(trainer.get("numNodes"), 1)
    if num_nodes > 1 and model != LLAMA3_3_70B:
        errors.append(
            FieldError(INVALID, "spec.trainer.numNodes", num_nodes, f"must be 1 for {model} model")
        )
    num_proc: object = trainer.get("numProcPerNode")
    shown_proc: object = "auto" if num_proc is None else num_proc
    resources = trainer.get("resourcesPerNode")
    if not isinstance(resources, dict):
        resources = runtime_resources_per_node(merged)
    try:
        gpus = gpus_per_node(resources)
    except (ValueError, TypeError, AttributeError):
        gpus = 0
    args = [a for a in _list(trainer.get("args")) if isinstance(a, str)]
    _, config = recipe_and_config(
        num_nodes=num_nodes,
        num_proc_per_node="auto" if num_proc is None else str(num_proc),
        gpus=gpus,
        args=args,
        runtime_name=name,
    )
    if SUFFIX_QLORA_DISTRIBUTED in config:
        if model == QWEN2_5_1_5B:
            errors.append(
                FieldError(INVALID, name_path, name, f"QLoRA is not supported for {model} model")
            )
        if SUFFIX_QLORA_SINGLE_DEVICE not in config and model in (
            LLAMA3_2_1B,
            LLAMA3_2_3B,
        ):
            errors += [
                FieldError(
                    INVALID,
                    "spec.trainer.numProcPerNode",
                    shown_value(shown_proc),
                    f"must be auto or 1 for {model} model when using QLoRA",
                ),
                FieldError(
                    INVALID,
                    "spec.trainer.resourcesPerNode",
                    shown_value(trainer.get("resourcesPerNode")),
                    f"must have gpu resource with value 1 for {model} model when using QLoRA",
                ),
            ]
    if num_nodes > 1 and (is_lora(args) or is_qlora(args)):
        errors.append(
            FieldError(
                INVALID,
                "spec.trainer.numNodes",
                num_nodes,
                "LoRA fine-tuning is not supported for multi-node training in TorchTune",
            )
        )
    for i, arg in enumerate(_list(trainer.get("args"))):
        key = _str(arg).split("=", 1)[0]
        if key in IMMUTABLE_CONFIGS:
            errors.append(
                FieldError(
                    INVALID,
                    f"spec.trainer.args[{i}]",
                    arg,
                    f'must not set immutable config "{key}" in trainer args; it is managed by '
                    "the runtime",
                )
            )
    return errors


def _mpi_errors(merged: Obj, mpi: Obj, trainjob: Obj) -> list[FieldError]:
    trainer = _dig(trainjob, "spec", "trainer")
    if not isinstance(trainer, dict):
        return []
    errors: list[FieldError] = []
    if _int(trainer.get("numNodes"), 1) >= 2 and mpi.get("runLauncherAsNode") is True:
        jobs = {_obj(r).get("name") for r in _list(merged.get("replicatedJobs"))}
        if LAUNCHER not in jobs or NODE not in jobs:
            errors.append(
                FieldError(
                    INVALID,
                    "spec.trainer.numNodes",
                    shown_value(trainer.get("numNodes")),
                    "must have 1 when MPI trainingRuntime with enabled runLauncherAsNode does "
                    "not have either launcher and node",
                )
            )
    return errors + _reserved_env_errors(trainjob, MPI_RESERVED_ENVS)


def _xgboost_errors(trainjob: Obj) -> list[FieldError]:
    return [
        FieldError(
            FORBIDDEN, f"{_TRAINER_ENV}[{i}]", detail=f"{n} is reserved for the XGBoost runtime"
        )
        for i, n in enumerate(_names(_dig(trainjob, "spec", "trainer", "env")))
        if n in XGBOOST_RESERVED_ENVS
    ]


def _flux_errors(merged: Obj, flux: Obj, trainjob: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    num_proc = _dig(trainjob, "spec", "trainer", "numProcPerNode")
    if num_proc is None:
        num_proc = flux.get("numProcPerNode")
    if isinstance(num_proc, int) and num_proc < 1:
        errors.append(
            FieldError(
                INVALID,
                "spec.trainer.numProcPerNode",
                num_proc,
                "must be greater than or equal to 1 for Flux TrainJob",
            )
        )
    for rjob in _list(merged.get("replicatedJobs")):
        if _obj(rjob).get("name") != NODE:
            continue
        for name in _names(_pod_spec(rjob).get("initContainers")):
            if name == FLUX_INSTALLER:
                errors.append(
                    FieldError(
                        INVALID,
                        "spec.trainer.initContainers",
                        name,
                        f"InitContainer '{FLUX_INSTALLER}' is reserved",
                    )
                )
    return errors


async def _volcano_errors(
    merged: Obj, runtime: Obj, trainjob: Obj, objects: TrainerObjects
) -> list[FieldError]:
    errors: list[FieldError] = []
    annotations = _propagated_annotations(runtime, trainjob)
    if annotations.get(VOLCANO_QUEUE_ANNOTATION) == "":
        errors.append(
            FieldError(
                INVALID,
                f"spec.annotations[{VOLCANO_QUEUE_ANNOTATION}]",
                "",
                "Volcano queue name must not be empty",
            )
        )
    for rjob in _list(merged.get("replicatedJobs")):
        name = _pod_spec(rjob).get("priorityClassName")
        if not isinstance(name, str) or name in SYSTEM_PRIORITY_CLASSES:
            continue
        if not await objects.priority_class_exists(name):
            errors.append(
                FieldError(
                    INVALID,
                    "spec.templateSpec.priorityClassName",
                    name,
                    f'PriorityClass "{name}" doesn\'t exist: '
                    f'priorityclasses.scheduling.k8s.io "{name}" not found',
                )
            )
    return errors


async def validate_trainjob(
    trainjob: Obj, old: Obj | None, objects: TrainerObjects
) -> tuple[list[FieldError], list[str]]:
    """Every rule Trainer's TrainJob validator applies (``old`` on updates): the errors and
    the warnings."""
    ref = runtime_key(trainjob)
    known = (TRAINING_RUNTIME_KIND, CLUSTER_TRAINING_RUNTIME_KIND)
    if ref.api_group != TRAINER_API_GROUP or ref.kind not in known:
        return [
            FieldError(
                NOT_SUPPORTED,
                _RUNTIME_REF,
                runtime_registry_key(ref),
                supported_values(tuple(f"{k}.{TRAINER_API_GROUP}" for k in known)),
            )
        ], []
    namespace = _str(_dig(trainjob, "metadata", "namespace"))
    runtime = await objects.runtime(ref.kind, namespace, ref.name)
    ref_value = shown_value(_dig(trainjob, "spec", "runtimeRef"))
    if runtime is None:
        plural = (
            "clustertrainingruntimes"
            if ref.kind == CLUSTER_TRAINING_RUNTIME_KIND
            else ("trainingruntimes")
        )
        kind_word = ref.kind[0].lower() + ref.kind[1:]
        return [
            FieldError(
                INVALID,
                _RUNTIME_REF,
                ref_value,
                f'{plural}.{TRAINER_API_GROUP} "{ref.name}" not found: specified {kind_word} '
                "must be created before the TrainJob is created",
            )
        ], []
    notes: list[str] = []
    if ref.kind == CLUSTER_TRAINING_RUNTIME_KIND and _deprecated(
        _dig(runtime, "metadata", "labels")
    ):
        notes.append(
            f'Referenced ClusterTrainingRuntime "{ref.name}" is deprecated and will be removed '
            "in a future release of Kubeflow Trainer. See runtime deprecation policy: "
            f"{RUNTIME_DEPRECATION_POLICY_URL}"
        )
    runtime_spec = _obj(_dig(runtime, "spec", "template", "spec"))
    merged = _merged_template_spec(runtime, trainjob)
    # the JobSet plugin
    errors = _initializer_errors(merged, trainjob, ref_value)
    errors += await _patch_change_errors(old, trainjob, objects)
    errors += _runtime_patch_errors(runtime_spec, trainjob)
    # the mlPolicy plugin (the CRD allows one source)
    ml_policy = _obj(_dig(runtime, "spec", "mlPolicy"))
    if isinstance(ml_policy.get("torch"), dict):
        errors += _torch_errors(merged, ml_policy["torch"], trainjob)
    if isinstance(ml_policy.get("mpi"), dict):
        errors += _mpi_errors(merged, ml_policy["mpi"], trainjob)
    if isinstance(ml_policy.get("xgboost"), dict):
        errors += _xgboost_errors(trainjob)
    if isinstance(ml_policy.get("flux"), dict):
        errors += _flux_errors(merged, ml_policy["flux"], trainjob)
    # the PodGroup plugin
    if isinstance(_dig(runtime, "spec", "podGroupPolicy", "volcano"), dict):
        errors += await _volcano_errors(merged, runtime, trainjob, objects)
    return errors, notes


def trainjob_validator(objects: TrainerObjects) -> Handler:
    """The TrainJob validating handler: every rule on CREATE and on an UPDATE that changes
    ``spec``; an UPDATE that leaves ``spec`` as it was is admitted (see the module docstring)."""

    async def check(request: Request) -> AdmissionResponse:
        obj = request.get("object")
        if not isinstance(obj, dict):
            return allowed()
        old = request.get("oldObject")
        old = old if request.get("operation") == "UPDATE" and isinstance(old, dict) else None
        if old is not None and old.get("spec") == obj.get("spec"):
            return allowed()
        errors, notes = await validate_trainjob(obj, old, objects)
        return _answer("TrainJob", obj, errors, notes)

    return check


def register_trainer_webhooks(
    server: WebhookServer, objects: TrainerObjects, *, clock: Clock = REAL_CLOCK
) -> None:
    """Serve Trainer's four webhooks from ``server``."""
    server.register(TRAINJOB_MUTATE_PATH, trainjob_defaulter(clock))
    server.register(TRAINJOB_VALIDATE_PATH, trainjob_validator(objects))
    server.register(
        TRAINING_RUNTIME_VALIDATE_PATH, training_runtime_validator(TRAINING_RUNTIME_KIND)
    )
    server.register(
        CLUSTER_TRAINING_RUNTIME_VALIDATE_PATH,
        training_runtime_validator(CLUSTER_TRAINING_RUNTIME_KIND),
    )


# -- configurations ---------------------------------------------------------------------------


def trainer_webhook_entries(
    client_config: Callable[[str], dict[str, Any]], *, timeout_seconds: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The mutating and the validating webhook entries (Trainer's names, paths and rules; the
    runtime validators skip objects labelled ``webhook-validation: disabled``), for kubetrain's
    two configurations; ``client_config(path)`` says how the API server reaches a path."""

    def hook(
        name: str, path: str, resource: str, scope: str, selector: bool = False
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": f"{name}.{TRAINER_API_GROUP}",
            "admissionReviewVersions": ["v1"],
            "clientConfig": client_config(path),
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
        }
        if selector:
            entry["objectSelector"] = {
                "matchExpressions": [
                    {"key": WEBHOOK_VALIDATION_LABEL, "operator": "NotIn", "values": ["disabled"]}
                ]
            }
        entry.update(
            {
                "rules": [
                    {
                        "apiGroups": [TRAINER_API_GROUP],
                        "apiVersions": [VERSION],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [resource],
                        "scope": scope,
                    }
                ],
                "sideEffects": "None",
                "timeoutSeconds": timeout_seconds,
            }
        )
        return entry

    mutating = [
        {
            **hook("defaulter.trainjob", TRAINJOB_MUTATE_PATH, "trainjobs", "Namespaced"),
            "reinvocationPolicy": "Never",
        }
    ]
    validating = [
        hook(
            "validator.clustertrainingruntime",
            CLUSTER_TRAINING_RUNTIME_VALIDATE_PATH,
            "clustertrainingruntimes",
            "Cluster",
            selector=True,
        ),
        hook(
            "validator.trainingruntime",
            TRAINING_RUNTIME_VALIDATE_PATH,
            "trainingruntimes",
            "Namespaced",
            selector=True,
        ),
        hook("validator.trainjob", TRAINJOB_VALIDATE_PATH, "trainjobs", "Namespaced"),
    ]
    return mutating, validating
