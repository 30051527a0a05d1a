"""Client configuration through kubernetes-asyncio's loaders, and credentials that refresh.

The exec-plugin tests run a real plugin (a small Python script that prints an ExecCredential and
counts its runs) against the embedded API server with bearer-token authentication on, through
kubetrain's own ApiClient: the credential is fetched again when it expires and when the server
answers 401. The TLS tests serve HTTPS from a throwaway CA to check that CA data, client
certificates, ``tls-server-name`` and ``insecure-skip-tls-verify`` reach the transport.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubeconfigs import ExecPlugin, kubeconfig_doc, write_kubeconfig
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ApiConnectionError, ClientOptions
from kubetrain.engine.config import (
    ClientConfig,
    ConfigError,
    load_config,
    load_incluster_config,
    load_kubeconfig,
)
from kubetrain.engine.webhook.certs import CertificateAuthority, make_ca
from kubetrain.informers.resource import CONFIGMAPS
from kubetrain.informers.transport import ApiStatusError


def with_ca(doc: dict[str, Any], ca: str = "ca.pem") -> dict[str, Any]:
    doc["clusters"][0]["cluster"]["certificate-authority"] = ca
    return doc


def read(path: str | None) -> bytes:
    assert path is not None
    with open(path, "rb") as f:
        return f.read()


async def authorization(cfg: ClientConfig) -> str | None:
    return await cfg.new_credentials().authorization()


# -- kubeconfig fields ---------------------------------------------------------------------------


async def test_kubeconfig_fields_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("PEM")
    cert = base64.b64encode(b"CERT").decode()
    key = base64.b64encode(b"KEY").decode()
    path = write_kubeconfig(
        tmp_path / "config",
        with_ca(
            kubeconfig_doc(
                "https://api.example:6443/",
                user={"client-certificate-data": cert, "client-key-data": key},
            )
        ),
    )
    cfg = await load_kubeconfig(path)
    assert cfg.server == "https://api.example:6443"
    assert cfg.host == "api.example:6443"
    assert cfg.ca_file == str(tmp_path / "ca.pem")
    assert read(cfg.client_cert_file) == b"CERT" and read(cfg.client_key_file) == b"KEY"
    assert cfg.namespace == "team"
    assert (await load_kubeconfig(path, context="other")).namespace == "default"


async def test_kubeconfig_list_first_file_wins(tmp_path: Path) -> None:
    a = write_kubeconfig(tmp_path / "a", kubeconfig_doc("http://a:1", user={"token": "A"}))
    b = write_kubeconfig(
        tmp_path / "b", kubeconfig_doc("http://b:2", user={"token": "B"}, current="other")
    )
    cfg = await load_config(env={"KUBECONFIG": f"{a}:{b}:{tmp_path / 'missing'}"})
    assert (cfg.server, cfg.namespace) == ("http://a:1", "team")
    assert await authorization(cfg) == "Bearer A"


async def test_token_file_and_basic_auth_users(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("from-file\n")  # trimmed, as client-go does
    path = write_kubeconfig(
        tmp_path / "config", kubeconfig_doc("http://a:1", user={"tokenFile": "tok"})
    )
    assert await authorization(await load_kubeconfig(path)) == "Bearer from-file"
    basic = {"username": "ada", "password": "pw"}
    path = write_kubeconfig(tmp_path / "basic", kubeconfig_doc("http://a:1", user=basic))
    expected = "Basic " + base64.b64encode(b"ada:pw").decode()
    assert await authorization(await load_kubeconfig(path)) == expected


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT with ``claims`` (the oidc auth-provider reads only its ``exp``)."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(obj)).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


async def test_oidc_auth_provider_user(tmp_path: Path) -> None:
    exp = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    id_token = jwt({"iss": "https://issuer.example", "sub": "ada", "exp": exp})
    provider = {
        "name": "oidc",
        "config": {
            "client-id": "kubetrain",
            "idp-issuer-url": "https://issuer.example",
            "id-token": id_token,
        },
    }
    path = write_kubeconfig(
        tmp_path / "config", kubeconfig_doc("http://a:1", user={"auth-provider": provider})
    )
    assert await authorization(await load_kubeconfig(path)) == f"Bearer {id_token}"
    # Expired and nothing to refresh it with: the problem is named at load time.
    provider["config"]["id-token"] = jwt({"exp": exp - 7200})
    path = write_kubeconfig(
        tmp_path / "config", kubeconfig_doc("http://a:1", user={"auth-provider": provider})
    )
    with pytest.raises(ConfigError, match=r"oidc: No valid id-token.*refresh-token"):
        await load_kubeconfig(path)


@pytest.mark.parametrize(
    ("doc_user", "context", "current", "match"),
    [
        ({"token": "x"}, "nope", "c", "context 'nope' is not defined"),
        ({"token": "x"}, None, None, "no current-context"),
        ({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "kt-no-such"}},
         None, "c", "exec plugin of user 'u': command 'kt-no-such' is not found; install it"),
    ],
)  # fmt: skip
async def test_kubeconfig_errors_name_the_problem(
    tmp_path: Path, doc_user: dict[str, Any], context: str | None, current: str | None, match: str
) -> None:
    path = write_kubeconfig(
        tmp_path / "config", kubeconfig_doc("http://a:1", user=doc_user, current=current)
    )
    with pytest.raises(ConfigError, match=match):
        await load_kubeconfig(path, context=context)


async def test_missing_or_broken_kubeconfig_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; pass an existing file"):
        await load_kubeconfig(tmp_path / "nope")
    (tmp_path / "bad").write_text("clusters: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        await load_kubeconfig(tmp_path / "bad")
    doc = with_ca(kubeconfig_doc("https://a:1", user={"token": "x"}))
    path = write_kubeconfig(tmp_path / "noca", doc)
    with pytest.raises(ConfigError, match=r"context 'c'.*ca\.pem"):
        await load_kubeconfig(path)


async def test_no_config_anywhere_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no cluster configuration"):
        await load_config(env={"HOME": str(tmp_path)})


def test_config_validation_and_tls() -> None:
    with pytest.raises(ConfigError, match="server"):
        ClientConfig(server="api.example:6443")
    with pytest.raises(ConfigError, match="together"):
        ClientConfig(server="https://a", client_cert_data=b"x")
    with pytest.raises(ConfigError, match="set one of them"):
        ClientConfig(server="https://a", token="t", token_file="/f")
    assert ClientConfig(server="http://a").ssl_context() is None
    insecure = ClientConfig(server="https://a", insecure_skip_tls_verify=True).ssl_context()
    assert insecure is not None and not insecure.check_hostname


async def test_embedded_kubeconfig_loads(tmp_path: Path) -> None:
    from kubetrain.cluster.embedded import write_kubeconfig as embedded_write

    path = tmp_path / "kc"
    embedded_write(str(path), "http://127.0.0.1:9")
    cfg = await load_kubeconfig(path)
    assert cfg.server == "http://127.0.0.1:9" and json.dumps(cfg.namespace)
    assert await authorization(cfg) == "Bearer kubetrain-dummy-token"


# -- TLS: CA, client certificates, insecure-skip-tls-verify, tls-server-name ---------------------


def client_cert(ca: CertificateAuthority, name: str) -> tuple[bytes, bytes]:
    """A client certificate for user ``name`` signed by ``ca``, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@asynccontextmanager
