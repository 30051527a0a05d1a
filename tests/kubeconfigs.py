"""Kubeconfig files and an exec credential plugin for the client-configuration tests, importable as
``kubeconfigs`` (``tests/`` is on the path through its conftest): one copy for the engine's loader
tests and the ``kubetrain operator`` tests."""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ExecPlugin", "kubeconfig_doc", "write_kubeconfig"]


def kubeconfig_doc(
    server: str,
    *,
    user: dict[str, Any],
    current: str | None = "c",
    cluster: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A kubeconfig with cluster ``k`` at ``server`` (plus ``cluster``'s fields), user ``u`` and
    contexts ``c`` (namespace ``team``) and ``other`` (no namespace); ``current`` is selected."""
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "k", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [
            {"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "team"}},
            {"name": "other", "context": {"cluster": "k", "user": "u"}},
        ],
    }
    if current:
        doc["current-context"] = current
    return doc


def write_kubeconfig(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


PLUGIN = """\
import json, sys, datetime
log, token, ttl = sys.argv[1], open(sys.argv[2]).read().strip(), float(sys.argv[3])
with open(log, "a") as f:
    f.write("run\\n")
status = {"token": token}
if ttl > 0:
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=ttl)
    status["expirationTimestamp"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1",
                  "kind": "ExecCredential", "status": status}))
"""


class ExecPlugin:
    """An exec credential plugin (a Python script in ``directory``) that prints a
    ``client.authentication.k8s.io/v1`` ExecCredential with the token currently in
    ``token_file`` and, when ``ttl`` > 0, an ``expirationTimestamp`` ``ttl`` seconds after its
    run; each run appends a line to ``log``."""

    def __init__(self, directory: Path, token: str, *, ttl: float = 0) -> None:
        self.script = directory / "plugin.py"
        self.script.write_text(PLUGIN)
        self.script.chmod(self.script.stat().st_mode | stat.S_IXUSR)
        self.log = directory / "plugin.log"
        self.token_file = directory / "plugin.token"
        self.token_file.write_text(token)
        self.ttl = ttl

    def user(self, *, command: str = sys.executable) -> dict[str, Any]:
        """The kubeconfig user that runs this plugin (``command``: the interpreter)."""
        return {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": command,
                "args": [str(self.script), str(self.log), str(self.token_file), str(self.ttl)],
                "interactiveMode": "Never",
            }
        }

    @property
    def runs(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0
