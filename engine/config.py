"""Where the API server is and how to authenticate: kubeconfig files and in-cluster config.

The operator talks to any cluster through one ``ApiClient`` (``engine/client.py``); this module
turns the usual sources of connection settings into one small ``ClientConfig`` so the client never
reads files or environment itself. Sources, in the order ``load_config`` tries them (the
controller-runtime order): an explicit kubeconfig path, ``$KUBECONFIG``, the in-cluster service
account, ``~/.kube/config``.

Supported kubeconfig features: current-context or an explicit context, context namespace, server
(http or https), bearer token / tokenFile, basic auth, client certificate and key (file or inline
data), CA (file or inline data), ``insecure-skip-tls-verify``, ``tls-server-name`` and the
``$KUBECONFIG`` list with client-go's merge rule (the first file that defines a name wins).
``exec`` and ``auth-provider`` plugins are not supported and raise ``ConfigError`` naming them.
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "ClientConfig",
    "ConfigError",
    "load_config",
    "load_incluster_config",
    "load_kubeconfig",
]

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where the kubelet mounts a pod's service-account token, CA bundle and namespace."""


class ConfigError(ValueError):
    """The connection settings are missing or unusable; the message names the field and the fix."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """How to reach one API server. Build with ``load_config`` or directly in tests.

    Invariants: ``server`` is an absolute http(s) URL without a trailing slash; at most one of
    ``token``/``token_file`` is set; ``client_cert_*`` and ``client_key_*`` come in pairs.
    """

    server: str
    """``https://host:port`` or ``http://host:port`` (an optional path prefix is kept)."""
    token: str | None = None
    """A bearer token sent as ``Authorization: Bearer``."""
    token_file: str | None = None
    """A file holding the bearer token; the client re-reads it every minute (bound SA tokens rotate)."""
    username: str | None = None
    """Basic-auth user (only with ``password``; ignored when a token is set)."""
    password: str | None = None
    ca_file: str | None = None
    """PEM CA bundle to verify the server with; the system store when neither CA field is set."""
    ca_data: bytes | None = None
    """PEM CA bundle, inline (kubeconfig ``certificate-authority-data`` after base64 decoding)."""
    client_cert_file: str | None = None
    client_cert_data: bytes | None = None
    client_key_file: str | None = None
    client_key_data: bytes | None = None
    insecure_skip_tls_verify: bool = False
    """Do not verify the server certificate (kubeconfig ``insecure-skip-tls-verify``)."""
    tls_server_name: str | None = None
    """The name to verify the server certificate against instead of the URL's host."""
    namespace: str = "default"
    """The context's namespace (in-cluster: the pod's namespace)."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"server: {self.server!r} is not an absolute http(s) URL; "
                "set it like https://host:6443"
            )
        if self.server.endswith("/"):
            object.__setattr__(self, "server", self.server.rstrip("/"))
        if self.token and self.token_file:
            raise ConfigError("token and token_file are both set: keep one")
        has_cert = bool(self.client_cert_file or self.client_cert_data)
        has_key = bool(self.client_key_file or self.client_key_data)
        if has_cert != has_key:
            raise ConfigError(
                "client certificate and client key must be given together "
                "(client-certificate[-data] and client-key[-data])"
            )

    @property
    def host(self) -> str:
        """``host:port`` of the server, as the ``host`` label of ``rest_client_*`` metrics."""
        return urlsplit(self.server).netloc

    @property
    def is_https(self) -> bool:
        return self.server.startswith("https://")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for an https server (``None`` for http). Reads the files now.

        Inline certificate/key data is written to a private temporary file only for the moment
        ``load_cert_chain`` reads it, then removed.
        """
        if not self.is_https:
            return None
        cadata = self.ca_data.decode() if self.ca_data else None
        ctx = ssl.create_default_context(cafile=self.ca_file, cadata=cadata)
        if self.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.client_cert_file or self.client_cert_data:
            with (
                _as_file(self.client_cert_file, self.client_cert_data) as cert,
                _as_file(self.client_key_file, self.client_key_data) as key,
            ):
                ctx.load_cert_chain(cert, key)
        return ctx


