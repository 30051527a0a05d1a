"""Write the go.mod of a wrapper module that builds kube-apiserver from the Go module proxy.

Why this exists: ``k8s.io/kubernetes`` cannot be ``go install``-ed. Its go.mod requires every
``k8s.io/*`` staging module at ``v0.0.0`` and replaces each with ``./staging/src/k8s.io/<name>``;
replace directives of a dependency are ignored and ``v0.0.0`` is not served. Each staging module
is published as ``v0.X.Y`` for Kubernetes ``v1.X.Y`` though, so a wrapper module that requires
``k8s.io/kubernetes vX`` and replaces each staging module by its published version builds
(kubernetes/kubernetes#79384). This script derives that replace list from the Kubernetes go.mod
itself, so no list is hand-kept per version.

Usage: ``gen_wrapper_gomod.py --kubernetes-gomod PATH --version v1.36.3 [--module NAME]``; it
prints the wrapper go.mod on stdout. Stdlib only (runs before any virtualenv exists).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

#: Commands the wrapper module declares as ``tool`` so ``go mod tidy`` keeps their dependencies.
DEFAULT_TOOLS: tuple[str, ...] = (
    "k8s.io/kubernetes/cmd/kube-apiserver",
    "k8s.io/kubernetes/cmd/kube-controller-manager",
)

_VERSION = re.compile(r"^v1\.(\d+)\.(\d+)(-[0-9A-Za-z.\-]+)?$")
_GO_DIRECTIVE = re.compile(r"^go\s+(\S+)\s*$", re.MULTILINE)
_GODEBUG_DIRECTIVE = re.compile(r"^godebug\s+(.+)$", re.MULTILINE)
_REPLACE_BLOCK = re.compile(r"^replace\s*\((.*?)^\)", re.MULTILINE | re.DOTALL)
_REPLACE_SINGLE = re.compile(r"^replace\s+([^(\s].*)$", re.MULTILINE)


def staging_version(kubernetes_version: str) -> str:
    """Return the staging-module version published with a Kubernetes release (v1.X.Y -> v0.X.Y).

    Raises ValueError naming the expected form when ``kubernetes_version`` is not ``v1.X.Y``.
    """
    match = _VERSION.match(kubernetes_version)
    if match is None:
        raise ValueError(
            f"version {kubernetes_version!r}: expected a Kubernetes release tag like v1.36.3"
        )
    minor, patch, pre = match.group(1), match.group(2), match.group(3) or ""
    return f"v0.{minor}.{patch}{pre}"


def replace_lines(gomod_text: str) -> list[tuple[str, str]]:
    """Return ``(left, right)`` of every replace directive in a go.mod, block or single-line."""
    lines: list[str] = []
    for block in _REPLACE_BLOCK.findall(gomod_text):
        lines.extend(block.splitlines())
    lines.extend(_REPLACE_SINGLE.findall(gomod_text))
    pairs: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        left, sep, right = line.partition("=>")
        if not sep:
            raise ValueError(f"replace line without '=>': {raw.strip()!r}")
        pairs.append((left.strip(), right.strip()))
    return pairs


def wrapper_gomod(
    gomod_text: str,
    *,
    kubernetes_version: str,
    module: str = "kubetrain.local/conformance",
    tools: tuple[str, ...] = DEFAULT_TOOLS,
) -> str:
    """Return the wrapper go.mod for ``kubernetes_version`` given the Kubernetes go.mod text.

    Local-path replaces (``./staging/src/k8s.io/NAME``) become ``k8s.io/NAME v0.X.Y``; any other
    replace is copied unchanged (a dependency's replaces do not apply to the main module, so the
    wrapper must carry them). The ``go`` and ``godebug`` lines are copied so the build behaves as
    the Kubernetes release's own.
    """
    staging = staging_version(kubernetes_version)
    go_match = _GO_DIRECTIVE.search(gomod_text)
    if go_match is None:
        raise ValueError("Kubernetes go.mod has no 'go' directive")
    out = [f"module {module}", "", f"go {go_match.group(1)}", ""]
    godebug = _GODEBUG_DIRECTIVE.findall(gomod_text)
    for line in godebug:
        if line.strip() != "(":
            out.append(f"godebug {line.strip()}")
    if godebug:
        out.append("")
    out += [f"require k8s.io/kubernetes {kubernetes_version}", ""]
    out += ["tool (", *(f"\t{t}" for t in tools), ")", ""]
    out.append("replace (")
    for left, right in replace_lines(gomod_text):
        if right.startswith("./staging/src/"):
            out.append(f"\t{left} => {right.removeprefix('./staging/src/')} {staging}")
        elif right.startswith((".", "/")):
            raise ValueError(
                f"replace {left} => {right}: a local path outside staging/ cannot be served "
                "by the module proxy; extend gen_wrapper_gomod.py for it"
            )
        else:
            out.append(f"\t{left} => {right}")
    out += [")", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubernetes-gomod", type=Path, required=True)
    parser.add_argument("--version", required=True, help="Kubernetes tag, e.g. v1.36.3")
    parser.add_argument("--module", default="kubetrain.local/conformance")
    args = parser.parse_args(argv)
    text = args.kubernetes_gomod.read_text()
    sys.stdout.write(wrapper_gomod(text, kubernetes_version=args.version, module=args.module))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