async def tls_server(
    ca: CertificateAuthority, *, dns_names: tuple[str, ...] = (), require_client_cert: bool
) -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTPS server on 127.0.0.1 answering an empty ConfigMap list; yields its URL and the
    common names of the client certificates it saw."""
    seen: list[str] = []

    async def configmaps(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(x[0] for x in (peer or {}).get("subject", ()))
        seen.append(subject.get("commonName", ""))
        body = {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {}, "items": []}
        return web.json_response(body)

    ip_addresses = () if dns_names else ("127.0.0.1",)
    context = ca.issue_server_cert(dns_names=dns_names, ip_addresses=ip_addresses).ssl_context()
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=ca.cert_pem.decode())
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default/configmaps", configmaps)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def list_configmaps(path: Path) -> None:
    async with ApiClient(
        await load_kubeconfig(path), ClientOptions(registry=CollectorRegistry())
    ) as c:
        await c.list(CONFIGMAPS, "default")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_ca_data_and_client_certificate_data_reach_a_tls_server(tmp_path: Path) -> None:
    ca = make_ca("cluster-ca")
    cert, key = client_cert(ca, "ada")
    async with tls_server(ca, require_client_cert=True) as (url, seen):
        user = {"client-certificate-data": b64(cert), "client-key-data": b64(key)}
        cluster = {"certificate-authority-data": b64(ca.cert_pem)}
        path = write_kubeconfig(tmp_path / "kc", kubeconfig_doc(url, user=user, cluster=cluster))
        await list_configmaps(path)
        assert seen == ["ada"]
        # The same from files, as relative paths beside the kubeconfig.
        (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
        (tmp_path / "ada.crt").write_bytes(cert)
        (tmp_path / "ada.key").write_bytes(key)
        user = {"client-certificate": "ada.crt", "client-key": "ada.key"}
        cluster = {"certificate-authority": "ca.crt"}
        path = write_kubeconfig(tmp_path / "kc", kubeconfig_doc(url, user=user, cluster=cluster))
        await list_configmaps(path)
        assert seen == ["ada", "ada"]
        # Without the client certificate the server refuses the handshake.
        path = write_kubeconfig(tmp_path / "kc", kubeconfig_doc(url, user={}, cluster=cluster))
        with pytest.raises(ApiConnectionError):
            await list_configmaps(path)


async def test_server_verification_insecure_skip_and_tls_server_name(tmp_path: Path) -> None:
    ca = make_ca("cluster-ca")
    ca_data = {"certificate-authority-data": b64(ca.cert_pem)}
    async with tls_server(ca, dns_names=("kubernetes.default.svc",), require_client_cert=False) as (
        url,
        seen,
    ):
        # Certificate for kubernetes.default.svc, dialled at 127.0.0.1: verification fails ...
        path = write_kubeconfig(tmp_path / "kc", kubeconfig_doc(url, user={}, cluster=ca_data))
        with pytest.raises(ApiConnectionError, match=r"certificate|hostname|match"):
            await list_configmaps(path)
        # ... unless the name to verify is given (kubeconfig tls-server-name) ...
        cluster = {**ca_data, "tls-server-name": "kubernetes.default.svc"}
        path = write_kubeconfig(tmp_path / "kc", kubeconfig_doc(url, user={}, cluster=cluster))
        await list_configmaps(path)
        # ... or verification is off; an unknown CA fails without it.
        path = write_kubeconfig(tmp_path / "kc", kubeconfig_doc(url, user={"token": "x"}))
        with pytest.raises(ApiConnectionError, match="certificate"):
            await list_configmaps(path)
        insecure = {"insecure-skip-tls-verify": True}
        path = write_kubeconfig(tmp_path / "kc", kubeconfig_doc(url, user={}, cluster=insecure))
        await list_configmaps(path)
    assert len(seen) == 2


# -- in-cluster ----------------------------------------------------------------------------------


def service_account(tmp_path: Path, token: str) -> dict[str, str]:
    (tmp_path / "token").write_text(token)
    (tmp_path / "ca.crt").write_text("PEM")
    (tmp_path / "namespace").write_text("ops\n")
    return {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}


async def test_incluster_config(tmp_path: Path) -> None:
    env = service_account(tmp_path, "sa-token")
    cfg = await load_config(env=env, service_account_dir=tmp_path)
    assert cfg.server == "https://[fd00::1]:443"
    assert cfg.ca_file == str(tmp_path / "ca.crt") and cfg.namespace == "ops"
    assert await authorization(cfg) == "Bearer sa-token"
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST"):
        await load_incluster_config(env={}, service_account_dir=tmp_path)
    with pytest.raises(ConfigError, match="token"):
        await load_incluster_config(env=env, service_account_dir=tmp_path / "none")


async def test_incluster_token_is_reread_after_a_minute_and_after_a_401(tmp_path: Path) -> None:
    env = service_account(tmp_path, "first")
    clock = FakeClock()
    cfg = await load_incluster_config(env=env, service_account_dir=tmp_path, clock=clock)
    creds = cfg.new_credentials()
    assert await creds.authorization() == "Bearer first"
    (tmp_path / "token").write_text("second\n")  # the kubelet rotated the projected token
    clock.advance(59)
    assert await creds.authorization() == "Bearer first"  # cached within the minute
    creds.invalidate()  # a 401: read the file now
    assert await creds.authorization() == "Bearer second"
    (tmp_path / "token").write_text("third")
    clock.advance(59)
    assert await creds.authorization() == "Bearer second"
    clock.advance(2)  # a minute after the last read, on the client's clock
    assert await creds.authorization() == "Bearer third"
    (tmp_path / "token").unlink()
    clock.advance(61)
    with pytest.raises(ConfigError, match=r"in-cluster config: .*token.*pass --kubeconfig"):
        await creds.authorization()


async def test_incluster_token_rotation_reaches_an_authenticating_server(tmp_path: Path) -> None:
    # The same, through the ApiClient: the server stops accepting the old token (it expired), the
    # kubelet has written the new one, and the next request succeeds after one 401.
    env = service_account(tmp_path, "sa-1")
    tokens = {"sa-1": "system:serviceaccount:ops:kubetrain"}
    cluster = await authenticated_cluster(tokens)
    try:
        incluster = await load_incluster_config(env=env, service_account_dir=tmp_path)
        # The embedded server speaks http; keep the in-cluster credential, point at it.
        cfg = ClientConfig(server=cluster.url, credentials=incluster.credentials)
        async with ApiClient(cfg, ClientOptions(registry=CollectorRegistry())) as client:
            await client.list(CONFIGMAPS, "default")
            (tmp_path / "token").write_text("sa-2")
            tokens["sa-2"] = tokens.pop("sa-1")
            await client.list(CONFIGMAPS, "default")
        assert cluster.api.authn is not None
        assert cluster.api.authn.authenticated["system:serviceaccount:ops:kubetrain"] == 2
    finally:
        await cluster.stop()


# -- exec credential plugins against a server that authenticates -------------------------------


async def authenticated_cluster(tokens: dict[str, str]) -> EmbeddedCluster:
    cluster = EmbeddedCluster(options=ApiServerOptions(tokens=tokens))
    await cluster.start()
    return cluster


async def test_exec_plugin_user_lists_and_writes(tmp_path: Path) -> None:
    plugin = ExecPlugin(tmp_path, "exec-token-1")
    cluster = await authenticated_cluster({"exec-token-1": "alice"})
    try:
        path = write_kubeconfig(tmp_path / "kc", kubeconfig_doc(cluster.url, user=plugin.user()))
        cfg = await load_kubeconfig(path)
        async with ApiClient(cfg, ClientOptions(registry=CollectorRegistry())) as client:
            await client.create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": "default"}})
            listed = await client.list(CONFIGMAPS, "default")
        assert [c["metadata"]["name"] for c in listed["items"]] == ["x"]
        assert plugin.runs == 1  # once at load, then cached (no expiry given)
        assert cluster.api.authn is not None and cluster.api.authn.authenticated["alice"] == 2
        # Without a credential the same server refuses: authentication is really on.
        anonymous = ClientConfig(server=cluster.url)
        async with ApiClient(anonymous, ClientOptions(registry=CollectorRegistry())) as client:
            with pytest.raises(ApiStatusError) as err:
                await client.list(CONFIGMAPS, "default")
        assert err.value.code == 401 and err.value.reason == "Unauthorized"
    finally:
        await cluster.stop()


async def test_expired_exec_credential_is_fetched_again(tmp_path: Path) -> None:
    plugin = ExecPlugin(tmp_path, "t1", ttl=120)
    cluster = await authenticated_cluster({"t1": "alice", "t2": "alice"})
    try:
        path = write_kubeconfig(tmp_path / "kc", kubeconfig_doc(cluster.url, user=plugin.user()))
        clock = FakeClock(wall_start=datetime.now(UTC))
        cfg = await load_kubeconfig(path, clock=clock)
        options = ClientOptions(registry=CollectorRegistry(), clock=clock)
        async with ApiClient(cfg, options) as client:
            await client.list(CONFIGMAPS, "default")
            clock.advance(60)
            await client.list(CONFIGMAPS, "default")
            assert plugin.runs == 1  # not expired yet
            plugin.token_file.write_text("t2")
            clock.advance(timedelta(seconds=61).total_seconds())  # past expirationTimestamp
            await client.list(CONFIGMAPS, "default")
        assert plugin.runs == 2
    finally:
        await cluster.stop()


async def test_a_401_makes_the_client_run_the_plugin_again_and_retry(tmp_path: Path) -> None:
    plugin = ExecPlugin(tmp_path, "old")
    tokens = {"old": "alice"}
    cluster = await authenticated_cluster(tokens)
    try:
        path = write_kubeconfig(tmp_path / "kc", kubeconfig_doc(cluster.url, user=plugin.user()))
        cfg = await load_kubeconfig(path)
        async with ApiClient(cfg, ClientOptions(registry=CollectorRegistry())) as client:
            await client.list(CONFIGMAPS, "default")
            # The server revokes the token; the plugin now hands out a new one.
            del tokens["old"]
            tokens["new"] = "alice"
            plugin.token_file.write_text("new")
            await client.create(CONFIGMAPS, {"metadata": {"name": "y", "namespace": "default"}})
            assert (await client.get(CONFIGMAPS, "default", "y"))["metadata"]["name"] == "y"
            assert plugin.runs == 2
            # A credential the server keeps refusing is an error after one retry.
            del tokens["new"]
            with pytest.raises(ApiStatusError) as err:
                await client.list(CONFIGMAPS, "default")
        assert err.value.code == 401 and plugin.runs == 3
    finally:
        await cluster.stop()
