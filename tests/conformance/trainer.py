"""The reference Kubeflow Trainer controller (``github.com/kubeflow/trainer/v2`` v2.0.0, built by
``tools/conformance/build_trainer.sh``) next to a real control plane, and the comparison of the
JobSets it builds for a TrainJob with the ones kubetrain's pure builder
(``kubetrain.reconcilers.trainer.objects.build_objects``) builds from the same runtime.

Why this exists: kubetrain ports Trainer's JobSet build (it implements v2.3.0); the Go module
proxy serves only v2.0.0 of the Trainer module, so this is the only real Trainer we can run. Each
difference is either v2.0.0 behaving unlike v2.3.0 (``KNOWN_DIFFERENCES`` says which, with the Go
source that shows it) or a kubetrain bug.

What a Trainer v2.0.0 install has, made here (``outside_manager.py`` does the generic part):

- the JobSet CRD (from the ``sigs.k8s.io/jobset`` v0.8.2 module zip that the Trainer build leaves
  in its GOMODCACHE: the version Trainer v2.0.0 is built against; no JobSet controller runs, so the
  JobSets stay as Trainer applied them) and Trainer's CRDs (``manifests/base/crds``);
- the namespace ``kubeflow-system`` (the default of ``pkg/util/cert`` outside a pod), the webhook
  Service ``kubeflow-trainer-controller-manager`` to this machine, the Secret
  ``kubeflow-trainer-webhook-cert`` and the ValidatingWebhookConfiguration
  ``validator.trainer.kubeflow.org`` (the name its cert rotator injects the CA into) with the
  three webhooks of ``manifests/base/webhook/manifests.yaml``;
- the process, flags only (v2.0.0 has no ``--config``; leader election is off by default).

Trainer v2.0.0 reads its serving certificates from ``/tmp/k8s-webhook-server/serving-certs``
(a constant), the folder JobSet's and Kueue's managers use too. Where ``unshare --mount`` works
(root), the process runs in a mount namespace of its own with a private folder bound over
``/tmp/k8s-webhook-server``, so it never shares that folder with another manager of this machine;
elsewhere it uses the folder itself (``outside_manager.private_webhook_root``, as for JobSet).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from conformance.controlplane import cache_root, free_port
from conformance.outside_manager import (
    VALIDATING,
    ManagerProcess,
    WebhookEndpoint,
    create_if_absent,
    install_crds,
    install_webhooks,
    private_webhook_root,
    running_manager,
)

from kubetrain.base.objects import Obj
from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import CONFIGMAPS, NAMESPACES, SECRETS, ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.gang.quantity import parse_quantity
from kubetrain.reconcilers.trainer.objects import TRAINJOB_NAME_LABEL, build_objects

__all__ = [
    "CASES",
    "KNOWN_DIFFERENCES",
    "TRAINER_VERSION",
    "Case",
    "CaseResult",
    "Difference",
    "compare_cases",
    "diff_objects",
    "find_trainer",
    "format_table",
    "running_trainer",
    "trainer_root",
]

TRAINER_VERSION = os.environ.get("KUBETRAIN_TRAINER_VERSION", "v2.0.0")
NAMESPACE = "kubeflow-system"
SERVICE = "kubeflow-trainer-controller-manager"
SECRET = "kubeflow-trainer-webhook-cert"
WEBHOOK_CONFIGURATION = "validator.trainer.kubeflow.org"
JOBSET_MODULE = "sigs.k8s.io/jobset@v0.8.2"

TRAINER_GROUP = "trainer.kubeflow.org"
TRAINJOBS = ResourceRef(TRAINER_GROUP, "v1alpha1", "trainjobs", True, "TrainJob")
TRAINING_RUNTIMES = ResourceRef(
    TRAINER_GROUP, "v1alpha1", "trainingruntimes", True, "TrainingRuntime"
)
CLUSTER_TRAINING_RUNTIMES = ResourceRef(
    TRAINER_GROUP, "v1alpha1", "clustertrainingruntimes", False, "ClusterTrainingRuntime"
)
JOBSETS = ResourceRef("jobset.x-k8s.io", "v1alpha2", "jobsets", True, "JobSet")


# -- the install ---------------------------------------------------------------------------------


def trainer_root() -> Path:
    """Where ``build_trainer.sh`` leaves ``bin/trainer-controller-manager``, ``module`` (the
    Trainer module's source) and ``gomodcache`` (with the JobSet module it was built against)."""
    return cache_root() / f"trainer-{TRAINER_VERSION}"


def find_trainer() -> tuple[Path, Path] | None:
    """(binary, module source) when ``build_trainer.sh`` has built them, else None."""
    root = trainer_root()
    exe, module = root / "bin" / "trainer-controller-manager", root / "module"
    if exe.is_file() and os.access(exe, os.X_OK) and (module / "manifests/base/crds").is_dir():
        return exe, module
    return None


def _yaml_docs(paths: Iterator[Path]) -> list[Obj]:
    docs: list[Obj] = []
    for path in paths:
        if path.name == "kustomization.yaml":
            continue
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def trainer_crds(module: Path) -> list[Obj]:
    crds = _yaml_docs(iter(sorted((module / "manifests/base/crds").glob("*.yaml"))))
    jobset = trainer_root() / "gomodcache" / JOBSET_MODULE / "config/components/crd/bases"
    crds += _yaml_docs(iter(sorted(jobset.glob("*.yaml"))))
    return crds


def trainer_runtimes(module: Path) -> list[Obj]:
    """Trainer's own ClusterTrainingRuntimes (``manifests/base/runtimes``, torchtune included)."""
    return _yaml_docs(iter(sorted((module / "manifests/base/runtimes").rglob("*.yaml"))))


def trainer_webhooks(module: Path, endpoint: WebhookEndpoint) -> Obj:
    """The ValidatingWebhookConfiguration of ``manifests/base/webhook/manifests.yaml``, named as
    the rotator expects and pointed at ``endpoint``'s Service."""
    doc = next(
        d
        for d in yaml.safe_load_all((module / "manifests/base/webhook/manifests.yaml").read_text())
        if d and d.get("kind") == "ValidatingWebhookConfiguration"
    )
    for hook in doc["webhooks"]:
        hook["clientConfig"]["service"].update(
            namespace=endpoint.namespace, name=endpoint.service, port=443
        )
    return {
        "apiVersion": doc["apiVersion"],
        "kind": doc["kind"],
        "metadata": {"name": WEBHOOK_CONFIGURATION},
        "webhooks": doc["webhooks"],
    }


@asynccontextmanager
async def running_trainer(
    client: ApiClient, kubeconfig_path: str, work_dir: Path, *, start_timeout: float = 90.0
) -> AsyncIterator[ManagerProcess]:
    """Install Trainer (CRDs, webhooks, runtimes) into the cluster of ``client`` and run its
    controller until the block ends."""
    found = find_trainer()
    if found is None:
        raise FileNotFoundError(
            f"Trainer {TRAINER_VERSION} is not built in {trainer_root()}: run "
            "tools/conformance/build_trainer.sh"
        )
    exe, module = found
    endpoint = WebhookEndpoint(NAMESPACE, SERVICE, SECRET, free_port())
    await install_crds(client, trainer_crds(module))
    await install_webhooks(client, endpoint, [trainer_webhooks(module, endpoint)])
    health_port = free_port()
    argv = [
        str(exe),
        f"--kubeconfig={kubeconfig_path}",
        f"--webhook-server-port={endpoint.port}",
        f"--health-probe-bind-address=127.0.0.1:{health_port}",
        "--metrics-bind-address=0",
        "--leader-elect=false",
    ]
    argv, cert_dir = await private_webhook_root(argv, work_dir)
    async with running_manager(
        "trainer",
        argv,
        client=client,
        endpoint=endpoint,
        work_dir=work_dir,
        cert_dir=cert_dir,
        health_port=health_port,
        start_timeout=start_timeout,
    ) as trainer:
        try:
            for runtime in trainer_runtimes(module):
                await _create_validated(client, CLUSTER_TRAINING_RUNTIMES, runtime)
            yield trainer
        finally:
            # Before the process goes: its webhooks (failurePolicy Fail) would refuse every later
            # update of a runtime or TrainJob, a test cleanup's finalizer stripping included.
            try:
                await client.delete(VALIDATING, None, WEBHOOK_CONFIGURATION)
            except ApiStatusError as e:
                if not e.is_not_found:
                    raise


async def _create_validated(
    client: ApiClient, ref: ResourceRef, obj: Obj, *, timeout: float = 30.0
) -> Obj:
    """Create ``obj`` (already existing is fine), retrying while Trainer's webhook is not yet
    serving the kind or its cache lacks the runtime a TrainJob names."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            created: Obj = await client.create(ref, obj)
            return created
        except ApiStatusError as e:
            if e.is_already_exists:
                meta = obj["metadata"]
                return await client.get(ref, meta.get("namespace"), meta["name"])
            retry = e.code >= 500 or "must be created before" in str(e)
            if not retry or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.25)


# -- the cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A TrainJob (``spec``), named ``name``, on ``runtime`` (a ClusterTrainingRuntime of
    Trainer's manifests or of ``EXTRA_RUNTIMES``, or with ``namespaced`` a TrainingRuntime of
    ``EXTRA_RUNTIMES`` created in the case's namespace)."""

    name: str
    runtime: str
    spec: Obj
    namespaced: bool = False
    about: str = ""
    kubetrain_refuses: str = ""
    """Set when kubetrain's builder is expected to raise: the start of its error."""


NODE_IMAGE = "docker.io/kubeflow/example:1"

#: Runtimes besides Trainer's own: plain ML (no torch/mpi policy) and a torch runtime whose
#: container has resources (what v2.3.0's torch plugin reads when the TrainJob has none).
EXTRA_RUNTIMES: dict[str, Obj] = {
    "kubetrain-plainml": {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "ClusterTrainingRuntime",
        "metadata": {"name": "kubetrain-plainml"},
        "spec": {
            "mlPolicy": {"numNodes": 3},
            "template": {
                "metadata": {"labels": {"team": "ml"}, "annotations": {"note": "plain"}},
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": "node",
                            "template": {
                                "metadata": {
                                    "labels": {
                                        "trainer.kubeflow.org/trainjob-ancestor-step": "trainer"
                                    }
                                },
                                "spec": {
                                    "template": {
                                        "spec": {
                                            "containers": [
                                                {
                                                    "name": "node",
                                                    "image": "busybox:1",
                                                    "command": ["sh", "-c", "env"],
                                                    "env": [{"name": "FROM_RUNTIME", "value": "1"}],
                                                }
                                            ]
                                        }
                                    }
                                },
                            },
                        }
                    ]
                },
            },
        },
    },
    "kubetrain-plainml-bare": {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "ClusterTrainingRuntime",
        "metadata": {"name": "kubetrain-plainml-bare"},
        "spec": {
            "mlPolicy": {"numNodes": 1},
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": "node",
                            "template": {
                                "metadata": {
                                    "labels": {
                                        "trainer.kubeflow.org/trainjob-ancestor-step": "trainer"
                                    }
                                },
                                "spec": {
                                    "template": {
                                        "spec": {
                                            "containers": [{"name": "node", "image": "busybox:1"}]
                                        }
                                    }
                                },
                            },
                        }
                    ]
                },
            },
        },
    },
    "torch-with-resources": {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainingRuntime",
        "metadata": {"name": "torch-with-resources"},
        "spec": {
            "mlPolicy": {"numNodes": 1, "torch": {"numProcPerNode": "auto"}},
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": "node",
                            "template": {
                                "metadata": {
                                    "labels": {
                                        "trainer.kubeflow.org/trainjob-ancestor-step": "trainer"
                                    }
                                },
                                "spec": {
                                    "template": {
                                        "spec": {
                                            "containers": [
                                                {
                                                    "name": "node",
                                                    "image": "pytorch/pytorch:2",
                                                    "resources": {
                                                        "requests": {"cpu": "2", "memory": "1Gi"}
                                                    },
                                                }
                                            ]
                                        }
                                    }
                                },
                            },
                        }
                    ]
                },
            },
        },
    },
}

