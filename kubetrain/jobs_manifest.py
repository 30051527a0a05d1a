"""The manifests ``kubetrain jobs submit`` creates: read from YAML or JSON, or built from flags.

Why here and not left to the API server: a launcher (a pipeline step, a script) should learn of
a wrong document before anything is created, in words that name the document and the fix: only
the seven training job kinds are accepted, each document needs a name, and the namespace given on
the command line must not contradict the document's (kubectl's rule). Building from flags makes
the smallest manifest the API accepts for a kind: a v1 job's replica specs under the kind's
replica field with one container of the kind's default container name (the one whose exit code
counts), or a TrainJob's ``runtimeRef`` and ``trainer``. Pure functions; the caller creates.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import yaml

from kubetrain.informers.resource import ResourceRef
from kubetrain.jobs_ref import UsageProblem
from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.reconcilers.jobview import KINDS, TRAINJOB

__all__ = [
    "DEFAULT_REPLICAS",
    "JobParameters",
    "build_manifest",
    "parse_manifests",
    "place_manifest",
    "resource_of",
]

#: The replicas a job built from flags gets without ``--replicas``: the one replica type each
#: kind needs to run (MPIJob: a launcher and a worker).
DEFAULT_REPLICAS: dict[str, dict[str, int]] = {
    "TFJob": {"Worker": 1},
    "PyTorchJob": {"Master": 1},
    "MPIJob": {"Launcher": 1, "Worker": 1},
    "XGBoostJob": {"Master": 1},
    "PaddleJob": {"Master": 1},
    "JAXJob": {"Worker": 1},
}


@dataclass(frozen=True)
class JobParameters:
    """``jobs submit --kind ... --name ... --image ...``: a job without a manifest."""

    kind: str
    name: str
    image: str
    namespace: str
    replicas: str | None = None
    """v1: ``Master=1,Worker=2``; TrainJob: the number of nodes."""
    command: str | None = None
    """One shell-like string, split with ``shlex``."""
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    """``K=V`` each."""
    runtime: str | None = None
    """A TrainJob's (Cluster)TrainingRuntime."""


def parse_manifests(text: str, source: str) -> list[dict[str, Any]]:
    """The documents of ``text`` (YAML, one or more, or JSON; a ``List`` is its items); empty
    documents are skipped. Raises ``UsageProblem`` naming ``source`` for text that is neither."""
    stripped = text.lstrip()
    try:
        if stripped.startswith(("{", "[")):
            loaded: Any = orjson.loads(stripped)
            docs = loaded if isinstance(loaded, list) else [loaded]
        else:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except (orjson.JSONDecodeError, yaml.YAMLError) as e:
        raise UsageProblem(f"{source}: not YAML or JSON: {e}") from e
    out: list[dict[str, Any]] = []
    for doc in docs:
        if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List"):
            out.extend(doc.get("items") or [])
        else:
            out.append(doc)
    if not out:
        raise UsageProblem(f"{source}: no documents; expected one or more training jobs")
    return out


def resource_of(doc: dict[str, Any]) -> ResourceRef:
    """The resource a document is created as: its kind's, at the version its ``apiVersion``
    says (``kubeflow.org/v2beta1`` MPIJob is served beside v1). Raises ``UsageProblem``."""
    kind = str(doc.get("kind", ""))
    api_version = str(doc.get("apiVersion", ""))
    ref = KINDS.get(kind)
    if ref is None:
        raise UsageProblem(
            f"kind {kind or '(none)'!r} is not a training job; jobs submit creates only "
            f"{', '.join(KINDS)} (use kubectl apply for anything else)"
        )
    group, _, version = api_version.rpartition("/")
    if group != ref.group or not version:
        raise UsageProblem(
            f"{kind} with apiVersion {api_version or '(none)'!r}: expected {ref.api_version}"
        )
    return replace(ref, version=version)


