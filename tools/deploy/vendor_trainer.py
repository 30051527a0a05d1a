"""Vendor Kubeflow Trainer v2.3.0's API: its three CRDs and its built-in ClusterTrainingRuntimes.

The files are copied from a git repository of kubeflow/trainer (a bare mirror is enough) at tag
``v2.3.0``, unchanged but for one header line naming the release, the source path and this tool:

- ``manifests/base/crds/trainer.kubeflow.org_{trainjobs,trainingruntimes,
  clustertrainingruntimes}.yaml`` into ``reconcilers/trainer/crds/`` (the package copy, read by
  ``kubetrain.reconcilers.trainer.crds``), ``deploy/crds/`` and ``deploy/helm/kubetrain/crds/``;
- ``manifests/base/runtimes/``: every file its ``kustomization.yaml`` reaches (the runtimes and
  the nested kustomizations; not ``data-cache/``, which the release's base leaves out) into
  ``reconcilers/trainer/runtimes/`` (the package copy ``kubetrain up`` installs) and
  ``deploy/runtimes/`` (``kubectl apply --server-side -k deploy/runtimes``), the same tree.

``tests/reconcilers/trainer/test_crds.py`` checks that the copies are equal.

Usage::

    python tools/deploy/vendor_trainer.py /work/.mirror/kubeflow+trainer/repo
    python tools/deploy/vendor_trainer.py MIRROR --check     # exit 1 when a copy differs
"""

from __future__ import annotations

import argparse
import posixpath
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
RELEASE = "v2.3.0"
TOOL = "tools/deploy/vendor_trainer.py"

CRD_SOURCE = "manifests/base/crds"
CRD_FILES = (
    "trainer.kubeflow.org_trainjobs.yaml",
    "trainer.kubeflow.org_trainingruntimes.yaml",
    "trainer.kubeflow.org_clustertrainingruntimes.yaml",
)
#: Where the CRDs go: the package copy first, then deploy's kustomize base and the Helm chart.
CRD_TARGETS = ("reconcilers/trainer/crds", "deploy/crds", "deploy/helm/kubetrain/crds")

RUNTIME_SOURCE = "manifests/base/runtimes"
#: Where the runtimes go: the package copy, then the kustomize folder.
RUNTIME_TARGETS = ("reconcilers/trainer/runtimes", "deploy/runtimes")


def header(source_path: str) -> str:
    return f"# Vendored from Kubeflow Trainer {RELEASE} ({source_path}) by {TOOL}; do not edit.\n"


def git_show(mirror: Path, path: str) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(mirror), "show", f"{RELEASE}:{path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"vendor_trainer: git show {RELEASE}:{path}: {done.stderr.strip()}")
    return done.stdout


def _git_dir(mirror: Path) -> Path:
    """The git directory of ``mirror``: itself when bare, else its ``.git``."""
    return mirror / ".git" if (mirror / ".git").exists() else mirror


def runtime_files(mirror: Path) -> list[str]:
    """Paths under ``RUNTIME_SOURCE`` (relative to it) that its kustomization reaches, the
    kustomization files included, in the order kustomize reads them."""
    found: list[str] = []

    def visit(folder: str) -> None:
        kustomization = (
            posixpath.join(folder, "kustomization.yaml") if folder else ("kustomization.yaml")
        )
        found.append(kustomization)
        doc = yaml.safe_load(git_show(mirror, posixpath.join(RUNTIME_SOURCE, kustomization)))
        for resource in doc.get("resources") or []:
            rel = posixpath.normpath(posixpath.join(folder, resource))
            if rel.endswith((".yaml", ".yml")):
                found.append(rel)
            else:
                visit(rel)

    visit("")
    return found


def vendored(mirror: Path) -> dict[str, str]:
    """Every target path (relative to the repository) with its content."""
    out: dict[str, str] = {}
    for name in CRD_FILES:
        source = posixpath.join(CRD_SOURCE, name)
        text = header(source) + git_show(mirror, source)
        for target in CRD_TARGETS:
            out[posixpath.join(target, name)] = text
    for rel in runtime_files(mirror):
        source = posixpath.join(RUNTIME_SOURCE, rel)
        text = header(source) + git_show(mirror, source)
        for target in RUNTIME_TARGETS:
            out[posixpath.join(target, rel)] = text
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mirror", type=Path, help="a git repository of kubeflow/trainer")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    files = vendored(_git_dir(args.mirror))
    stale = []
    for rel, text in files.items():
        path = REPO / rel
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(rel)
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
