"""Self-managed webhook certificates: a CA and a serving certificate kept in a Secret, the CA
injected into the webhook configurations' ``caBundle``, both renewed before they expire.

Why: the API server calls webhooks only over TLS it can verify, and an install should not need
cert-manager. The Secret is the one source of truth, so every replica of the operator serves the
same certificate and a restart does not mint a new CA; writes carry the Secret's
resourceVersion, so replicas racing to renew converge on one winner (a conflict re-reads).

Rotation never fails an admission request:

- a serving certificate is renewed with the same CA, so the ``caBundle`` the API server holds
  verifies the old and the new one; the server swaps it in place (``WebhookServer``);
- a CA is renewed in two steps: first the new CA joins the bundle (``ca-bundle.crt`` in the
  Secret = new CA + the old one while it is valid) and the bundle is injected into the
  configurations; only ``ca_propagation_delay`` later is a serving certificate signed by the new
  CA served. The old CA leaves the bundle when it expires.

The Secret (type ``kubernetes.io/tls``) holds ``tls.crt``, ``tls.key``, ``ca.crt``, ``ca.key``
and ``ca-bundle.crt``. A Secret whose contents cannot be parsed is replaced (and logged).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.engine.client import ApiClient
from kubetrain.engine.webhook.certs import (
    CertificateAuthority,
    CertificateError,
    ServerCertificate,
    load_ca,
    make_ca,
    split_pem,
)
from kubetrain.informers.resource import CUSTOM_RESOURCE_DEFINITIONS, SECRETS, ResourceRef
from kubetrain.informers.transport import ApiStatusError

__all__ = [
    "MUTATING_CONFIGURATIONS",
    "VALIDATING_CONFIGURATIONS",
    "CertRotator",
    "CertRotatorOptions",
]

log = logging.getLogger(__name__)

VALIDATING_CONFIGURATIONS = ResourceRef(
    "admissionregistration.k8s.io",
    "v1",
    "validatingwebhookconfigurations",
    False,
    "ValidatingWebhookConfiguration",
)
MUTATING_CONFIGURATIONS = ResourceRef(
    "admissionregistration.k8s.io",
    "v1",
    "mutatingwebhookconfigurations",
    False,
    "MutatingWebhookConfiguration",
)

_YEAR = datetime.timedelta(days=365)

#: Annotation on the Secret: when the renewed CA joined the bundle (RFC 3339).
CA_TRUSTED_SINCE = "kubetrain.kubeflow.org/ca-trusted-since"


@dataclass(frozen=True, slots=True, kw_only=True)
class CertRotatorOptions:
    """Where the certificates live and how long they last."""

    namespace: str
    """The Secret's namespace: the operator's own (``MY_POD_NAMESPACE``)."""
    secret_name: str = "kubetrain-webhook-cert"
    service_name: str = "kubetrain-webhook-service"
    """The webhook Service: the certificate names ``<service>.<namespace>.svc`` (what the API
    server verifies) and ``<service>.<namespace>.svc.cluster.local``."""
    extra_dns_names: tuple[str, ...] = ("localhost",)
    ip_addresses: tuple[str, ...] = ("127.0.0.1",)
    validating_configurations: tuple[str, ...] = ()
    """Names of the ValidatingWebhookConfigurations whose webhooks get the ``caBundle``."""
    mutating_configurations: tuple[str, ...] = ()
    conversion_crds: tuple[str, ...] = ()
    """Names of the CustomResourceDefinitions whose conversion webhook
    (``spec.conversion.webhook.clientConfig``) gets the ``caBundle``; one without a webhook
    conversion is left alone."""
    ca_common_name: str = "kubetrain-webhook-ca"
    ca_validity: datetime.timedelta = 10 * _YEAR
    cert_validity: datetime.timedelta = _YEAR
    """Lifetime of a serving certificate (capped by the CA's remaining life)."""
    renew_fraction: float = 1 / 3
    """A certificate (or CA) is renewed when less than this fraction of its lifetime is left."""
    check_interval: float = 60.0
    """Seconds between checks of the Secret and the configurations when nothing is due."""
    ca_propagation_delay: float = 5.0
    """Seconds between injecting a new CA and serving a certificate it signed (the API server
    reads configurations through a watch)."""

    def __post_init__(self) -> None:
        if not self.namespace:
            raise ValueError("CertRotatorOptions.namespace must be set (the operator's namespace)")
        if not 0 < self.renew_fraction < 1:
            raise ValueError(f"renew_fraction must be in (0, 1), got {self.renew_fraction}")
        if self.cert_validity <= datetime.timedelta(0) or self.ca_validity <= self.cert_validity:
            raise ValueError("certificate validity must be > 0 and shorter than the CA's")

    @property
    def dns_names(self) -> tuple[str, ...]:
        base = f"{self.service_name}.{self.namespace}.svc"
        return (base, f"{base}.cluster.local", *self.extra_dns_names)


@dataclass(slots=True)
class _Stored:
    """The Secret's contents, parsed. ``bundle`` holds the trusted CAs in PEM, newest first."""

    ca: CertificateAuthority | None = None
    cert: ServerCertificate | None = None
    bundle: list[bytes] = field(default_factory=list)
    ca_trusted_since: datetime.datetime | None = None
    """When a renewed CA joined the bundle (step one of a CA rotation); None when none is
    pending. Kept in the Secret, so every replica waits out the same propagation delay."""
    secret: dict[str, Any] | None = None  # as read; None: no Secret yet

    @property
    def resource_version(self) -> str | None:
        return None if self.secret is None else self.secret["metadata"].get("resourceVersion")


class CertRotator:
    """Keeps the webhook certificate valid; hands each new one to ``on_certificate``.

    Run ``await run()`` as a task (it loops until cancelled). ``wake()`` makes it check at once
    (call it when a webhook configuration changed: a re-installed one lost its ``caBundle``).
    ``rotations`` counts serving certificates put in use by this process.
    """

    def __init__(
        self,
        client: ApiClient,
        options: CertRotatorOptions,
        on_certificate: Callable[[ServerCertificate], None],
        *,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.options = options
        self._on_certificate = on_certificate
        self.clock = clock
        self._wake = asyncio.Event()
        self._served: bytes | None = None
        # CRD name -> the caBundle last seen injected: a CRD (a MB of schema) is read again
        # only when the bundle changed or ``wake_crds`` (a re-installed CRD lost it).
        self._crd_bundles: dict[str, str] = {}
        self.rotations = 0
        self.ca_rotations = 0
        self._trusted_bundle: bytes | None = None

    @property
    def trusted_bundle(self) -> bytes | None:
        """The CA bundle (PEM) the webhook configurations were last made to trust, the Secret's
        ``ca-bundle.crt``; None before the first sync. Clients of the webhook server (a trainer
        posting its status) verify it with this, read from memory rather than the Secret."""
        return self._trusted_bundle

    def wake(self) -> None:
        """Check the Secret and the configurations now (sync, signal-safe)."""
        self._wake.set()

    def wake_crds(self) -> None:
        """A converting CRD changed (re-installed, it may have lost its caBundle): read them again
        and check now. Kept apart from ``wake``: our own injections into the configurations wake
        the rotator, and re-reading a MB-sized CRD on each would slow a certificate renewal."""
        self._crd_bundles.clear()
        self._wake.set()

    async def run(self) -> None:
        """Sync, then again when due, on ``wake()`` or every ``check_interval``; a failure is
        logged and retried with backoff (1 s doubling up to ``check_interval``)."""
        failures = 0
        while True:
            # Cleared before the pass, not before the sleep: a wake that comes while ``sync``
            # runs (a configuration installed after the pass looked for it) must cut the next
            # sleep short, or that configuration waits ``check_interval`` for its caBundle.
            self._wake.clear()
            try:
                delay = await self.sync()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as e:
                failures += 1
                delay = min(2.0 ** (failures - 1), self.options.check_interval)
                log.warning("webhook certificates: %s; retrying in %.0f s", _reason(e), delay)
            await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(max(seconds, 0.0)))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
            for task in (sleeper, waker):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- one pass --------------------------------------------------------------------------------

    async def sync(self) -> float:
        """Make the Secret, the configurations and the served certificate right; the seconds
        until the next check is due (at most ``check_interval``)."""
        opts = self.options
        stored = await self._read()
        now = self.clock.utcnow()
        bundle = [pem for pem in stored.bundle if _valid_ca_pem(pem, now)]
        ca = stored.ca
        trusted_since = stored.ca_trusted_since
        if ca is None or self._due(ca.not_after, opts.ca_validity, now):
            ca = make_ca(opts.ca_common_name, validity=opts.ca_validity, now=now)
            old = [pem for pem in bundle if pem != ca.cert_pem]
            bundle = [ca.cert_pem, *old]
            self.ca_rotations += 1
            old_cert = stored.cert
            if old_cert is not None and self._trusted(old_cert, old, now):
                # Step one of a CA rotation: trust the new CA first, keep serving the old cert.
                await self._write(stored, ca, old_cert, bundle, trusted_since=now)
                await self._inject(bundle)
                self._serve(old_cert)
                log.info("webhook CA renewed; switching the serving certificate shortly")
                return opts.ca_propagation_delay
            trusted_since = None  # nothing the old CA signed is worth serving: no wait
        elif ca.cert_pem not in bundle:
            bundle = [ca.cert_pem, *bundle]
        cert = stored.cert
        if cert is None or not cert.signed_by(ca.cert) or self._cert_due(cert, now):
            wait = self._propagation_left(trusted_since, now)
            if wait > 0 and cert is not None and self._trusted(cert, bundle, now):
                # Step two is not due yet (any replica, however it was woken).
                await self._inject(bundle)
                self._serve(cert)
                return wait
            cert = ca.issue_server_cert(
                dns_names=opts.dns_names,
                ip_addresses=opts.ip_addresses,
                validity=opts.cert_validity,
                now=now,
            )
            trusted_since = None
            log.info("webhook serving certificate issued, valid until %s", cert.not_after)
        if (
            stored.ca is not ca
            or stored.cert is not cert
            or stored.bundle != bundle
            or stored.ca_trusted_since != trusted_since
            or stored.secret is None
        ):
            await self._write(stored, ca, cert, bundle, trusted_since=trusted_since)
        await self._inject(bundle)
        self._serve(cert)
        renew_at = min(
            self._renew_time(cert.not_after, opts.cert_validity),
            self._renew_time(ca.not_after, opts.ca_validity),
        )
        return max(0.0, min((renew_at - now).total_seconds(), opts.check_interval))

    def _propagation_left(
        self, trusted_since: datetime.datetime | None, now: datetime.datetime
    ) -> float:
        if trusted_since is None:
            return 0.0
        return (trusted_since - now).total_seconds() + self.options.ca_propagation_delay

    def _renew_time(
        self, not_after: datetime.datetime, validity: datetime.timedelta
    ) -> datetime.datetime:
        return not_after - validity * self.options.renew_fraction

    def _due(
        self, not_after: datetime.datetime, validity: datetime.timedelta, now: datetime.datetime
    ) -> bool:
        return now >= self._renew_time(not_after, validity)

    def _cert_due(self, cert: ServerCertificate, now: datetime.datetime) -> bool:
        if self._due(cert.not_after, self.options.cert_validity, now):
            return True
        return not set(self.options.dns_names) <= set(cert.dns_names())

    @staticmethod
    def _trusted(cert: ServerCertificate, bundle: list[bytes], now: datetime.datetime) -> bool:
        if cert.not_after <= now:
            return False
        return any(cert.signed_by(ca) for pem in bundle for ca in split_pem(pem))

    def _serve(self, cert: ServerCertificate) -> None:
        if cert.cert_pem == self._served:
            return
        self._on_certificate(cert)
        self._served = cert.cert_pem
        self.rotations += 1

    # -- the Secret ------------------------------------------------------------------------------

    async def _read(self) -> _Stored:
        opts = self.options
        try:
            secret = await self.client.get(SECRETS, opts.namespace, opts.secret_name)
        except ApiStatusError as e:
            if e.is_not_found:
                return _Stored()
            raise
        stored = _Stored(secret=secret)
        data = secret.get("data") or {}
        try:
            raw = {k: base64.b64decode(v) for k, v in data.items() if isinstance(v, str)}
            if "ca.crt" in raw and "ca.key" in raw:
                stored.ca = load_ca(raw["ca.crt"], raw["ca.key"])
            if "tls.crt" in raw and "tls.key" in raw:
                stored.cert = ServerCertificate(cert_pem=raw["tls.crt"], key_pem=raw["tls.key"])
                stored.cert.certificate  # noqa: B018 - parse now: garbage is replaced below
            bundle = raw.get("ca-bundle.crt", b"")
            stored.bundle = [c.public_bytes(serialization.Encoding.PEM) for c in split_pem(bundle)]
            since = ((secret.get("metadata") or {}).get("annotations") or {}).get(CA_TRUSTED_SINCE)
            if since:
                stored.ca_trusted_since = datetime.datetime.fromisoformat(since)
        except (ValueError, CertificateError) as e:
            log.warning(
                "Secret %s/%s does not hold usable certificates (%s); replacing them",
                opts.namespace,
                opts.secret_name,
                e,
            )
            return _Stored(secret=secret)
        return stored

    async def _write(
        self,
        stored: _Stored,
        ca: CertificateAuthority,
        cert: ServerCertificate,
        bundle: list[bytes],
        *,
        trusted_since: datetime.datetime | None,
    ) -> None:
        """Create the Secret or update the one read (its resourceVersion guards the write; a
        conflict propagates and ``run`` re-reads). What others put on an existing Secret
        (labels, annotations, owner references, its type) is kept."""
        opts = self.options
        data = {
            "tls.crt": cert.cert_pem,
            "tls.key": cert.key_pem,
            "ca.crt": ca.cert_pem,
            "ca.key": ca.key_pem,
            "ca-bundle.crt": b"".join(bundle),
        }
        if stored.secret is None:
            secret: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": opts.secret_name,
                    "namespace": opts.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "kubetrain"},
                },
                "type": "kubernetes.io/tls",
            }
        else:
            secret = copy.deepcopy(stored.secret)
            secret.setdefault("type", "kubernetes.io/tls")  # immutable once set: keep theirs
        annotations = secret["metadata"].setdefault("annotations", {})
        if trusted_since is None:
            annotations.pop(CA_TRUSTED_SINCE, None)
        else:
            annotations[CA_TRUSTED_SINCE] = trusted_since.isoformat()
        if not annotations:
            del secret["metadata"]["annotations"]
        secret["data"] = {k: base64.b64encode(v).decode() for k, v in data.items()}
        if stored.secret is None:
            try:
                await self.client.create(SECRETS, secret)
            except ApiStatusError as e:
                if e.is_not_found:
                    raise RuntimeError(
                        f'namespace "{opts.namespace}" not found: create it, or set '
                        "--operator-namespace (or $MY_POD_NAMESPACE) to the operator's namespace"
                    ) from None
                raise
        else:
            await self.client.update(SECRETS, secret)

    # -- the configurations ----------------------------------------------------------------------

    async def _inject(self, bundle: list[bytes]) -> None:
        """Every configuration and converting CRD trusts ``bundle`` when this returns. They are
        written at once, not one after the other: a renewal waits for the slowest (a CRD is a
        MB of schema), not for their sum."""
        joined = b"".join(bundle)
        encoded = base64.b64encode(joined).decode()
        await asyncio.gather(
            *(
                self._inject_one(ref, name, encoded)
                for ref, names in (
                    (VALIDATING_CONFIGURATIONS, self.options.validating_configurations),
                    (MUTATING_CONFIGURATIONS, self.options.mutating_configurations),
                )
                for name in names
            ),
            *(self._inject_crd(name, encoded) for name in self.options.conversion_crds),
        )
        self._trusted_bundle = joined

    async def _inject_crd(self, name: str, encoded: str) -> None:
        if self._crd_bundles.get(name) == encoded:
            return
        ref = CUSTOM_RESOURCE_DEFINITIONS
        for _ in range(3):  # a conflict means someone else just wrote it: read again
            try:
                crd = await self.client.get(ref, None, name)
            except ApiStatusError as e:
                if e.is_not_found:
                    log.debug("CRD %s not installed; no caBundle to inject", name)
                    return
                raise
            webhook = ((crd.get("spec") or {}).get("conversion") or {}).get("webhook")
            if not isinstance(webhook, dict):
                return  # no webhook conversion (strategy None): nothing trusts our CA
            client_config = webhook.setdefault("clientConfig", {})
            if client_config.get("caBundle") != encoded:
                client_config["caBundle"] = encoded
                try:
                    await self.client.update(ref, crd)
                except ApiStatusError as e:
                    if e.is_conflict:
                        continue
                    raise
                log.info("caBundle injected into the conversion webhook of CRD %s", name)
            self._crd_bundles[name] = encoded
            return
        raise RuntimeError(f"CRD {name} kept changing while injecting the caBundle")

    async def _inject_one(self, ref: ResourceRef, name: str, encoded: str) -> None:
        for _ in range(3):  # a conflict means someone else just wrote it: read again
            try:
                config = await self.client.get(ref, None, name)
            except ApiStatusError as e:
                if e.is_not_found:
                    log.debug("%s %s not installed; no caBundle to inject", ref.kind, name)
                    return
                raise
            hooks = config.get("webhooks") or []
            stale = [h for h in hooks if (h.get("clientConfig") or {}).get("caBundle") != encoded]
            if not stale:
                return
            for hook in stale:
                hook.setdefault("clientConfig", {})["caBundle"] = encoded
            try:
                await self.client.update(ref, config)
            except ApiStatusError as e:
                if e.is_conflict:
                    continue
                raise
            log.info("caBundle injected into %s %s (%d webhooks)", ref.kind, name, len(stale))
            return
        raise RuntimeError(f"{ref.kind} {name} kept changing while injecting the caBundle")


def _valid_ca_pem(pem: bytes, now: datetime.datetime) -> bool:
    certs = split_pem(pem)
    return bool(certs) and certs[0].not_valid_after_utc > now


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