CASES: tuple[Case, ...] = (
    Case(
        "torch-2nodes-cpu",
        "torch-distributed",
        {
            "trainer": {
                "numNodes": 2,
                "image": NODE_IMAGE,
                "args": ["--epochs", "1"],
                "env": [{"name": "LR", "value": "0.1"}],
                "resourcesPerNode": {"limits": {"cpu": "3"}, "requests": {"cpu": "2"}},
            }
        },
        about="numNodes 2, resourcesPerNode cpu (limits 3, requests 2)",
    ),
    Case(
        "torch-no-trainer",
        "torch-distributed",
        {},
        about="no spec.trainer: the runtime as it is",
    ),
    Case(
        "torch-nproc-4",
        "torch-distributed",
        {"trainer": {"numNodes": 1, "numProcPerNode": 4}},
        about="numProcPerNode 4",
    ),
    Case(
        "torch-suspended",
        "torch-distributed",
        {"suspend": True, "trainer": {"numNodes": 2}},
        about="suspend: true",
    ),
    Case(
        "torch-initializers",
        "torchtune-llama3.2-1b",
        {
            "initializer": {
                "dataset": {
                    "storageUri": "hf://example/dataset",
                    "env": [{"name": "SPLIT", "value": "train"}],
                    "secretRef": {"name": "dataset-token"},
                },
                "model": {"storageUri": "hf://example/model"},
            },
            "trainer": {"command": ["python", "train.py"], "numNodes": 1},
        },
        about="initializers (torchtune runtime, a non-`tune run` command)",
    ),
    Case(
        "plainml-2nodes",
        "kubetrain-plainml",
        {
            "trainer": {
                "numNodes": 2,
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "FROM_RUNTIME", "value": "2"},
                    {
                        "name": "TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": True}},
                    },
                ],
            }
        },
        about="plain ML runtime (mlPolicy numNodes only), template metadata, env override/valueFrom",
    ),
    Case(
        "plainml-no-env",
        "kubetrain-plainml-bare",
        {"trainer": {"numNodes": 2, "image": "busybox:2"}},
        about="plain ML runtime and a trainer without env, on a container without env",
    ),
    Case(
        "torch-quantities",
        "torch-distributed",
        {
            "trainer": {
                "numNodes": 1,
                "resourcesPerNode": {
                    "requests": {"cpu": "1500m", "memory": "1024Mi"},
                    "limits": {"cpu": 2, "memory": "2048Mi"},
                },
            }
        },
        about="resourcesPerNode quantities in a non-canonical form (1024Mi, 2 as a number)",
    ),
    Case(
        "mpi-distributed",
        "mpi-distributed",
        {"trainer": {"numNodes": 2}},
        about="MPI runtime (v2.0.0's mpi-distributed), with its hostfile ConfigMap and SSH Secret",
    ),
    Case(
        "torch-runtime-resources",
        "torch-with-resources",
        {"trainer": {"numNodes": 2}},
        namespaced=True,
        about="TrainingRuntime whose node container requests cpu 2; no resourcesPerNode",
    ),
    Case(
        "torch-resources-override",
        "torch-with-resources",
        {"trainer": {"numNodes": 1, "resourcesPerNode": {"limits": {"cpu": "4"}}}},
        namespaced=True,
        about="resourcesPerNode limits cpu 4 over the runtime's requests cpu 2, memory 1Gi",
    ),
)

