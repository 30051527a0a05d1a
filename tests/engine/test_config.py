"""Client configuration through kubernetes-asyncio's loaders, and credentials that refresh.

The exec-plugin tests run a real plugin (a small Python script that prints an ExecCredential and
counts its runs) against the embedded API server with bearer-token authentication on, through
kubetrain's own ApiClient: the credential is fetched again when it expires and when the server
answers 401.
"""

from __future__ import annotations

import base64
import json
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import (
    ClientConfig,
    ConfigError,
    load_config,
    load_incluster_config,
    load_kubeconfig,
)
from kubetrain.informers.resource import CONFIGMAPS
from kubetrain.informers.transport import ApiStatusError


def write_kubeconfig(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def kubeconfig_doc(
    server: str, *, user: dict[str, Any], current: str | None = "c", ca: str | None = "ca.pem"
) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if ca:
        cluster["certificate-authority"] = ca
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "k", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [
            {"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "team"}},
            {"name": "other", "context": {"cluster": "k", "user": "u"}},
        ],
    }
    if current:
        doc["current-context"] = current
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
        kubeconfig_doc(
            "https://api.example:6443/",
            user={"client-certificate-data": cert, "client-key-data": key},
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
    (tmp_path / "tok").write_text("from-file")
    path = write_kubeconfig(
        tmp_path / "config", kubeconfig_doc("http://a:1", user={"tokenFile": "tok"}, ca=None)
    )
    assert await authorization(await load_kubeconfig(path)) == "Bearer from-file"
    basic = {"username": "ada", "password": "pw"}
    path = write_kubeconfig(tmp_path / "basic", kubeconfig_doc("http://a:1", user=basic, ca=None))
    expected = "Basic " + base64.b64encode(b"ada:pw").decode()
    assert await authorization(await load_kubeconfig(path)) == expected


@pytest.mark.parametrize(
    ("doc_user", "context", "current", "match"),
    [
        ({"token": "x"}, "nope", "c", "context 'nope' is not defined"),
        ({"token": "x"}, None, None, "no current-context"),
        ({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "kt-no-such"}},
         None, "c", "exec plugin of user 'u' \\(command 'kt-no-such'\\) failed"),
    ],
)  # fmt: skip
async def test_kubeconfig_errors_name_the_problem(
    tmp_path: Path, doc_user: dict[str, Any], context: str | None, current: str | None, match: str
) -> None:
    path = write_kubeconfig(
        tmp_path / "config", kubeconfig_doc("http://a:1", user=doc_user, current=current, ca=None)
    )
    with pytest.raises(ConfigError, match=match):
        await load_kubeconfig(path, context=context)


async def test_missing_or_broken_kubeconfig_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; pass an existing file"):
        await load_kubeconfig(tmp_path / "nope")
    (tmp_path / "bad").write_text("clusters: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        await load_kubeconfig(tmp_path / "bad")
    path = write_kubeconfig(tmp_path / "noca", kubeconfig_doc("https://a:1", user={"token": "x"}))
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
    (tmp_path / "token").write_text("second")  # the kubelet rotated the projected token
    assert await creds.authorization() == "Bearer first"  # cached within the minute
    creds.invalidate()  # a 401: read the file now
    assert await creds.authorization() == "Bearer second"
    (tmp_path / "token").write_text("third")
    clock.advance(61)
    # The loader itself re-reads once a minute of real time; ours asks it after a minute of
    # the client's clock, and it serves the rotated file once its own minute has passed too.
    assert await creds.authorization() in ("Bearer second", "Bearer third")


# -- exec credential plugins against a server that authenticates -------------------------------

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


class Plugin:
    """An exec credential plugin that prints the token in ``token_file`` and counts its runs."""

    def __init__(self, tmp_path: Path, token: str, *, ttl: float = 0) -> None:
        self.script = tmp_path / "plugin.py"
        self.script.write_text(PLUGIN)
        self.script.chmod(self.script.stat().st_mode | stat.S_IXUSR)
        self.log = tmp_path / "plugin.log"
        self.token_file = tmp_path / "plugin.token"
        self.token_file.write_text(token)
        self.ttl = ttl

    def user(self) -> dict[str, Any]:
        return {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": sys.executable,
                "args": [str(self.script), str(self.log), str(self.token_file), str(self.ttl)],
                "interactiveMode": "Never",
            }
        }

    @property
    def runs(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0


async def authenticated_cluster(tokens: dict[str, str]) -> EmbeddedCluster:
    cluster = EmbeddedCluster(options=ApiServerOptions(tokens=tokens))
    await cluster.start()
    return cluster


async def test_exec_plugin_user_lists_and_writes(tmp_path: Path) -> None:
    plugin = Plugin(tmp_path, "exec-token-1")
    cluster = await authenticated_cluster({"exec-token-1": "alice"})
    try:
        path = write_kubeconfig(
            tmp_path / "kc", kubeconfig_doc(cluster.url, user=plugin.user(), ca=None)
        )
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
    plugin = Plugin(tmp_path, "t1", ttl=120)
    cluster = await authenticated_cluster({"t1": "alice", "t2": "alice"})
    try:
        path = write_kubeconfig(
            tmp_path / "kc", kubeconfig_doc(cluster.url, user=plugin.user(), ca=None)
        )
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
    plugin = Plugin(tmp_path, "old")
    tokens = {"old": "alice"}
    cluster = await authenticated_cluster(tokens)
    try:
        path = write_kubeconfig(
            tmp_path / "kc", kubeconfig_doc(cluster.url, user=plugin.user(), ca=None)
        )
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