def place_manifest(
    doc: Any, namespace: str | None, default_namespace: str, index: int
) -> dict[str, Any]:
    """The document checked (a training job with a name) and placed in a namespace: its own,
    else ``namespace`` (``-n``), else ``default_namespace`` (the kubeconfig context's). An own
    namespace other than ``namespace`` is an error, as kubectl's."""
    where = f"document {index + 1}"
    if not isinstance(doc, dict):
        raise UsageProblem(f"{where}: expected an object, got {type(doc).__name__}")
    resource_of(doc)
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        raise UsageProblem(f"{where} ({doc.get('kind')}): metadata.name is required")
    own = meta.get("namespace")
    if own and namespace and own != namespace:
        raise UsageProblem(
            f"{where}: the namespace from the object {own!r} does not match the namespace "
            f"{namespace!r}; pass -n {own} or remove metadata.namespace"
        )
    return {**doc, "metadata": {**meta, "namespace": own or namespace or default_namespace}}


def _replica_counts(kind: str, text: str | None) -> dict[str, int]:
    if not text:
        return dict(DEFAULT_REPLICAS[kind])
    known = BY_KIND[kind].replica_types
    counts: dict[str, int] = {}
    for part in text.split(","):
        rtype, sep, number = part.strip().partition("=")
        if not sep or not number.strip().isdigit():
            raise UsageProblem(f"--replicas {text!r}: expected TYPE=N[,TYPE=N], e.g. Master=1")
        canonical = next((t for t in known if t.lower() == rtype.strip().lower()), None)
        if canonical is None and known:
            raise UsageProblem(
                f"--replicas: {kind} has no replica type {rtype!r}; use {', '.join(known)}"
            )
        counts[canonical or rtype.strip()] = int(number)
    return counts


def _env(pairs: list[str]) -> list[dict[str, str]]:
    out = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageProblem(f"--env {pair!r}: expected NAME=VALUE")
        out.append({"name": name, "value": value})
    return out


def _container(name: str, p: JobParameters) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": p.image}
    if p.command:
        c["command"] = shlex.split(p.command)
    if p.args:
        c["args"] = list(p.args)
    if p.env:
        c["env"] = _env(p.env)
    return c


def build_manifest(p: JobParameters) -> dict[str, Any]:
    """The minimal valid manifest of ``p.kind`` (see the module docstring); ``UsageProblem`` for
    a kind that is not a training job or flags that do not fit it."""
    kind = next((k for k in KINDS if k.lower() == p.kind.lower()), None)
    if kind is None:
        raise UsageProblem(f"--kind {p.kind!r}: expected one of {', '.join(KINDS)}")
    meta = {"name": p.name, "namespace": p.namespace}
    if kind == TRAINJOB:
        return _trainjob(p, meta)
    jk = BY_KIND[kind]
    specs = {
        rtype: {
            "replicas": n,
            "template": {"spec": {"containers": [_container(jk.default_container, p)]}},
        }
        for rtype, n in _replica_counts(kind, p.replicas).items()
    }
    return {
        "apiVersion": KINDS[kind].api_version,
        "kind": kind,
        "metadata": meta,
        "spec": {jk.replica_field: specs},
    }


def _trainjob(p: JobParameters, meta: dict[str, str]) -> dict[str, Any]:
    if not p.runtime:
        raise UsageProblem(
            "--kind TrainJob needs --runtime NAME: the ClusterTrainingRuntime to run on "
            "(e.g. torch-distributed; kubectl get clustertrainingruntimes lists them)"
        )
    trainer: dict[str, Any] = {"image": p.image}
    if p.replicas:
        if not p.replicas.strip().isdigit():
            raise UsageProblem(f"--replicas {p.replicas!r}: a TrainJob takes a number of nodes")
        trainer["numNodes"] = int(p.replicas)
    container = _container("trainer", p)
    for key in ("command", "args", "env"):
        if key in container:
            trainer[key] = container[key]
    return {
        "apiVersion": KINDS[TRAINJOB].api_version,
        "kind": TRAINJOB,
        "metadata": meta,
        "spec": {"runtimeRef": {"name": p.runtime}, "trainer": trainer},
    }
