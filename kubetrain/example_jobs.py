"""The example jobs ``kubetrain up`` submits: one YAML file per kind, shipped inside the package:
the six ``kubeflow.org/v1`` kinds and a ``trainer.kubeflow.org/v1alpha1`` TrainJob.

The canonical files live in ``kubetrain/examples/`` (package data, so an installed kubetrain finds
them); the repository's top-level ``examples/`` is a symlink to that folder, so there is one copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubetrain.informers.resource import ResourceRef, kubeflow
from kubetrain.reconcilers.trainer.resources import TRAINJOBS

__all__ = ["ExampleJob", "ExamplesError", "load_examples", "packaged_examples_dir"]

Obj = dict[str, Any]


#: The TrainJob API an example may use besides the ``kubeflow.org/v1`` job kinds.
TRAINJOB_API_VERSION = "trainer.kubeflow.org/v1alpha1"


class ExamplesError(ValueError):
    """A missing examples folder or a file that is not a job manifest (a ``kubeflow.org/v1``
    job or a ``trainer.kubeflow.org/v1alpha1`` TrainJob)."""


@dataclass(frozen=True, slots=True)
class ExampleJob:
    """One job manifest and where it came from."""

    path: Path
    manifest: Obj
    """The parsed object; ``metadata.namespace`` is always set (``default`` when absent)."""

    @property
    def kind(self) -> str:
        kind: str = self.manifest["kind"]
        return kind

    @property
    def resource(self) -> ResourceRef:
        """What it is created as: its ``kubeflow.org/v1`` kind, or TrainJobs."""
        return TRAINJOBS if self.kind == "TrainJob" else kubeflow(self.kind)

    @property
    def namespace(self) -> str:
        namespace: str = self.manifest["metadata"]["namespace"]
        return namespace

    @property
    def name(self) -> str:
        name: str = self.manifest["metadata"]["name"]
        return name


def packaged_examples_dir() -> Path:
    """The ``examples`` folder inside the installed ``kubetrain`` package, next to this module."""
    return Path(__file__).resolve().parent / "examples"


def load_examples(directory: Path | None = None, *, namespace: str = "default") -> list[ExampleJob]:
    """Every ``*.yaml``/``*.yml`` document of kind ``kubeflow.org/v1`` ``*Job`` in ``directory``
    (default: the packaged examples), sorted by file name; ``namespace`` fills in a missing
    ``metadata.namespace``.

    Raises ``ExamplesError`` naming the file and the field when the folder is missing or empty, or
    a document is not a job manifest with a name.
    """
    folder = directory if directory is not None else packaged_examples_dir()
    if not folder.is_dir():
        raise ExamplesError(f"--examples {folder}: not a directory")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    jobs: list[ExampleJob] = []
    for path in files:
        with path.open(encoding="utf-8") as fh:
            documents = [d for d in yaml.safe_load_all(fh) if d is not None]
        for doc in documents:
            jobs.append(ExampleJob(path, _checked(path, doc, namespace)))
    if not jobs:
        raise ExamplesError(f"--examples {folder}: no job manifests (*.yaml) found")
    return jobs


def _checked(path: Path, doc: object, namespace: str) -> Obj:
    if not isinstance(doc, dict):
        raise ExamplesError(
            f"{path}: expected a mapping (a job manifest), got {type(doc).__name__}"
        )
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if api_version == TRAINJOB_API_VERSION:
        if kind != "TrainJob":
            raise ExamplesError(f"{path}: kind must be TrainJob for {api_version}, got {kind!r}")
    elif api_version != "kubeflow.org/v1":
        raise ExamplesError(
            f"{path}: apiVersion must be kubeflow.org/v1 or {TRAINJOB_API_VERSION}, "
            f"got {api_version!r}"
        )
    elif not isinstance(kind, str) or not kind.endswith("Job"):
        raise ExamplesError(f"{path}: kind must be a kubeflow.org/v1 job kind, got {kind!r}")
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        raise ExamplesError(f"{path}: metadata.name is required")
    metadata.setdefault("namespace", namespace)
    return doc