#: (case, path) -> why Trainer v2.0.0 and kubetrain (v2.3.0) differ there. ``compare_cases``
#: marks every difference found here as explained; the test fails on any other, and on an entry
#: here that no longer differs.
V200_NPROC = (
    "version: v2.0.0 torch.go EnforceMLPolicy starts from the runtime's "
    "mlPolicy.torch.numProcPerNode ('auto') and only resolves 'auto' to a CPU count when the "
    "TrainJob has resourcesPerNode; v2.3.0 torch.go starts from 'auto' and resolves it from "
    "resourcesPerNode, else the runtime container's resources "
    "(runtime.ExtractResourcePerNodeFromRuntime): max(1, cpu) when there is no GPU"
)
V230_MPI_MODES = (
    "version: v2.3.0 mpi.go EnforceMLPolicy sets the SSH auth volume's "
    "WithDefaultMode(constants.MPISSHAuthDefaultMode) (0400) and each item's WithMode (0640 "
    "private key, 0644 public key and authorized_keys); v2.0.0 mpi.go sets neither"
)
MPI_NODE = "spec.replicatedJobs[node].template.spec.template.spec"
MPI_LAUNCHER = "spec.replicatedJobs[launcher].template.spec.template.spec"
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {
    ("mpi-distributed", f"{MPI_NODE}.volumes[mpi-ssh-auth].secret.defaultMode"): V230_MPI_MODES,
    ("mpi-distributed", f"{MPI_NODE}.volumes[mpi-ssh-auth].secret.items"): V230_MPI_MODES,
    ("mpi-distributed", f"{MPI_LAUNCHER}.volumes[mpi-ssh-auth].secret.defaultMode"): V230_MPI_MODES,
    ("mpi-distributed", f"{MPI_LAUNCHER}.volumes[mpi-ssh-auth].secret.items"): V230_MPI_MODES,
    (
        "torch-2nodes-cpu",
        "spec.replicatedJobs[node].template.spec.template.spec.containers[node]"
        ".env[PET_NPROC_PER_NODE].value",
    ): (
        "version: v2.0.0 torch.go calculateNumProcPerNode reads resourcesPerNode.limits first "
        "(3), then requests; v2.3.0 getNumCPUPerNode reads requests first (2), then limits"
    ),
    (
        "torch-runtime-resources",
        "spec.replicatedJobs[node].template.spec.template.spec.containers[node]"
        ".env[PET_NPROC_PER_NODE].value",
    ): V200_NPROC,
    (
        "torch-suspended",
        "spec.replicatedJobs[node].template.spec.template.spec.containers[node]"
        ".env[PET_NPROC_PER_NODE].value",
    ): V200_NPROC,
    (
        "torch-resources-override",
        "spec.replicatedJobs[node].template.spec.template.spec.containers[node].resources.requests",
    ): (
        "version: v2.0.0 jobset/builder.go Trainer() replaces the container's resources with "
        "resourcesPerNode (WithResources); v2.3.0 merges resourcesPerNode into them per "
        "resource (MergeResourceRequirements), keeping the runtime's requests"
    ),
}


