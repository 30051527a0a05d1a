"""CertRotator against the embedded API server: the Secret, caBundle injection, renewal of the
serving certificate, the two-step CA rotation, replicas sharing (and racing for) one Secret.

Time is a ``FakeClock`` whose wall time starts 7 hours in the past, so that certificates made
after advancing it by up to ~7 hours are also valid in real time and can be verified over real
HTTPS by a client trusting the ``caBundle`` the configurations hold (what the API server uses).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from fakes import eventually
from prometheus_client import CollectorRegistry
from tlsprobe import served_serial

from kubetrain.base.clock import FakeClock
from kubetrain.engine.client import ApiClient
from kubetrain.engine.webhook.certs import (
    CertificateAuthority,
    ServerCertificate,
    load_ca,
    make_ca,
    split_pem,
)
from kubetrain.engine.webhook.rotator import (
    MUTATING_CONFIGURATIONS,
    VALIDATING_CONFIGURATIONS,
    CertRotator,
    CertRotatorOptions,
)
from kubetrain.engine.webhook.server import WebhookServer, WebhookServerOptions
from kubetrain.informers.resource import SECRETS, ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.webhooks import (
    MUTATING_CONFIGURATION,
    VALIDATING_CONFIGURATION,
    webhook_configurations,
)

HOUR = 3600.0
MINUTE = 60.0
SECRET = "kubetrain-webhook-cert"
SECRET_KEYS = {"tls.crt", "tls.key", "ca.crt", "ca.key", "ca-bundle.crt"}
CONFIGS: tuple[tuple[ResourceRef, str], ...] = (
    (VALIDATING_CONFIGURATIONS, VALIDATING_CONFIGURATION),
    (MUTATING_CONFIGURATIONS, MUTATING_CONFIGURATION),
)


@pytest.fixture
async def configs(api: ApiClient) -> list[dict[str, Any]]:
    """The operator's two webhook configurations, installed without a caBundle."""
    created = []
    for body in webhook_configurations(url="https://127.0.0.1:1"):
        ref = (
            MUTATING_CONFIGURATIONS
            if body["kind"] == "MutatingWebhookConfiguration"
            else VALIDATING_CONFIGURATIONS
        )
        created.append(await api.create(ref, body))
    for config in created:
        assert all("caBundle" not in h["clientConfig"] for h in config["webhooks"])
    return created


def real_past_clock(hours: float = 7.0) -> FakeClock:
    start = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return FakeClock(wall_start=start - datetime.timedelta(hours=hours))


def options(**overrides: Any) -> CertRotatorOptions:
    values: dict[str, Any] = {
        "namespace": "default",
        "validating_configurations": (VALIDATING_CONFIGURATION,),
        "mutating_configurations": (MUTATING_CONFIGURATION,),
        "cert_validity": datetime.timedelta(hours=1),
        "ca_validity": datetime.timedelta(hours=10),
        "check_interval": 1e6,  # so sync() returns the time until the next renewal
        "ca_propagation_delay": 5.0,
    }
    values.update(overrides)
    return CertRotatorOptions(**values)


class Served:
    """An ``on_certificate`` callback recording what would be served."""

    def __init__(self) -> None:
        self.certs: list[ServerCertificate] = []

    def __call__(self, cert: ServerCertificate) -> None:
        self.certs.append(cert)

    @property
    def last(self) -> ServerCertificate:
        return self.certs[-1]


def rotator(
    client: ApiClient | Any, opts: CertRotatorOptions, clock: FakeClock
) -> tuple[CertRotator, Served]:
    served = Served()
    return CertRotator(cast(ApiClient, client), opts, served, clock=clock), served


async def read_secret(api: ApiClient) -> dict[str, Any]:
    return await api.get(SECRETS, "default", SECRET)


async def store_secret(api: ApiClient, data: dict[str, bytes]) -> dict[str, Any]:
    """Create the rotator's Secret holding ``data`` (key -> raw bytes), as someone else would."""
    return await api.create(
        SECRETS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": "default"},
            "type": "kubernetes.io/tls",
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        },
    )


def secret_bytes(secret: dict[str, Any], key: str) -> bytes:
    return base64.b64decode(secret["data"][key])


def secret_ca(secret: dict[str, Any]) -> CertificateAuthority:
    return load_ca(secret_bytes(secret, "ca.crt"), secret_bytes(secret, "ca.key"))