@contextlib.contextmanager
def _as_file(path: str | None, data: bytes | None) -> Any:
    if path:
        yield path
        return
    assert data is not None
    fd, name = tempfile.mkstemp(prefix="kubetrain-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield name
    finally:
        os.unlink(name)


def load_config(
    kubeconfig: str | os.PathLike[str] | None = None,
    *,
    context: str | None = None,
    env: Mapping[str, str] | None = None,
    service_account_dir: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR,
) -> ClientConfig:
    """The config from the first source that exists: ``kubeconfig``, ``$KUBECONFIG``, in-cluster,
    ``~/.kube/config`` (controller-runtime's order). ``env`` defaults to ``os.environ``."""
    environ = os.environ if env is None else env
    if kubeconfig is not None:
        return load_kubeconfig(kubeconfig, context=context)
    if environ.get("KUBECONFIG"):
        return load_kubeconfig(None, context=context, env=environ)
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return load_incluster_config(env=environ, service_account_dir=service_account_dir)
    home = Path(environ.get("HOME") or Path.home()) / ".kube" / "config"
    if home.exists():
        return load_kubeconfig(home, context=context)
    raise ConfigError(
        "no cluster configuration found: pass --kubeconfig, set KUBECONFIG, run in a pod "
        f"(KUBERNETES_SERVICE_HOST), or create {home}"
    )


def load_incluster_config(
    *,
    env: Mapping[str, str] | None = None,
    service_account_dir: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR,
) -> ClientConfig:
    """The config of a pod: ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the mounted service account
    (``token`` re-read by the client, ``ca.crt``, ``namespace``)."""
    environ = os.environ if env is None else env
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigError(
            "in-cluster config needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT; "
            "outside a pod pass --kubeconfig"
        )
    sa = Path(service_account_dir)
    token = sa / "token"
    if not token.is_file():
        raise ConfigError(
            f"in-cluster config: service account token {token} is missing; "
            "mount a service account (automountServiceAccountToken) or pass --kubeconfig"
        )
    ca = sa / "ca.crt"
    ns_file = sa / "namespace"
    namespace = ns_file.read_text().strip() if ns_file.is_file() else "default"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    return ClientConfig(
        server=f"https://{host}:{port}",
        token_file=str(token),
        ca_file=str(ca) if ca.is_file() else None,
        namespace=namespace or "default",
    )


def load_kubeconfig(
    path: str | os.PathLike[str] | None = None,
    *,
    context: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Read a kubeconfig: ``path``, else the ``$KUBECONFIG`` list, else ``~/.kube/config``.

    ``context`` overrides the file's ``current-context``. Relative file references are resolved
    against the directory of the file that holds them, as kubectl does.
    """
    environ = os.environ if env is None else env
    if path is not None:
        files = [Path(path)]
    elif environ.get("KUBECONFIG"):
        files = [Path(p) for p in environ["KUBECONFIG"].split(os.pathsep) if p]
    else:
        files = [Path(environ.get("HOME") or Path.home()) / ".kube" / "config"]
    merged = _merge([f for f in files if f.exists()] if len(files) > 1 else files)
    name = context or merged.current_context
    if not name:
        raise ConfigError(
            f"kubeconfig {_names(files)}: no current-context; set one "
            "(kubectl config use-context NAME) or pass a context"
        )
    ctx = merged.contexts.get(name)
    if ctx is None:
        raise ConfigError(f"kubeconfig {_names(files)}: context {name!r} is not defined")
    ctx_body, _ = ctx
    cluster_name = str(ctx_body.get("cluster") or "")
    user_name = str(ctx_body.get("user") or "")
    if cluster_name not in merged.clusters:
        raise ConfigError(
            f"kubeconfig {_names(files)}: context {name!r} names cluster {cluster_name!r}, "
            "which is not defined under clusters"
        )
    cluster, cluster_dir = merged.clusters[cluster_name]
    user, user_dir = merged.users.get(user_name, ({}, cluster_dir))
    for plugin in ("exec", "auth-provider"):
        if user.get(plugin):
            raise ConfigError(
                f"kubeconfig user {user_name!r}: {plugin} credentials are not supported; "
                "use a token, tokenFile or client certificate"
            )
    server = str(cluster.get("server") or "")
    if not server:
        raise ConfigError(
            f"kubeconfig cluster {cluster_name!r}: server is empty; set clusters[].cluster.server"
        )
    return ClientConfig(
        server=server,
        token=_str(user.get("token")),
        token_file=None if user.get("token") else _path(user.get("tokenFile"), user_dir),
        username=_str(user.get("username")),
        password=_str(user.get("password")),
        ca_file=_path(cluster.get("certificate-authority"), cluster_dir),
        ca_data=_b64(cluster.get("certificate-authority-data"), "certificate-authority-data"),
        client_cert_file=_path(user.get("client-certificate"), user_dir),
        client_cert_data=_b64(user.get("client-certificate-data"), "client-certificate-data"),
        client_key_file=_path(user.get("client-key"), user_dir),
        client_key_data=_b64(user.get("client-key-data"), "client-key-data"),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
        tls_server_name=_str(cluster.get("tls-server-name")),
        namespace=_str(ctx_body.get("namespace")) or "default",
    )


@dataclass
class _Merged:
    current_context: str | None
    clusters: dict[str, tuple[dict[str, Any], Path]]
    users: dict[str, tuple[dict[str, Any], Path]]
    contexts: dict[str, tuple[dict[str, Any], Path]]


def _merge(files: list[Path]) -> _Merged:
    """client-go's rule for a KUBECONFIG list: the first file to set a name or field wins."""
    merged = _Merged(None, {}, {}, {})
    for file in files:
        try:
            doc = yaml.safe_load(file.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"kubeconfig {file} does not exist; pass an existing file") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"kubeconfig {file} is not valid YAML: {e}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"kubeconfig {file}: the top level must be a mapping")
        if merged.current_context is None and doc.get("current-context"):
            merged.current_context = str(doc["current-context"])
        base = file.resolve().parent
        for section, key, target in (
            ("clusters", "cluster", merged.clusters),
            ("users", "user", merged.users),
            ("contexts", "context", merged.contexts),
        ):
            for entry in doc.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") is not None:
                    body = entry.get(key) or {}
                    target.setdefault(str(entry["name"]), (dict(body), base))
    return merged


def _names(files: list[Path]) -> str:
    return os.pathsep.join(str(f) for f in files)


def _str(value: Any) -> str | None:
    return str(value) if value else None


def _path(value: Any, base: Path) -> str | None:
    if not value:
        return None
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else base / p)


def _b64(value: Any, field: str) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:
        raise ConfigError(f"kubeconfig {field} is not valid base64") from None