# -- the comparison ------------------------------------------------------------------------------


GO_EMPTY_STRUCT = (
    "Go (v2.0.0 and v2.3.0 alike): the runtime's typed JobSetSpec goes through "
    "apply.FromTypedObjWithFields (pkg/apply/apply.go: DefaultUnstructuredConverter.ToUnstructured "
    "then json into the apply configuration), which keeps the non-pointer empty structs "
    "PodTemplateSpec.ObjectMeta and Container.Resources as {}; Trainer applies them, kubetrain "
    "leaves them out. No effect on the Jobs or pods"
)
GO_QUANTITY = (
    "Go (v2.0.0 and v2.3.0 alike): quantities pass through resource.Quantity, which writes them "
    "canonically as strings (1024Mi -> 1Gi, 2 -> '2'); kubetrain copies the TrainJob's and the "
    "runtime's quantities as stored. Same amounts, so no effect on scheduling"
)


KUBETRAIN_SIDE_LABEL = (
    "kubetrain by design (reconcilers/trainer/objects.py TRAINJOB_NAME_LABEL): it labels the side "
    "objects it makes so that the operator caches only its own ConfigMaps and Secrets; Trainer "
    "(v2.0.0 and v2.3.0) labels none"
)


def _pattern_explanation(d: Difference) -> str | None:
    """Explanations that hold for every case: Go serialization artifacts, kubetrain's label."""
    if (
        d.path.split("/", 1)[0] in SIDE_KINDS
        and d.path.endswith(".metadata.labels")
        and d.reference == MISSING
        and d.kubetrain == {TRAINJOB_NAME_LABEL: d.case}
    ):
        return KUBETRAIN_SIDE_LABEL
    last = d.path.rsplit(".", 1)[-1]
    if last in ("metadata", "resources") and d.reference == {} and d.kubetrain == MISSING:
        return GO_EMPTY_STRUCT
    if ".resources." in d.path and _same_quantity(d.reference, d.kubetrain):
        return GO_QUANTITY
    return None