def secret_cert(secret: dict[str, Any]) -> ServerCertificate:
    return ServerCertificate(
        cert_pem=secret_bytes(secret, "tls.crt"), key_pem=secret_bytes(secret, "tls.key")
    )


async def injected(api: ApiClient) -> list[bytes | None]:
    """The decoded caBundle of every webhook of both configurations (None where unset)."""
    out: list[bytes | None] = []
    for ref, name in CONFIGS:
        config = await api.get(ref, None, name)
        for hook in config["webhooks"]:
            bundle = hook["clientConfig"].get("caBundle")
            out.append(base64.b64decode(bundle) if bundle is not None else None)
    return out


async def the_bundle(api: ApiClient) -> bytes:
    """The one caBundle every webhook holds (asserts they agree)."""
    bundles = await injected(api)
    assert len(bundles) == 16  # six kinds twice, TrainJob twice, the two runtime validators
    assert len(set(bundles)) == 1, bundles
    bundle = bundles[0]
    assert bundle is not None
    return bundle


async def config_versions(api: ApiClient) -> list[str]:
    return [
        (await api.get(ref, None, name))["metadata"]["resourceVersion"] for ref, name in CONFIGS
    ]


def serial(cert: ServerCertificate) -> int:
    return cert.certificate.serial_number


# -- first sync, adoption ---------------------------------------------------------------------------


