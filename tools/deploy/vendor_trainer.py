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

kubetrain's additions are applied while vendoring (``KUBETRAIN_ADDITIONS``), and the header
line of the file they change says so, all in TrainJob's CRD:

- the printer columns ``Progress %`` and ``ETA`` (``status.trainerStatus.progressPercentage``
  and ``estimatedRemainingSeconds``, in seconds), so ``kubectl get trainjob`` shows what the
  status server writes (KEP-2779 proposes ``PROGRESS %``; Trainer v2.3.0 has only ``State`` and
  ``Age``);
- ``status.phase`` (Pending, Suspended, Running, Complete, Failed) and ``status.startTime``,
  written by kubetrain's TrainJob controller (``reconcilers/trainer/status.py`` says why), and the
  ``State`` column reads ``status.phase`` instead of the last condition's type, so Running and
  Pending show (trainer#3666).

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
#: The release's overlay for its built-in runtimes: the ``webhook-validation: disabled`` label
#: (they are validated ahead of time) and the release's image tags. Its ``labels`` and
#: ``images`` are appended to the vendored top kustomization, so ``kubectl apply -k`` and
#: ``runtimes.builtin_runtimes()`` give what Trainer's install gives.
RUNTIME_OVERLAY = "manifests/overlays/runtimes/kustomization.yaml"


_PHASE_SCHEMA = (
    "              phase:\n"
    "                description: |-\n"
    "                  phase of the TrainJob, written by kubetrain: Pending, Suspended, Running\n"
    "                  (every training pod ready), Complete or Failed.\n"
    "                enum:\n"
    "                - Pending\n"
    "                - Suspended\n"
    "                - Running\n"
    "                - Complete\n"
    "                - Failed\n"
    "                type: string\n"
    "              startTime:\n"
    "                description: |-\n"
    "                  startTime is when the TrainJob last started, written by kubetrain: its\n"
    "                  creation, or its last resume; activeDeadlineSeconds counts from it.\n"
    "                format: date-time\n"
    "                type: string\n"
)

#: kubetrain's additions: file name -> ([(the release's text, what replaces it)...], the header
#: note). Each release text must occur exactly once, so a changed release fails loudly.
KUBETRAIN_ADDITIONS: dict[str, tuple[list[tuple[str, str]], str]] = {
    "trainer.kubeflow.org_trainjobs.yaml": (
        [
            (
                "    - jsonPath: .status.conditions[-1:].type\n      name: State\n",
                "    - jsonPath: .status.phase\n      name: State\n",
            ),
            (
                "                x-kubernetes-list-type: map\n              jobsStatus:\n",
                "                x-kubernetes-list-type: map\n"
                + _PHASE_SCHEMA
                + "              jobsStatus:\n",
            ),
            (
                "      name: State\n      type: string\n",
                "      name: State\n      type: string\n"
                "    - description: status.trainerStatus.progressPercentage, reported by the trainer\n"
                "      jsonPath: .status.trainerStatus.progressPercentage\n"
                "      name: Progress %\n"
                "      type: integer\n"
                "    - description: status.trainerStatus.estimatedRemainingSeconds, in seconds\n"
                "      jsonPath: .status.trainerStatus.estimatedRemainingSeconds\n"
                "      name: ETA\n"
                "      type: integer\n",
            ),
        ],
        "kubetrain adds status.phase, status.startTime and the printer columns Progress % and ETA",
    ),
}


def header(source_path: str, note: str = "") -> str:
    added = f", {note}" if note else ""
    return (
        f"# Vendored from Kubeflow Trainer {RELEASE} ({source_path}) by {TOOL}{added}; "
        "do not edit.\n"
    )


def with_additions(name: str, source_path: str, text: str) -> str:
    """The release's ``text`` of file ``name`` with kubetrain's addition (if any) and its header."""
    addition = KUBETRAIN_ADDITIONS.get(name)
    if addition is None:
        return header(source_path) + text
    replacements, note = addition
    for old, new in replacements:
        if text.count(old) != 1:
            raise SystemExit(
                f"vendor_trainer: {source_path}: an addition's anchor is not there once: {old!r}"
            )
        text = text.replace(old, new)
    return header(source_path, note) + text


def with_overlay(mirror: Path, text: str) -> str:
    """The top runtime kustomization with ``RUNTIME_OVERLAY``'s ``labels`` and ``images``
    appended (everything from its ``labels:`` line on; the overlay's ``resources`` is the base
    itself)."""
    overlay = git_show(mirror, RUNTIME_OVERLAY)
    start = overlay.find("\n# The built-in ClusterTrainingRuntime")
    if start < 0 or "labels:" not in overlay[start:] or "images:" not in overlay[start:]:
        raise SystemExit(f"vendor_trainer: {RUNTIME_OVERLAY}: its labels/images are not found")
    return (
        text.rstrip("\n")
        + f"\n\n# Appended by {TOOL} from Kubeflow Trainer {RELEASE} ({RUNTIME_OVERLAY}):\n"
        + overlay[start + 1 :]
    )


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
        text = with_additions(name, source, git_show(mirror, source))
        for target in CRD_TARGETS:
            out[posixpath.join(target, name)] = text
    for rel in runtime_files(mirror):
        source = posixpath.join(RUNTIME_SOURCE, rel)
        text = header(source) + git_show(mirror, source)
        if rel == "kustomization.yaml":
            text = with_overlay(mirror, text)
        for target in RUNTIME_TARGETS:
            out[posixpath.join(target, rel)] = text
    return out


#: The Helm chart's copy of the built-in runtimes as kustomize renders ``deploy/runtimes`` (the
#: release overlay's labels and image tags applied), behind ``trainingRuntimes.enabled``.
CHART_RUNTIMES = "deploy/helm/kubetrain/files/training-runtimes.yaml"


def chart_runtimes() -> str:
    """``CHART_RUNTIMES``' content: ``builtin_runtimes()`` of the package copy, one document each
    (read after the package copy is written)."""
    from kubetrain.reconcilers.trainer import runtimes  # run with the project's venv

    runtimes._loaded.cache_clear()
    return (
        f"# Rendered by {TOOL} from deploy/runtimes (Kubeflow Trainer {RELEASE}'s built-in\n"
        "# runtimes with its release overlay applied); do not edit.\n"
        + yaml.safe_dump_all(runtimes.builtin_runtimes(), sort_keys=False)
    )


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
    chart = REPO / CHART_RUNTIMES
    text = chart_runtimes()
    if args.check:
        if not chart.exists() or chart.read_text(encoding="utf-8") != text:
            stale.append(CHART_RUNTIMES)
    else:
        chart.write_text(text, encoding="utf-8")
        print(CHART_RUNTIMES)
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