def _same_quantity(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_quantity(a[k], b[k]) for k in a)
    if isinstance(a, (str, int, float)) and isinstance(b, (str, int, float)):
        try:
            qa, _ = parse_quantity(a, field_path="a")
            qb, _ = parse_quantity(b, field_path="b")
        except ValueError:
            return False
        return bool(qa == qb)
    return False


@dataclass(frozen=True)
class Difference:
    case: str
    path: str
    reference: Any
    kubetrain: Any

    @property
    def explanation(self) -> str | None:
        return KNOWN_DIFFERENCES.get((self.case, self.path)) or _pattern_explanation(self)


@dataclass
class CaseResult:
    case: Case
    reference: Obj | None = None
    kubetrain: Obj | None = None
    side_objects: int = 0
    error: str = ""
    differences: list[Difference] = field(default_factory=list)

    @property
    def unexpected_error(self) -> str:
        """``error`` unless it is the refusal the case expects."""
        refuses = self.case.kubetrain_refuses
        return "" if refuses and self.error.startswith(refuses) else self.error


MISSING = "<absent>"
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "namespace",
    "name",
)


def normalize(jobset: Mapping[str, Any]) -> Obj:
    """A stored JobSet without what the server or the namespace decides."""
    out: Obj = {k: v for k, v in jobset.items() if k not in ("status",)}
    out["metadata"] = {
        k: v for k, v in (jobset.get("metadata") or {}).items() if k not in SERVER_METADATA
    }
    return out


