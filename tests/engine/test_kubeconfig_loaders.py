"""Loading a kubeconfig does not import kubernetes-asyncio's API client and models, and leaves
the real package importable afterwards (kopf and tests use it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, sys
from kubetrain.engine.config import load_kubeconfig
cfg = asyncio.run(load_kubeconfig(sys.argv[1]))
assert cfg.server == "http://127.0.0.1:9", cfg.server
loaded = [m for m in sys.modules if m.startswith("kubernetes_asyncio")]
assert loaded == [], loaded
assert asyncio.run(cfg.new_credentials().authorization()) == "Bearer t"
import kubernetes_asyncio
assert kubernetes_asyncio.client.CoreV1Api and kubernetes_asyncio.config.load_kube_config
print("ok")
"""


def test_loading_imports_no_api_models_and_keeps_the_real_package_importable(
    tmp_path: Path,
) -> None:
    from kubetrain.cluster.embedded import write_kubeconfig

    path = tmp_path / "kc"
    write_kubeconfig(str(path), "http://127.0.0.1:9", token="t")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
