"""Where the API server is and how to authenticate: kubeconfig files and in-cluster config.

The operator talks to any cluster through one ``ApiClient`` (``engine/client.py``); this module
turns the usual sources of connection settings into one small ``ClientConfig`` so the client never
reads files or environment itself. Sources, in the order ``load_config`` tries them (the
controller-runtime order): an explicit kubeconfig path, ``$KUBECONFIG``, the in-cluster service
account, ``~/.kube/config``.

Reading them is kubernetes-asyncio's: its kubeconfig loader (contexts, the ``$KUBECONFIG`` list
merged by client-go's rule, relative paths, inline data, CA and client certificates, token and
tokenFile, basic auth, ``exec`` credential plugins, the ``oidc`` and ``gcp`` auth-providers) and
its in-cluster loader (the projected service-account token, re-read every minute). The credential
they give is cached and refreshed by ``engine.credentials``; kubetrain's own transport sends it.
What cannot be used ends in a ``ConfigError`` whose one-line message names the problem and the fix.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from kubetrain.base.clock import REAL_CLOCK, Clock

from .credentials import (
    REREAD_SECONDS,
    CachedCredentials,
    Credential,
    Credentials,
    StaticCredentials,
)
from .kubeconfig_loaders import loaders

if TYPE_CHECKING:
    from kubernetes_asyncio.config.kube_config import ConfigNode

# kubernetes-asyncio logs a failing credential itself before raising; ours is the one line that
# names the fix (ConfigError), so its copy is not shown.
logging.getLogger("kubernetes_asyncio.config.kube_config").setLevel(logging.CRITICAL)

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
    ``token``/``token_file``/``credentials`` is set; ``client_cert_*`` and ``client_key_*`` come
    in pairs.
    """

    server: str
    """``https://host:port`` or ``http://host:port`` (an optional path prefix is kept)."""
    credentials: Credentials | None = None
    """Where each request's ``Authorization`` header comes from (what the loaders set)."""
    token: str | None = None
    """A fixed bearer token (a shorthand for ``StaticCredentials``)."""
    token_file: str | None = None
    """A file holding the bearer token, re-read every minute (bound tokens rotate)."""
    ca_file: str | None = None
    """PEM CA bundle to verify the server with; the system store when neither CA field is set."""
    ca_data: bytes | None = None
    """PEM CA bundle, inline."""
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
        if sum(x is not None for x in (self.token, self.token_file, self.credentials)) > 1:
            raise ConfigError("token, token_file and credentials: set one of them, not several")
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

    def new_credentials(self, *, clock: Clock = REAL_CLOCK) -> Credentials:
        """The credentials a client of this config uses (one cache per client)."""
        if self.credentials is not None:
            return self.credentials
        if self.token:
            return StaticCredentials(f"Bearer {self.token}")
        if self.token_file:
            path = self.token_file

            async def read() -> Credential:
                return Credential(f"Bearer {_read_token(path)}")

            return CachedCredentials(read, reread_seconds=REREAD_SECONDS, clock=clock)
        return StaticCredentials(None)

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