def _named(items: Sequence[Any]) -> bool:
    return bool(items) and all(
        isinstance(i, dict) and isinstance(i.get("name"), str) for i in items
    )


def diff_objects(case: str, reference: Any, kubetrain: Any, path: str = "") -> list[Difference]:
    """Field-by-field differences; lists of named objects are matched by ``name`` (and their
    order compared separately, as ``<path>.<order>``)."""
    if isinstance(reference, dict) and isinstance(kubetrain, dict):
        out: list[Difference] = []
        for key in sorted(set(reference) | set(kubetrain)):
            sub = f"{path}.{key}" if path else key
            if key not in reference or key not in kubetrain:
                out.append(
                    Difference(case, sub, reference.get(key, MISSING), kubetrain.get(key, MISSING))
                )
            else:
                out.extend(diff_objects(case, reference[key], kubetrain[key], sub))
        return out
    if (
        isinstance(reference, list)
        and isinstance(kubetrain, list)
        and _named(reference)
        and _named(kubetrain)
    ):
        ref_names = [i["name"] for i in reference]
        kt_names = [i["name"] for i in kubetrain]
        if len(set(ref_names)) == len(ref_names) and len(set(kt_names)) == len(kt_names):
            out = []
            if [n for n in ref_names if n in kt_names] != [n for n in kt_names if n in ref_names]:
                out.append(Difference(case, f"{path}.<order>", ref_names, kt_names))
            ref_by, kt_by = {i["name"]: i for i in reference}, {i["name"]: i for i in kubetrain}
            for name in ref_names + [n for n in kt_names if n not in ref_by]:
                sub = f"{path}[{name}]"
                if name not in kt_by or name not in ref_by:
                    out.append(
                        Difference(case, sub, ref_by.get(name, MISSING), kt_by.get(name, MISSING))
                    )
                else:
                    out.extend(diff_objects(case, ref_by[name], kt_by[name], sub))
            return out
    if reference != kubetrain:
        return [Difference(case, path, reference, kubetrain)]
    return []


async def _wait_jobset(client: ApiClient, ns: str, name: str, timeout: float) -> Obj:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await client.get(JOBSETS, ns, name)
        except ApiStatusError as e:
            if not e.is_not_found or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def _namespace(client: ApiClient, name: str) -> None:
    await create_if_absent(
        client, NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )


async def compare_case(
    client: ApiClient, case: Case, *, namespace: str, timeout: float = 30.0
) -> CaseResult:
    """Create the case's TrainJob, wait for the JobSet Trainer applies, build kubetrain's from
    the same stored TrainJob and runtime, store it with ``dryRun=All`` in a sibling namespace
    (so both get the same CRD defaulting and quantity normalization), and diff the two."""
    result = CaseResult(case)
    shadow = f"{namespace}-kubetrain"
    await _namespace(client, namespace)
    await _namespace(client, shadow)
    runtime_ref: Obj = {"name": case.runtime}
    if case.namespaced:
        runtime = dict(EXTRA_RUNTIMES[case.runtime])
        runtime["metadata"] = {**runtime["metadata"], "namespace": namespace}
        stored_runtime = await _create_validated(client, TRAINING_RUNTIMES, runtime)
        runtime_ref.update(kind="TrainingRuntime", apiGroup=TRAINER_GROUP)
    else:
        if case.runtime in EXTRA_RUNTIMES:
            await _create_validated(client, CLUSTER_TRAINING_RUNTIMES, EXTRA_RUNTIMES[case.runtime])
        stored_runtime = await client.get(CLUSTER_TRAINING_RUNTIMES, None, case.runtime)
    trainjob = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": case.name, "namespace": namespace},
        "spec": {"runtimeRef": runtime_ref, **case.spec},
    }
    try:
        stored = await _create_validated(client, TRAINJOBS, trainjob)
        reference = await _wait_jobset(client, namespace, case.name, timeout)
    except (ApiStatusError, TimeoutError) as e:
        result.error = f"reference: {e}"
        return result
    try:
        built = build_objects(stored, stored_runtime["spec"])
    except ValueError as e:
        result.error = f"kubetrain: {type(e).__name__}: {e}"
        result.reference = normalize(reference)
        return result
    result.side_objects = len(built.applied) + len(built.created)
    jobset = dict(built.jobset)
    jobset["metadata"] = {**jobset["metadata"], "namespace": shadow}
    dry = await client.request_json(
        "POST", JOBSETS.collection_path(shadow), body=jobset, query={"dryRun": "All"}
    )
    result.reference, result.kubetrain = normalize(reference), normalize(dry)
    result.differences = diff_objects(case.name, result.reference, result.kubetrain)
    for side in [*built.applied, *built.created]:
        result.differences += await _compare_side_object(client, case.name, side, namespace, shadow)
    return result


SIDE_KINDS = {"ConfigMap": CONFIGMAPS, "Secret": SECRETS}


def _normalize_side(obj: Mapping[str, Any]) -> Obj:
    """A stored ConfigMap or Secret as ``normalize`` leaves a JobSet, a Secret's values
    redacted (Trainer makes its SSH keys at random)."""
    out = normalize(obj)
    if obj.get("kind") == "Secret":
        out["data"] = {k: "<redacted>" for k in obj.get("data") or {}}
    return out


async def _compare_side_object(
    client: ApiClient, case: str, side: Obj, namespace: str, shadow: str
) -> list[Difference]:
    """The side object kubetrain builds (stored with ``dryRun=All`` in ``shadow``) against the
    one of the same kind and name Trainer made."""
    kind, name = side.get("kind", ""), side["metadata"]["name"]
    where = f"{kind}/{name}"
    ref = SIDE_KINDS.get(kind)
    if ref is None:
        return [Difference(case, where, "<not compared>", "<built>")]
    try:
        theirs = await client.get(ref, namespace, name)
    except ApiStatusError as e:
        if not e.is_not_found:
            raise
        return [Difference(case, where, MISSING, "<built>")]
    ours = dict(side)
    ours["metadata"] = {**side["metadata"], "namespace": shadow}
    dry = await client.request_json(
        "POST", ref.collection_path(shadow), body=ours, query={"dryRun": "All"}
    )
    return diff_objects(case, _normalize_side(theirs), _normalize_side(dry), where)


async def compare_cases(
    client: ApiClient, cases: Sequence[Case] = CASES, *, namespace: str = "trainer-ref"
) -> list[CaseResult]:
    return [await compare_case(client, case, namespace=namespace) for case in cases]


# -- the report ----------------------------------------------------------------------------------


def _short(value: Any, width: int = 60) -> str:
    text = value if value == MISSING else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def format_table(results: Sequence[CaseResult], *, width: int = 60) -> str:
    lines = []
    for result in results:
        case = result.case
        head = f"== {case.name} (runtime {case.runtime}): {case.about}"
        lines.append(head)
        if result.error:
            label = "ERROR" if result.unexpected_error else "expected:"
            lines.append(f"   {label} {result.error}")
            continue
        if result.side_objects:
            lines.append(
                f"   side objects kubetrain builds (compared by kind/name): {result.side_objects}"
            )
        if not result.differences:
            lines.append("   identical JobSets")
        for d in result.differences:
            why = d.explanation or "UNEXPLAINED"
            lines.append(f"   {d.path}")
            lines.append(f"      reference v2.0.0: {_short(d.reference, width)}")
            lines.append(f"      kubetrain:        {_short(d.kubetrain, width)}")
            lines.append(f"      why: {why}")
    return "\n".join(lines)