async def test_first_sync_creates_the_secret_and_injects_the_bundle(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = FakeClock()
    keeper, served = rotator(api, options(), clock)
    delay = await keeper.sync()
    # renewal is due when 1/3 of the serving certificate's hour is left: in 40 minutes
    assert delay == pytest.approx(40 * MINUTE, abs=1)

    secret = await read_secret(api)
    assert secret["type"] == "kubernetes.io/tls"
    assert set(secret["data"]) == SECRET_KEYS
    # what the configurations trust, in memory for the webhook server's clients
    assert keeper.trusted_bundle == base64.b64decode(secret["data"]["ca-bundle.crt"])
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kubetrain"
    ca = secret_ca(secret)
    cert = secret_cert(secret)
    assert cert.signed_by(ca.cert)
    assert secret_bytes(secret, "ca-bundle.crt") == ca.cert_pem
    assert ca.not_after == clock.utcnow() + datetime.timedelta(hours=10)
    assert cert.not_after == clock.utcnow() + datetime.timedelta(hours=1)
    assert cert.dns_names() == [
        "kubetrain-webhook-service.default.svc",
        "kubetrain-webhook-service.default.svc.cluster.local",
        "localhost",
    ]
    # what is served is what is stored
    assert [c.cert_pem for c in served.certs] == [cert.cert_pem]
    assert served.last.key_pem == cert.key_pem
    assert keeper.rotations == 1

    # every webhook of both configurations trusts the CA; the rest of each is untouched
    assert await the_bundle(api) == ca.cert_pem
    for ref, name in CONFIGS:
        config = await api.get(ref, None, name)
        for hook in config["webhooks"]:
            assert hook["clientConfig"]["url"].startswith("https://127.0.0.1:1/")
            assert hook["failurePolicy"] == "Fail"


async def test_steady_state_writes_nothing(api: ApiClient, configs: list[dict[str, Any]]) -> None:
    clock = FakeClock()
    keeper, served = rotator(api, options(), clock)
    await keeper.sync()
    version = (await read_secret(api))["metadata"]["resourceVersion"]
    versions = await config_versions(api)
    clock.advance(30 * MINUTE)
    delay = await keeper.sync()
    assert delay == pytest.approx(10 * MINUTE, abs=1)
    assert (await read_secret(api))["metadata"]["resourceVersion"] == version
    assert await config_versions(api) == versions
    assert len(served.certs) == 1 and keeper.rotations == 1


async def test_check_interval_caps_the_delay(api: ApiClient, configs: list[dict[str, Any]]) -> None:
    keeper, _ = rotator(api, options(check_interval=60.0), FakeClock())
    assert await keeper.sync() == 60.0


async def test_missing_configuration_is_not_an_error(api: ApiClient) -> None:
    opts = options(
        validating_configurations=("absent-validating",),
        mutating_configurations=("absent-mutating",),
    )
    keeper, served = rotator(api, opts, FakeClock())
    await keeper.sync()
    assert len(served.certs) == 1
    assert set((await read_secret(api))["data"]) == SECRET_KEYS


async def test_only_named_configurations_are_injected(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    keeper, _ = rotator(api, options(mutating_configurations=()), FakeClock())
    await keeper.sync()
    validating = await api.get(VALIDATING_CONFIGURATIONS, None, VALIDATING_CONFIGURATION)
    mutating = await api.get(MUTATING_CONFIGURATIONS, None, MUTATING_CONFIGURATION)
    assert all("caBundle" in h["clientConfig"] for h in validating["webhooks"])
    assert all("caBundle" not in h["clientConfig"] for h in mutating["webhooks"])


async def test_second_replica_adopts_the_certificate(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = FakeClock()
    first, served_first = rotator(api, options(), clock)
    await first.sync()
    version = (await read_secret(api))["metadata"]["resourceVersion"]
    versions = await config_versions(api)

    second, served_second = rotator(api, options(), clock)
    await second.sync()
    assert [c.cert_pem for c in served_second.certs] == [served_first.last.cert_pem]
    assert served_second.last.key_pem == served_first.last.key_pem
    assert (await read_secret(api))["metadata"]["resourceVersion"] == version
    assert await config_versions(api) == versions

    # a restart of the first (a new rotator, same Secret) does not mint a new CA either
    restarted, served_restarted = rotator(api, options(), clock)
    await restarted.sync()
    assert served_restarted.last.cert_pem == served_first.last.cert_pem
    assert (await read_secret(api))["metadata"]["resourceVersion"] == version


# -- renewal ---------------------------------------------------------------------------------------


async def test_serving_certificate_renewed_with_the_same_ca(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = FakeClock()
    keeper, served = rotator(api, options(), clock)
    await keeper.sync()
    before = await read_secret(api)
    ca = secret_ca(before)
    bundle = await the_bundle(api)
    versions = await config_versions(api)

    clock.advance(39 * MINUTE)  # not yet 2/3 of the hour
    await keeper.sync()
    assert len(served.certs) == 1

    clock.advance(2 * MINUTE)  # past 2/3 of its life
    delay = await keeper.sync()
    assert len(served.certs) == 2
    renewed = served.last
    assert renewed.cert_pem != served.certs[0].cert_pem
    assert renewed.signed_by(ca.cert)
    assert renewed.not_after == clock.utcnow() + datetime.timedelta(hours=1)
    assert delay == pytest.approx(40 * MINUTE, abs=1)
    assert keeper.rotations == 2

    after = await read_secret(api)
    assert secret_bytes(after, "tls.crt") == renewed.cert_pem
    assert secret_bytes(after, "tls.key") == renewed.key_pem
    assert secret_bytes(after, "ca.crt") == secret_bytes(before, "ca.crt")
    assert secret_bytes(after, "ca.key") == secret_bytes(before, "ca.key")
    assert secret_bytes(after, "ca-bundle.crt") == ca.cert_pem
    # the API server's trust does not change: the configurations are not written
    assert await the_bundle(api) == bundle
    assert await config_versions(api) == versions


async def test_expired_serving_certificate_is_replaced(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = FakeClock()
    keeper, served = rotator(api, options(), clock)
    await keeper.sync()
    clock.advance(3 * HOUR)  # long expired, CA still fine
    await keeper.sync()
    assert len(served.certs) == 2
    assert served.last.not_after > clock.utcnow()
    assert served.last.signed_by(secret_ca(await read_secret(api)).cert)


async def test_new_service_name_reissues_with_the_same_ca(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = FakeClock()
    keeper, served = rotator(api, options(), clock)
    await keeper.sync()
    ca = secret_ca(await read_secret(api))
    renamed, served_renamed = rotator(api, options(service_name="hooks"), clock)
    await renamed.sync()
    cert = served_renamed.last
    assert cert.cert_pem != served.last.cert_pem
    assert "hooks.default.svc" in cert.dns_names()
    assert cert.signed_by(ca.cert)
    assert secret_bytes(await read_secret(api), "ca.crt") == ca.cert_pem


# -- CA rotation -----------------------------------------------------------------------------------


async def advance_to_ca_rotation(
    api: ApiClient, clock: FakeClock, keeper: CertRotator, served: Served
) -> tuple[CertificateAuthority, ServerCertificate]:
    """Sync at 0 and at 6h30 (a fresh serving certificate), then move to 6h45, when the CA (10 h)
    has less than a third of its life left. Returns the old CA and the served certificate."""
    await keeper.sync()
    old_ca = secret_ca(await read_secret(api))
    clock.advance(6 * HOUR + 30 * MINUTE)
    await keeper.sync()
    assert secret_ca(await read_secret(api)).cert == old_ca.cert  # CA not due yet
    current = served.last
    assert current.signed_by(old_ca.cert)
    clock.advance(15 * MINUTE)
    return old_ca, current


async def test_ca_rotation_in_two_steps_over_https(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = real_past_clock()
    server = WebhookServer(
        WebhookServerOptions(host="127.0.0.1", port=0), registry=CollectorRegistry()
    )
    await server.start()
    try:
        served = Served()

        def serve(cert: ServerCertificate) -> None:
            server.use_certificate(cert)
            served(cert)

        keeper = CertRotator(api, options(), serve, clock=clock)
        old_ca, old_cert = await advance_to_ca_rotation(api, clock, keeper, served)
        old_bundle = await the_bundle(api)
        assert old_bundle == old_ca.cert_pem
        assert await served_serial(server.port, old_bundle) == serial(old_cert)
        rotations = keeper.ca_rotations
        served_before = len(served.certs)

        # step one: the new CA joins the bundle; the old certificate is still served
        delay = await keeper.sync()
        assert delay == 5.0
        assert keeper.ca_rotations == rotations + 1
        secret = await read_secret(api)
        new_ca = secret_ca(secret)
        assert new_ca.cert != old_ca.cert
        assert split_pem(secret_bytes(secret, "ca-bundle.crt")) == [new_ca.cert, old_ca.cert]
        bundle = await the_bundle(api)
        assert split_pem(bundle) == [new_ca.cert, old_ca.cert]
        assert len(served.certs) == served_before  # nothing new served
        assert secret_bytes(secret, "tls.crt") == old_cert.cert_pem
        assert server.certificate is not None
        assert server.certificate.cert_pem == old_cert.cert_pem
        assert await served_serial(server.port, bundle) == serial(old_cert)

        # step two, after the propagation delay: a certificate of the new CA is served
        clock.advance(delay)
        await keeper.sync()
        renewed = served.last
        assert renewed.cert_pem != old_cert.cert_pem
        assert renewed.signed_by(new_ca.cert)
        assert not renewed.signed_by(old_ca.cert)
        assert secret_bytes(await read_secret(api), "tls.crt") == renewed.cert_pem
        assert secret_ca(await read_secret(api)).cert == new_ca.cert
        assert await the_bundle(api) == bundle  # both CAs still trusted
        # the API server's bundle verifies the new certificate over real TLS ...
        assert await served_serial(server.port, bundle) == serial(renewed)
        server.check_ready()
        # ... which a client still holding only the old CA would refuse (why step one exists)
        with pytest.raises(ssl.SSLCertVerificationError):
            await served_serial(server.port, old_bundle)
    finally:
        await server.stop()


async def test_old_ca_leaves_the_bundle_when_it_expires(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = FakeClock()
    keeper, served = rotator(api, options(), clock)
    old_ca, _ = await advance_to_ca_rotation(api, clock, keeper, served)
    clock.advance(await keeper.sync())
    await keeper.sync()
    new_ca = secret_ca(await read_secret(api))
    assert split_pem(await the_bundle(api)) == [new_ca.cert, old_ca.cert]

    # the old CA expires at 10 h
    clock.advance(10 * HOUR - (6 * HOUR + 45 * MINUTE + 5) + MINUTE)
    assert clock.utcnow() > old_ca.not_after
    await keeper.sync()
    secret = await read_secret(api)
    assert split_pem(secret_bytes(secret, "ca-bundle.crt")) == [new_ca.cert]
    assert await the_bundle(api) == new_ca.cert_pem
    assert served.last.signed_by(new_ca.cert)
    assert served.last.not_after > clock.utcnow()


async def test_ca_rotation_without_a_trusted_certificate_is_one_step(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    """When the served certificate has expired anyway, nothing is gained by waiting."""
    clock = FakeClock()
    keeper, served = rotator(api, options(), clock)
    await keeper.sync()
    old_ca = secret_ca(await read_secret(api))
    clock.advance(7 * HOUR)  # CA due, serving certificate long expired
    delay = await keeper.sync()
    assert delay == pytest.approx(40 * MINUTE, abs=1)  # not the propagation delay
    new_ca = secret_ca(await read_secret(api))
    assert new_ca.cert != old_ca.cert
    assert served.last.signed_by(new_ca.cert)
    assert split_pem(await the_bundle(api)) == [new_ca.cert, old_ca.cert]


async def advance_through_step_one(
    api: ApiClient,
) -> tuple[FakeClock, CertRotator, Served, ServerCertificate, CertificateAuthority]:
    clock = FakeClock()
    keeper, served = rotator(api, options(), clock)
    _, old_cert = await advance_to_ca_rotation(api, clock, keeper, served)
    assert await keeper.sync() == 5.0  # step one done
    new_ca = secret_ca(await read_secret(api))
    assert not old_cert.signed_by(new_ca.cert)
    return clock, keeper, served, old_cert, new_ca


async def test_another_replica_waits_out_the_propagation_delay(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock, _, _, old_cert, _ = await advance_through_step_one(api)
    other, served_other = rotator(api, options(), clock)
    await other.sync()  # within the propagation delay (no time passed)
    assert served_other.last.cert_pem == old_cert.cert_pem


async def test_wake_during_the_propagation_delay_keeps_the_old_certificate(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = FakeClock()
    keeper, served = rotator(api, options(), clock)
    syncs: list[float] = []
    sync = keeper.sync

    async def counted() -> float:
        delay = await sync()
        syncs.append(delay)
        return delay

    keeper.sync = counted  # type: ignore[method-assign]
    _, old_cert = await advance_to_ca_rotation(api, clock, keeper, served)
    syncs.clear()
    task = asyncio.create_task(keeper.run())
    try:
        await eventually(lambda: syncs == [5.0] and clock.pending_timers() == 1)
        keeper.wake()  # what the configurations informer does after the injection
        await eventually(lambda: len(syncs) == 2 and clock.pending_timers() == 1)
        assert served.last.cert_pem == old_cert.cert_pem
    finally:
        await cancel(task)


class InstallsMidSync:
    """A client through which the webhook configurations get installed just after the rotator
    looked for the mutating one and found none, with the wake the configurations informer
    then sends: an install racing the operator's first sync (what the e2e tests' setup does)."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.keeper: CertRotator | None = None
        self.installed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    async def get(self, ref: ResourceRef, namespace: str | None, name: str) -> dict[str, Any]:
        try:
            return await self.api.get(ref, namespace, name)
        finally:
            if ref is MUTATING_CONFIGURATIONS and not self.installed:
                self.installed = True
                for body in webhook_configurations(url="https://127.0.0.1:1"):
                    kind = body["kind"]
                    target = (
                        MUTATING_CONFIGURATIONS
                        if kind == "MutatingWebhookConfiguration"
                        else VALIDATING_CONFIGURATIONS
                    )
                    await self.api.create(target, body)
                assert self.keeper is not None
                self.keeper.wake()


async def test_a_wake_during_a_sync_is_not_lost(api: ApiClient) -> None:
    """Configurations installed while a pass runs get the caBundle at once, not a
    ``check_interval`` later: the wake their informer sends mid-pass cuts the next sleep short."""
    clock = FakeClock()
    client = InstallsMidSync(api)
    keeper, served = rotator(client, options(check_interval=60.0), clock)
    client.keeper = keeper
    task = asyncio.create_task(keeper.run())
    try:
        await eventually(lambda: client.installed and clock.pending_timers() == 1)
        bundle = await the_bundle(api)  # the clock never moved: the second pass was the wake's
        assert (
            split_pem(bundle)[0].serial_number
            == secret_ca(await read_secret(api)).cert.serial_number
        )
        assert len(served.certs) == 1
    finally:
        await cancel(task)


# -- repairs ---------------------------------------------------------------------------------------


async def test_garbage_secret_is_replaced(
    api: ApiClient, configs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    created = await store_secret(
        api, {k: b"not a certificate" for k in ("tls.crt", "tls.key", "ca.crt", "ca.key")}
    )
    keeper, served = rotator(api, options(), FakeClock())
    with caplog.at_level(logging.WARNING, logger="kubetrain.engine.webhook.rotator"):
        await keeper.sync()
    assert any("replacing" in r.getMessage() for r in caplog.records)
    secret = await read_secret(api)
    assert secret["metadata"]["uid"] == created["metadata"]["uid"]  # updated, not recreated
    assert secret["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    assert set(secret["data"]) == SECRET_KEYS
    ca = secret_ca(secret)
    assert secret_cert(secret).signed_by(ca.cert)
    assert served.last.cert_pem == secret_bytes(secret, "tls.crt")
    assert await the_bundle(api) == ca.cert_pem


async def test_secret_with_a_mismatched_ca_key_is_replaced(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    a, b = make_ca(), make_ca()
    cert = a.issue_server_cert()
    await store_secret(
        api,
        {
            "tls.crt": cert.cert_pem,
            "tls.key": cert.key_pem,
            "ca.crt": a.cert_pem,
            "ca.key": b.key_pem,
        },
    )
    keeper, served = rotator(api, options(), FakeClock())
    await keeper.sync()
    ca = secret_ca(await read_secret(api))
    assert ca.cert != a.cert
    assert served.last.signed_by(ca.cert)


async def test_secret_without_bundle_gets_one(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    """A Secret holding a usable CA and certificate but no ca-bundle.crt (e.g. written by an
    older version) is adopted: same CA and certificate, bundle added."""
    clock = FakeClock()
    ca = make_ca(now=clock.utcnow(), validity=datetime.timedelta(hours=10))
    cert = ca.issue_server_cert(
        dns_names=options().dns_names, now=clock.utcnow(), validity=datetime.timedelta(hours=1)
    )
    await store_secret(
        api,
        {
            "tls.crt": cert.cert_pem,
            "tls.key": cert.key_pem,
            "ca.crt": ca.cert_pem,
            "ca.key": ca.key_pem,
        },
    )
    keeper, served = rotator(api, options(), clock)
    await keeper.sync()
    assert served.last.cert_pem == cert.cert_pem
    secret = await read_secret(api)
    assert secret_bytes(secret, "ca-bundle.crt") == ca.cert_pem
    assert secret_bytes(secret, "ca.crt") == ca.cert_pem
    assert await the_bundle(api) == ca.cert_pem


async def test_wiped_ca_bundle_comes_back(api: ApiClient, configs: list[dict[str, Any]]) -> None:
    clock = FakeClock()
    keeper, _ = rotator(api, options(), clock)
    await keeper.sync()
    bundle = await the_bundle(api)
    # a re-install (kubectl apply of the YAML) drops the injected caBundle of every webhook
    config = await api.get(VALIDATING_CONFIGURATIONS, None, VALIDATING_CONFIGURATION)
    for hook in config["webhooks"]:
        del hook["clientConfig"]["caBundle"]
    await api.update(VALIDATING_CONFIGURATIONS, config)
    # and of one mutating webhook only
    config = await api.get(MUTATING_CONFIGURATIONS, None, MUTATING_CONFIGURATION)
    config["webhooks"][2]["clientConfig"]["caBundle"] = base64.b64encode(b"stale").decode()
    await api.update(MUTATING_CONFIGURATIONS, config)
    assert None in await injected(api)

    version = (await read_secret(api))["metadata"]["resourceVersion"]
    await keeper.sync()
    assert await the_bundle(api) == bundle
    assert (await read_secret(api))["metadata"]["resourceVersion"] == version


async def test_configuration_installed_later_gets_the_bundle(api: ApiClient) -> None:
    keeper, _ = rotator(api, options(), FakeClock())
    await keeper.sync()  # nothing installed yet
    for body in webhook_configurations(url="https://127.0.0.1:1"):
        ref = (
            MUTATING_CONFIGURATIONS
            if body["kind"] == "MutatingWebhookConfiguration"
            else VALIDATING_CONFIGURATIONS
        )
        await api.create(ref, body)
    await keeper.sync()
    assert await the_bundle(api) == secret_bytes(await read_secret(api), "ca.crt")


async def test_missing_namespace_names_the_flag(api: ApiClient) -> None:
    keeper, served = rotator(api, options(namespace="no-such-namespace"), FakeClock())
    with pytest.raises(RuntimeError, match="--operator-namespace") as err:
        await keeper.sync()
    assert "no-such-namespace" in str(err.value)
    assert served.certs == []


async def test_renewal_keeps_metadata_others_put_on_the_secret(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = FakeClock()
    keeper, _ = rotator(api, options(), clock)
    await keeper.sync()
    secret = await read_secret(api)
    secret["metadata"].setdefault("annotations", {})["meta.helm.sh/release-name"] = "kubetrain"
    secret["metadata"]["labels"]["team"] = "ml"
    await api.update(SECRETS, secret)
    clock.advance(41 * MINUTE)
    await keeper.sync()  # renews: writes the Secret
    after = await read_secret(api)
    assert after["metadata"].get("annotations", {}).get("meta.helm.sh/release-name") == "kubetrain"
    assert after["metadata"]["labels"].get("team") == "ml"


# -- races between replicas ------------------------------------------------------------------------


class Hooked:
    """An ApiClient whose next create/update runs ``before_write`` first (once)."""

    def __init__(self, inner: ApiClient) -> None:
        self.inner = inner
        self.before_write: Callable[[ResourceRef], Awaitable[None]] | None = None
        self.writes: list[tuple[str, str]] = []

    async def _hook(self, ref: ResourceRef) -> None:
        hook, self.before_write = self.before_write, None
        if hook is not None:
            await hook(ref)

    async def get(self, ref: ResourceRef, namespace: str | None, name: str) -> dict[str, Any]:
        return await self.inner.get(ref, namespace, name)

    async def create(self, ref: ResourceRef, obj: Any, **kw: Any) -> dict[str, Any]:
        await self._hook(ref)
        self.writes.append(("create", ref.plural))
        return await self.inner.create(ref, obj, **kw)

    async def update(self, ref: ResourceRef, obj: Any, **kw: Any) -> dict[str, Any]:
        await self._hook(ref)
        self.writes.append(("update", ref.plural))
        return await self.inner.update(ref, obj, **kw)


async def test_replicas_racing_to_create_converge_on_one_certificate(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = FakeClock()
    winner, served_winner = rotator(api, options(), clock)
    hooked = Hooked(api)
    loser, served_loser = rotator(hooked, options(), clock)

    async def winner_goes_first(ref: ResourceRef) -> None:
        await winner.sync()

    hooked.before_write = winner_goes_first
    with pytest.raises(ApiStatusError) as err:
        await loser.sync()  # read "no Secret", then lost the create
    assert err.value.is_already_exists
    assert served_loser.certs == []  # never served a certificate of its own

    await loser.sync()  # adopts the winner's
    assert served_loser.last.cert_pem == served_winner.last.cert_pem
    assert secret_bytes(await read_secret(api), "tls.crt") == served_winner.last.cert_pem


async def test_replicas_racing_to_renew_converge_on_one_certificate(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = FakeClock()
    winner, served_winner = rotator(api, options(), clock)
    hooked = Hooked(api)
    loser, served_loser = rotator(hooked, options(), clock)
    await winner.sync()
    await loser.sync()
    assert served_loser.last.cert_pem == served_winner.last.cert_pem
    clock.advance(41 * MINUTE)  # both see the renewal due

    async def winner_goes_first(ref: ResourceRef) -> None:
        assert ref == SECRETS
        await winner.sync()

    hooked.before_write = winner_goes_first
    with pytest.raises(ApiStatusError) as err:
        await loser.sync()
    assert err.value.is_conflict
    renewed = served_winner.last
    assert len(served_winner.certs) == 2
    assert len(served_loser.certs) == 1  # its own renewal was never served

    await loser.sync()
    assert served_loser.last.cert_pem == renewed.cert_pem
    assert secret_bytes(await read_secret(api), "tls.crt") == renewed.cert_pem


async def test_run_retries_after_a_conflict_with_backoff(
    api: ApiClient, configs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    winner, served_winner = rotator(api, options(), clock)
    hooked = Hooked(api)
    loser, served_loser = rotator(hooked, options(), clock)

    async def winner_goes_first(ref: ResourceRef) -> None:
        await winner.sync()

    hooked.before_write = winner_goes_first
    with caplog.at_level(logging.WARNING, logger="kubetrain.engine.webhook.rotator"):
        task = asyncio.create_task(loser.run())
        try:
            # the failed sync waits 1 s (backoff) on the clock
            await eventually(lambda: clock.next_deadline() == 1.0)
            assert served_loser.certs == []
            assert any("retrying" in r.getMessage() for r in caplog.records)
            clock.advance(1.0)
            await eventually(lambda: bool(served_loser.certs))
            assert served_loser.last.cert_pem == served_winner.last.cert_pem
        finally:
            await cancel(task)


async def test_injection_retries_a_conflicting_configuration_write(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    hooked = Hooked(api)
    keeper, _ = rotator(hooked, options(), FakeClock())
    await keeper.sync()  # creates the Secret

    # someone edits the configuration between the rotator's read and its write
    config = await api.get(VALIDATING_CONFIGURATIONS, None, VALIDATING_CONFIGURATION)
    for hook in config["webhooks"]:
        del hook["clientConfig"]["caBundle"]
    await api.update(VALIDATING_CONFIGURATIONS, config)

    async def concurrent_edit(ref: ResourceRef) -> None:
        assert ref == VALIDATING_CONFIGURATIONS
        fresh = await api.get(ref, None, VALIDATING_CONFIGURATION)
        fresh["metadata"].setdefault("labels", {})["edited"] = "yes"
        await api.update(ref, fresh)

    hooked.before_write = concurrent_edit
    hooked.writes.clear()
    await keeper.sync()
    assert hooked.writes == [
        ("update", "validatingwebhookconfigurations"),
        ("update", "validatingwebhookconfigurations"),
    ]
    config = await api.get(VALIDATING_CONFIGURATIONS, None, VALIDATING_CONFIGURATION)
    assert config["metadata"]["labels"]["edited"] == "yes"  # the other edit survived
    assert await the_bundle(api) == secret_bytes(await read_secret(api), "ca.crt")


async def test_injection_gives_up_when_the_configuration_keeps_changing(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    hooked = Hooked(api)
    keeper, _ = rotator(hooked, options(mutating_configurations=()), FakeClock())
    await keeper.sync()
    edits = 0

    async def always_edit(ref: ResourceRef) -> None:
        nonlocal edits
        edits += 1
        fresh = await api.get(ref, None, VALIDATING_CONFIGURATION)
        for hook in fresh["webhooks"]:
            hook["clientConfig"].pop("caBundle", None)
        fresh["metadata"].setdefault("labels", {})["edit"] = str(edits)
        await api.update(ref, fresh)
        hooked.before_write = always_edit

    config = await api.get(VALIDATING_CONFIGURATIONS, None, VALIDATING_CONFIGURATION)
    config["webhooks"][0]["clientConfig"].pop("caBundle")
    await api.update(VALIDATING_CONFIGURATIONS, config)
    hooked.before_write = always_edit
    with pytest.raises(RuntimeError, match="kept changing"):
        await keeper.sync()
    assert edits == 3


# -- run() and wake() ------------------------------------------------------------------------------


async def cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_run_renews_when_due_on_the_clock(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = FakeClock()
    keeper, served = rotator(api, options(), clock)
    task = asyncio.create_task(keeper.run())
    try:
        await eventually(lambda: len(served.certs) == 1 and clock.pending_timers() == 1)
        assert clock.next_deadline() == pytest.approx(40 * MINUTE, abs=1)
        clock.advance(40 * MINUTE - 10)
        await asyncio.sleep(0.05)
        assert len(served.certs) == 1
        clock.advance(11)
        await eventually(lambda: len(served.certs) == 2)
        assert served.last.cert_pem == secret_bytes(await read_secret(api), "tls.crt")
    finally:
        await cancel(task)
    assert task.cancelled()


async def test_wake_restores_a_wiped_bundle_without_waiting(
    api: ApiClient, configs: list[dict[str, Any]]
) -> None:
    clock = FakeClock()
    keeper, served = rotator(api, options(), clock)
    task = asyncio.create_task(keeper.run())
    try:
        await eventually(lambda: len(served.certs) == 1 and clock.pending_timers() == 1)
        bundle = await the_bundle(api)
        config = await api.get(MUTATING_CONFIGURATIONS, None, MUTATING_CONFIGURATION)
        for hook in config["webhooks"]:
            del hook["clientConfig"]["caBundle"]
        await api.update(MUTATING_CONFIGURATIONS, config)
        keeper.wake()
        restored = False
        for _ in range(500):
            if set(await injected(api)) == {bundle}:
                restored = True
                break
            await asyncio.sleep(0.01)
        assert restored
        assert clock.monotonic() == 0.0  # no time had to pass
        assert len(served.certs) == 1
    finally:
        await cancel(task)


# -- options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"namespace": ""},
        {"renew_fraction": 0.0},
        {"renew_fraction": 1.0},
        {"renew_fraction": -0.5},
        {"cert_validity": datetime.timedelta(hours=10)},  # == CA validity
        {"cert_validity": datetime.timedelta(hours=11)},
        {"cert_validity": datetime.timedelta(0)},
        {"cert_validity": datetime.timedelta(hours=-1)},
    ],
)
def test_options_refuse_nonsense(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        options(**overrides)


def test_options_defaults_and_dns_names() -> None:
    opts = CertRotatorOptions(namespace="kubeflow")
    assert opts.secret_name == SECRET
    assert opts.cert_validity < opts.ca_validity
    assert 0 < opts.renew_fraction < 1
    assert opts.dns_names == (
        "kubetrain-webhook-service.kubeflow.svc",
        "kubetrain-webhook-service.kubeflow.svc.cluster.local",
        "localhost",
    )
    assert CertRotatorOptions(namespace="ns", service_name="s", extra_dns_names=()).dns_names == (
        "s.ns.svc",
        "s.ns.svc.cluster.local",
    )