def _read_token(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise ConfigError(f"token file {path}: {e.strerror}; mount or fix the token file") from None


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


async def load_config(
    kubeconfig: str | os.PathLike[str] | None = None,
    *,
    context: str | None = None,
    env: Mapping[str, str] | None = None,
    service_account_dir: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR,
    clock: Clock = REAL_CLOCK,
) -> ClientConfig:
    """The config from the first source that exists: ``kubeconfig``, ``$KUBECONFIG``, in-cluster,
    ``~/.kube/config`` (controller-runtime's order). ``env`` defaults to ``os.environ``."""
    environ = os.environ if env is None else env
    if kubeconfig is not None:
        return await load_kubeconfig(kubeconfig, context=context, clock=clock)
    if environ.get("KUBECONFIG"):
        return await load_kubeconfig(None, context=context, env=environ, clock=clock)
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return await load_incluster_config(
            env=environ, service_account_dir=service_account_dir, clock=clock
        )
    home = Path(environ.get("HOME") or Path.home()) / ".kube" / "config"
    if home.exists():
        return await load_kubeconfig(home, context=context, clock=clock)
    raise ConfigError(
        "no cluster configuration found: pass --kubeconfig, set KUBECONFIG, run in a pod "
        f"(KUBERNETES_SERVICE_HOST), or create {home}"
    )


async def load_incluster_config(
    *,
    env: Mapping[str, str] | None = None,
    service_account_dir: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR,
    clock: Clock = REAL_CLOCK,
) -> ClientConfig:
    """The config of a pod: ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the mounted service account
    (``token``, re-read every minute of ``clock`` and after a 401; ``ca.crt``; ``namespace``).

    kubernetes-asyncio's ``InClusterConfigLoader`` reads the files each time; when to read them
    again is ``CachedCredentials``' decision (its own refresh hook runs on the wall clock, which a
    test cannot drive, so it is off)."""
    k8s = loaders()
    ConfigException = k8s.ConfigException

    environ = dict(os.environ if env is None else env)
    sa = Path(service_account_dir)
    token, ca = sa / "token", sa / "ca.crt"
    if not environ.get("KUBERNETES_SERVICE_HOST") or not environ.get("KUBERNETES_SERVICE_PORT"):
        raise ConfigError(
            "in-cluster config needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT; "
            "outside a pod pass --kubeconfig"
        )
    if not token.is_file():
        raise ConfigError(
            f"in-cluster config: service account token {token} is missing; "
            "mount a service account (automountServiceAccountToken) or pass --kubeconfig"
        )
    loader = k8s.InClusterConfigLoader(
        token_filename=str(token), cert_filename=str(ca), try_refresh_token=False, environ=environ
    )

    def read_service_account() -> Any:
        cfg = k8s.Configuration()
        try:
            loader.load_and_set(cfg)
        except (ConfigException, OSError) as e:
            raise ConfigError(
                f"in-cluster config: {_one_line(e)} (service account in {sa}); "
                "mount a service account (automountServiceAccountToken) or pass --kubeconfig"
            ) from None
        return cfg

    def bearer(cfg: Any) -> Credential:
        # client-go trims the file (a trailing newline is common)
        return Credential(str(cfg.api_key["BearerToken"]).strip())

    async def fetch() -> Credential:
        return bearer(read_service_account())

    first = read_service_account()
    credentials = CachedCredentials(
        fetch, reread_seconds=REREAD_SECONDS, clock=clock, first=bearer(first)
    )
    ns_file = sa / "namespace"
    namespace = ns_file.read_text().strip() if ns_file.is_file() else "default"
    return ClientConfig(
        server=str(first.host),
        credentials=credentials,
        ca_file=str(first.ssl_ca_cert),
        namespace=namespace or "default",
    )


async def load_kubeconfig(
    path: str | os.PathLike[str] | None = None,
    *,
    context: str | None = None,
    env: Mapping[str, str] | None = None,
    clock: Clock = REAL_CLOCK,
) -> ClientConfig:
    """Read a kubeconfig: ``path``, else the ``$KUBECONFIG`` list, else ``~/.kube/config``.

    ``context`` overrides the file's ``current-context``. The user's credential is obtained now
    (an ``exec`` plugin runs once here), so an unusable one fails at start, not at the first
    request; it is refreshed later as ``engine.credentials`` says.
    """
    k8s = loaders()
    ConfigException = k8s.ConfigException

    merged, name, ctx, names = _read_kubeconfig(path, context, env)
    user_name = str(ctx.safe_get("user") or "")
    user = _user_node(merged, user_name)
    has_exec = isinstance(user, dict) and isinstance(user.get("exec"), dict)
    command = str(user["exec"].get("command") or "") if has_exec else ""

    async def fetch() -> tuple[Any, Credential]:
        loader = k8s.KubeConfigLoader(
            config_dict=merged, active_context=name, config_base_path=None
        )
        cfg = k8s.Configuration()
        try:
            await loader.load_and_set(cfg)
        except (ConfigException, OSError, ValueError, KeyError) as e:
            if has_exec and isinstance(e, FileNotFoundError):
                raise ConfigError(
                    f"kubeconfig {names}: the exec plugin of user {user_name!r}: command "
                    f"{command!r} is not found; install it or put it on PATH, or pass another "
                    "--kubeconfig"
                ) from None
            exec_failed = has_exec and (isinstance(e, OSError) or str(e).startswith("exec"))
            where = (
                f"the exec plugin of user {user_name!r} (command {command!r}) failed"
                if exec_failed
                else f"context {name!r}"
            )
            raise ConfigError(
                f"kubeconfig {names}: {where}: {_one_line(e)}; fix it (kubectl config view "
                "--minify shows what is used) or pass another --kubeconfig"
            ) from None
        expiry = getattr(loader, "exec_plugin_expiry", None) if has_exec else None
        header = cfg.api_key.get("BearerToken")
        return cfg, Credential(str(header).strip() if header else None, expiry)

    async def refetch() -> Credential:
        return (await fetch())[1]

    cfg, first = await fetch()
    credentials = CachedCredentials(
        refetch, reread_seconds=None if has_exec else REREAD_SECONDS, clock=clock, first=first
    )
    return ClientConfig(
        server=str(cfg.host),
        credentials=credentials,
        ca_file=cfg.ssl_ca_cert or None,
        client_cert_file=cfg.cert_file or None,
        client_key_file=cfg.key_file or None,
        insecure_skip_tls_verify=not cfg.verify_ssl,
        tls_server_name=cfg.tls_server_name or None,
        namespace=str(ctx.safe_get("namespace") or "default"),
    )


def _read_kubeconfig(
    path: str | os.PathLike[str] | None, context: str | None, env: Mapping[str, str] | None
) -> tuple[ConfigNode, str, ConfigNode, str]:
    """The merged files, the context's name and its ``context`` node, and the files' names
    (checked: the context and its cluster exist)."""
    ConfigException = loaders().ConfigException

    environ = os.environ if env is None else env
    if path is not None:
        files = [Path(path).expanduser()]
    elif environ.get("KUBECONFIG"):
        files = [Path(p).expanduser() for p in environ["KUBECONFIG"].split(os.pathsep) if p]
    else:
        files = [Path(environ.get("HOME") or Path.home()) / ".kube" / "config"]
    names = os.pathsep.join(str(f) for f in files)
    existing = [f for f in files if f.is_file()]
    if not existing:
        raise ConfigError(f"kubeconfig {names} does not exist; pass an existing file")
    merged = _merge(existing, names)
    try:
        name, ctx = _check_context(merged, context, names)
    except ConfigException as e:
        raise ConfigError(f"kubeconfig {names}: {_one_line(e)}") from None
    return merged, name, ctx, names


def _merge(files: list[Path], names: str) -> ConfigNode:
    """The files merged by client-go's rule (the first file to define a name wins)."""
    try:
        merger = loaders().KubeConfigMerger(os.pathsep.join(str(f) for f in files))
    except yaml.YAMLError as e:
        raise ConfigError(f"kubeconfig {names} is not valid YAML: {_one_line(e)}") from None
    except (AttributeError, TypeError, KeyError):
        raise ConfigError(
            f"kubeconfig {names}: not a kubeconfig (a mapping with clusters, users, contexts)"
        ) from None
    if merger.config is None:
        raise ConfigError(f"kubeconfig {names} is empty; pass a kubeconfig file")
    # client-go: the first file that sets current-context wins (the merger keeps the last).
    for path in merger.paths:
        current = (merger.config_files.get(path) or {}).get("current-context")
        if current:
            merger.config.value["current-context"] = current
            break
    merged: ConfigNode = merger.config
    return merged


def _check_context(merged: ConfigNode, context: str | None, names: str) -> tuple[str, ConfigNode]:
    """The context's name and its ``context`` node, after checking that it and its cluster
    exist."""
    name = context or merged.safe_get("current-context")
    if not name:
        raise ConfigError(
            f"kubeconfig {names}: no current-context; set one "
            "(kubectl config use-context NAME) or pass a context"
        )
    contexts = _child(merged, "contexts")
    ctx = contexts.get_with_name(name, safe=True) if contexts else None
    if ctx is None or _child(ctx, "context") is None:
        # The merger wraps each list item in a ConfigNode; a single file's items are plain dicts.
        items = [getattr(c, "value", c) for c in (contexts.value if contexts else None) or []]
        defined = [str(c["name"]) for c in items if isinstance(c, dict) and c.get("name")]
        choice = f"use one of {', '.join(map(repr, defined))}" if defined else "define it"
        raise ConfigError(
            f"kubeconfig {names}: context {name!r} is not defined; {choice} "
            "(kubectl config get-contexts) or pass another --kubeconfig"
        )
    cluster_name = str(ctx["context"].safe_get("cluster") or "")
    clusters = _child(merged, "clusters")
    cluster = clusters.get_with_name(cluster_name, safe=True) if clusters else None
    if cluster is None or _child(cluster, "cluster") is None:
        raise ConfigError(
            f"kubeconfig {names}: context {name!r} names cluster {cluster_name!r}, "
            "which is not defined under clusters"
        )
    if not cluster["cluster"].safe_get("server"):
        raise ConfigError(
            f"kubeconfig cluster {cluster_name!r}: server is empty; set clusters[].cluster.server"
        )
    node: ConfigNode = ctx["context"]
    return str(name), node


def _user_node(merged: ConfigNode, user_name: str) -> Any:
    users = _child(merged, "users")
    entry = users.get_with_name(user_name, safe=True) if users and user_name else None
    return entry.safe_get("user") if entry is not None else None


def _child(node: ConfigNode, key: str) -> ConfigNode | None:
    """``node[key]`` when it is a mapping or a list, else None."""
    return node[key] if isinstance(node.safe_get(key), (dict, list)) else None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__
