"""Admission webhooks: Validating/MutatingWebhookConfiguration (admissionregistration.k8s.io/v1).

The API server calls every matching webhook with an ``AdmissionReview`` (admission.k8s.io/v1)
over HTTPS before it persists a create, update or delete: mutating webhooks first, one after the
other in the order of (configuration name, position), each seeing the previous one's JSONPatch;
then the validating webhooks, all at once. The first refusal (in that order) fails the request
with the webhook's status: code 400 unless the webhook says >= 400, message
``admission webhook "<name>" denied the request: <message>`` (kube's ``ToStatusErr``).

What is supported of a webhook: ``rules`` (operations, apiGroups, apiVersions, resources with
``*``, ``*/*``, ``pods/*``, ``*/status``, ``pods/status``; scope), ``matchPolicy`` (Exact; or
Equivalent: another served version of the same resource matches too, and the webhook gets the
object in that version: converted by the CRD's conversion webhook when it has one, as kube does
(a mutating webhook's patch applies to that object, which is converted back), else relabelled), ``namespaceSelector`` (labels of
the request's namespace; the Namespace object's own labels for namespaces; cluster-scoped objects
always match), ``objectSelector`` (new or old object's labels), ``failurePolicy`` (Fail, the
default, or Ignore: a webhook that cannot be called, times out or answers nonsense is skipped),
``timeoutSeconds`` (default 10), ``sideEffects`` (a dry-run request matching a webhook that is not
``None``/``NoneOnDryRun`` is refused: ``admission webhook "x" does not support dry run``; v1
validation lets only those two values be stored, so this concerns configurations stored some
other way) and ``clientConfig`` with ``caBundle`` (the only trusted CA when given; system CAs
otherwise). Configurations are defaulted and validated on write as kube does
(``webhookconfigs.py``). Reviews are ``admission.k8s.io/v1`` only: a webhook whose
``admissionReviewVersions`` lacks v1 fails its calls (kube would send it v1beta1).

How ``clientConfig`` is dialed (the embedded cluster has no cluster network):

- ``url``: as given (must be ``https://``); the operator's own webhook server listens on
  127.0.0.1, so ``https://127.0.0.1:9443/validate-...`` is the usual local form;
- ``service: {namespace, name, port (default 443), path}``: the Service must exist in the
  embedded cluster; the webhook is dialed at ``https://127.0.0.1:<P><path>`` where P is the
  numeric ``targetPort`` of the Service port whose ``port`` equals ``service.port`` (the port
  itself when targetPort is absent or named), and the certificate is verified for the name
  ``<name>.<namespace>.svc``, as kube-apiserver does. So the manifests that work in a real cluster
  (Service port 443 -> targetPort 9443) work here against an operator run on the host. (A real
  kube-apiserver dials the Service's ClusterIP, or with ``--enable-aggregator-routing`` a ready
  address of its EndpointSlices; the Service's endpoints play no part here.)

Webhooks are never called for requests on the webhook configurations themselves (as in kube).
Configurations are compiled when they change (store listener), never read per request; a
request matching no webhook costs one pass over the compiled rules.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import errors
from .hooks import AdmissionRequest
from .patch import PatchError, json_patch
from .resources import ResourceInfo, ResourceRegistry
from .selectors import LabelSelector, SelectorError, label_selector_from_dict
from .store import ObjectStore
from .webhook_client import WebhookCallError, WebhookClient, ssl_context

__all__ = [
    "MutatingWebhooks",
    "ValidatingWebhooks",
    "Webhook",
    "WebhookAdmission",
    "WebhookOptions",
    "compile_webhooks",
]

log = logging.getLogger(__name__)

GROUP = "admissionregistration.k8s.io"
VALIDATING_KEY = (GROUP, "validatingwebhookconfigurations")
MUTATING_KEY = (GROUP, "mutatingwebhookconfigurations")
_NS_KEY = ("", "namespaces")
_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


@dataclass(kw_only=True)
class WebhookOptions:
    """Webhook dispatch options.

    - ``user_info``: the ``userInfo`` sent in every review (the embedded server does not
      authenticate; every caller is this administrator).
    - ``service_host``: where a ``clientConfig.service`` webhook is dialed.
    """

    user_info: Mapping[str, Any] = field(
        default_factory=lambda: {
            "username": "kubernetes-admin",
            "groups": ["system:masters", "system:authenticated"],
        }
    )
    service_host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class _Rule:
    """One ``RuleWithOperations``; ``resources`` holds (resource, subresource) pairs."""

    operations: frozenset[str]
    groups: frozenset[str]
    versions: frozenset[str]
    resources: tuple[tuple[str, str], ...]
    scope: str

    def matches(self, operation: str, info: ResourceInfo, version: str, subresource: str) -> bool:
        if "*" not in self.operations and operation not in self.operations:
            return False
        if "*" not in self.groups and info.group not in self.groups:
            return False
        if "*" not in self.versions and version not in self.versions:
            return False
        if self.scope == "Cluster" and info.namespaced:
            return False
        if self.scope == "Namespaced" and not info.namespaced:
            return False
        return any(
            (res in ("*", info.plural)) and (sub in ("*", subresource))
            for res, sub in self.resources
        )


@dataclass(frozen=True, slots=True)
class Webhook:
    """One compiled webhook of a configuration.

    ``error`` is set when the webhook cannot be called as configured (bad selector, caBundle
    or clientConfig): each matching request then fails per ``failure_policy``.
    """

    name: str
    config_name: str
    index: int
    mutating: bool
    rules: tuple[_Rule, ...]
    failure_policy: str
    match_policy: str
    namespace_selector: LabelSelector
    object_selector: LabelSelector
    side_effects: str
    timeout_seconds: float
    url: str | None
    service: Mapping[str, Any] | None
    ssl_context: ssl.SSLContext | None
    error: str | None = None

    @property
    def sort_key(self) -> tuple[str, int]:
        """Order of invocation: configuration name, then position in it."""
        return (self.config_name, self.index)


def _rule(raw: Mapping[str, Any]) -> _Rule:
    resources: list[tuple[str, str]] = []
    for text in raw.get("resources") or ():
        res, _, sub = str(text).partition("/")
        resources.append((res, sub))
    return _Rule(
        operations=frozenset(str(o) for o in raw.get("operations") or ()),
        groups=frozenset(str(g) for g in raw.get("apiGroups") or ()),
        versions=frozenset(str(v) for v in raw.get("apiVersions") or ()),
        resources=tuple(resources),
        scope=str(raw.get("scope") or "*"),
    )


def compile_webhooks(config: Mapping[str, Any], *, mutating: bool) -> list[Webhook]:
    """The webhooks of one configuration object, with v1 defaults applied."""
    config_name = str((config.get("metadata") or {}).get("name") or "")
    out: list[Webhook] = []
    for index, raw in enumerate(config.get("webhooks") or ()):
        if not isinstance(raw, Mapping):
            continue
        error: str | None = None
        name = str(raw.get("name") or "")
        client = raw.get("clientConfig") or {}
        url = client.get("url")
        service = client.get("service")
        ctx: ssl.SSLContext | None = None
        try:
            ctx = ssl_context(client.get("caBundle"))
        except (binascii.Error, ValueError, ssl.SSLError) as exc:
            error = f"invalid clientConfig.caBundle: {exc}"
        if url is None and service is None:
            error = "exactly one of clientConfig.url or clientConfig.service is required"
        elif url is not None and not str(url).startswith("https://"):
            error = f'clientConfig.url: "{url}": "https" is the only allowed URL scheme'
        versions = raw.get("admissionReviewVersions") or ()
        if "v1" not in versions:
            error = (
                "webhook does not accept v1 AdmissionReview: admissionReviewVersions "
                f"{list(versions)} must include v1"
            )
        ns_selector = obj_selector = LabelSelector()
        try:
            ns_selector = label_selector_from_dict(raw.get("namespaceSelector") or {})
            obj_selector = label_selector_from_dict(raw.get("objectSelector") or {})
        except SelectorError as exc:
            error = f"invalid selector: {exc}"
        out.append(
            Webhook(
                name=name,
                config_name=config_name,
                index=index,
                mutating=mutating,
                rules=tuple(_rule(r) for r in raw.get("rules") or () if isinstance(r, Mapping)),
                failure_policy=str(raw.get("failurePolicy") or "Fail"),
                match_policy=str(raw.get("matchPolicy") or "Equivalent"),
                namespace_selector=ns_selector,
                object_selector=obj_selector,
                side_effects=str(raw.get("sideEffects") or "Unknown"),
                timeout_seconds=float(raw.get("timeoutSeconds") or 10),
                url=str(url) if url is not None else None,
                service=service if isinstance(service, Mapping) else None,
                ssl_context=ctx,
                error=error,
            )
        )
    return out


class _CallFailed(Exception):
    """The webhook could not be called or answered nonsense (subject to failurePolicy)."""


class WebhookAdmission:
    """The webhook configurations' cache and the HTTPS caller behind the two admission plugins.

    Construct with the server's store, add ``mutating`` and ``validating`` to the server's
    ``admission`` list, ``start()`` once the store is loaded (compiles the stored configurations
    and registers the listener), ``await close()`` at shutdown (closes the HTTP session).

    Invariant: ``_configs[(key, name)]`` holds the compiled webhooks of every stored
    configuration; ``_mutating``/``_validating`` are their concatenations in invocation order.
    """

    def __init__(
        self,
        *,
        store: ObjectStore,
        registry: ResourceRegistry,
        options: WebhookOptions | None = None,
        client: WebhookClient | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.options = options or WebhookOptions()
        self.client = client or WebhookClient(store=store, service_host=self.options.service_host)
        self._configs: dict[tuple[tuple[str, str], str], list[Webhook]] = {}
        self.mutating_hooks: list[Webhook] = []
        self.validating_hooks: list[Webhook] = []
        self.mutating = MutatingWebhooks(self)
        self.validating = ValidatingWebhooks(self)
        self._listening = False
        #: Converts an object of a CRD with a conversion webhook to another version (the
        #: server's ``RestHandlers.converted``); None: relabel only (no conversion webhooks).
        self.convert: Callable[[ResourceInfo, dict[str, Any], str], Awaitable[dict[str, Any]]] | (
            None
        ) = None

    async def presented(self, matched: ResourceInfo, request: AdmissionRequest, obj: Any) -> Any:
        """``obj`` as a webhook matched through ``matched`` sees it: in that version, converted
        by the CRD's conversion webhook when ``matchPolicy: Equivalent`` matched another version
        than the request's (kube converts; a relabel would hide what conversion adds)."""
        if (
            isinstance(obj, dict)
            and self.convert is not None
            and matched.version != request.info.version
            and request.info.conversion is not None
        ):
            return await self.convert(request.info, obj, matched.version)
        return _present(matched, obj)

    def start(self) -> None:
        """Compile the stored configurations and follow their changes (idempotent)."""
        if self._listening:
            return
        self._listening = True
        self.store.add_listener(self._on_change)
        for key in (MUTATING_KEY, VALIDATING_KEY):
            for _, obj in self.store.iter_range(key, None):
                self._configs[(key, obj["metadata"]["name"])] = compile_webhooks(
                    obj, mutating=key == MUTATING_KEY
                )
        self._rebuild()

    async def close(self) -> None:
        """Stop following configuration changes; close the HTTP session."""
        if self._listening:
            self._listening = False
            self.store.remove_listener(self._on_change)
        await self.client.close()

    # -- cache -------------------------------------------------------------------------------

    def _on_change(
        self, event_type: str, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        key = info.storage_key
        if key != MUTATING_KEY and key != VALIDATING_KEY:
            return
        name = obj["metadata"]["name"]
        if event_type == "DELETED":
            self._configs.pop((key, name), None)
        else:
            self._configs[(key, name)] = compile_webhooks(obj, mutating=key == MUTATING_KEY)
        self._rebuild()

    def _rebuild(self) -> None:
        hooks = [h for hs in self._configs.values() for h in hs]
        self.mutating_hooks = sorted((h for h in hooks if h.mutating), key=lambda h: h.sort_key)
        self.validating_hooks = sorted(
            (h for h in hooks if not h.mutating), key=lambda h: h.sort_key
        )

    # -- matching ----------------------------------------------------------------------------

    def matching(
        self, hooks: Sequence[Webhook], request: AdmissionRequest
    ) -> list[tuple[Webhook, ResourceInfo]]:
        """The webhooks that must see ``request``, each with the version it matched under."""
        if not hooks or request.info.storage_key in (MUTATING_KEY, VALIDATING_KEY):
            return []
        out: list[tuple[Webhook, ResourceInfo]] = []
        ns_labels: Mapping[str, str] | None = None
        ns_looked_up = False
        for hook in hooks:
            matched = self._match_rules(hook, request)
            if matched is None:
                continue
            if not hook.object_selector.empty and not (
                _labels_match(hook.object_selector, request.obj)
                or _labels_match(hook.object_selector, request.old_obj)
            ):
                continue
            if not hook.namespace_selector.empty:
                if not ns_looked_up:
                    ns_labels, ns_looked_up = self._namespace_labels(request), True
                if ns_labels is not None and not hook.namespace_selector.matches(ns_labels):
                    continue
            out.append((hook, matched))
        return out

    def _match_rules(self, hook: Webhook, request: AdmissionRequest) -> ResourceInfo | None:
        info, op, sub = request.info, request.operation, request.subresource
        if any(r.matches(op, info, info.version, sub) for r in hook.rules):
            return info
        if hook.match_policy != "Equivalent":
            return None
        for other in self.registry.served_versions(info.storage_key):
            if other.version != info.version and any(
                r.matches(op, other, other.version, sub) for r in hook.rules
            ):
                return other
        return None

    def _namespace_labels(self, request: AdmissionRequest) -> Mapping[str, str] | None:
        """Labels the namespaceSelector sees; None: not subject to it (cluster-scoped)."""
        if request.info.storage_key == _NS_KEY:
            obj = request.obj if request.obj is not None else request.old_obj
            return ((obj or {}).get("metadata") or {}).get("labels") or {}
        if not request.info.namespaced:
            return None
        ns = self.store.get(_NS_KEY, "", request.namespace)
        return ((ns or {}).get("metadata") or {}).get("labels") or {}

    # -- calling -----------------------------------------------------------------------------

    def _review(
        self,
        hook: Webhook,
        matched: ResourceInfo,
        request: AdmissionRequest,
        obj: Any,
        old_obj: Any,
    ) -> dict[str, Any]:
        """The AdmissionReview; ``obj`` and ``old_obj`` already in ``matched``'s version."""
        info = request.info
        body: dict[str, Any] = {
            "uid": str(uuid.uuid4()),
            "kind": {"group": matched.group, "version": matched.version, "kind": matched.kind},
            "resource": {
                "group": matched.group,
                "version": matched.version,
                "resource": matched.plural,
            },
            "requestKind": {"group": info.group, "version": info.version, "kind": info.kind},
            "requestResource": {
                "group": info.group,
                "version": info.version,
                "resource": info.plural,
            },
            "name": request.name,
            "operation": request.operation,
            "userInfo": dict(self.options.user_info),
            "object": obj,
            "oldObject": old_obj,
            "dryRun": request.dry_run,
            "options": {
                "kind": _OPTIONS_KIND.get(request.operation, "CreateOptions"),
                "apiVersion": "meta.k8s.io/v1",
                **request.options,
            },
        }
        if request.namespace:
            body["namespace"] = request.namespace
        if request.subresource:
            body["subResource"] = request.subresource
            body["requestSubResource"] = request.subresource
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body}

    async def call(self, hook: Webhook, review: dict[str, Any]) -> dict[str, Any]:
        """POST ``review`` to ``hook``; return the validated ``response`` object.

        Raises ``_CallFailed`` (reason worded like kube-apiserver's) for anything that is not
        a well-formed AdmissionReview v1 answer to this request.
        """
        if hook.error is not None:
            raise _CallFailed(hook.error)
        try:
            url, server_name = self.client.endpoint(url=hook.url, service=hook.service)
            raw = await self.client.post(
                url=url,
                server_name=server_name,
                context=hook.ssl_context,
                body=orjson.dumps(review),
                timeout=hook.timeout_seconds,
            )
        except WebhookCallError as exc:
            text = str(exc)
            if text.startswith("service "):
                raise _CallFailed(text) from None
            raise _CallFailed(f"failed to call webhook: {text}") from None
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _CallFailed(f"received invalid webhook response: {exc}") from None
        if (
            not isinstance(answer, dict)
            or answer.get("apiVersion") != "admission.k8s.io/v1"
            or answer.get("kind") != "AdmissionReview"
        ):
            got = (
                answer
                if not isinstance(answer, dict)
                else (answer.get("apiVersion"), answer.get("kind"))
            )
            raise _CallFailed(
                "received invalid webhook response: expected webhook response of "
                f"admission.k8s.io/v1, Kind=AdmissionReview, got {got}"
            )
        response = answer.get("response")
        if not isinstance(response, dict):
            raise _CallFailed("received invalid webhook response: webhook response was absent")
        want = review["request"]["uid"]
        if response.get("uid") != want:
            raise _CallFailed(
                f'received invalid webhook response: expected response.uid="{want}", '
                f'got "{response.get("uid", "")}"'
            )
        return response

    async def run(
        self, hook: Webhook, matched: ResourceInfo, request: AdmissionRequest, obj: Any
    ) -> dict[str, Any] | None:
        """Call one webhook; return its response, or None when it was skipped (Ignore).

        Raises the refusal (``ApiError``) when the webhook denies or fails under ``Fail``.
        """
        if request.dry_run and hook.side_effects not in ("None", "NoneOnDryRun"):
            raise errors.bad_request(f'admission webhook "{hook.name}" does not support dry run')
        try:
            review = self._review(
                hook,
                matched,
                request,
                await self.presented(matched, request, obj),
                await self.presented(matched, request, request.old_obj),
            )
            response = await self.call(hook, review)
        except _CallFailed as exc:
            message = f'failed calling webhook "{hook.name}": {exc}'
            if hook.failure_policy == "Ignore":
                log.warning("%s (failurePolicy Ignore: skipped)", message)
                return None
            raise errors.internal(message) from None
        warnings = response.get("warnings")
        if isinstance(warnings, list):
            request.warnings.extend(str(w) for w in warnings if w)
        if not response.get("allowed"):
            raise denial(hook.name, response.get("status"))
        return response


def denial(webhook_name: str, status: Any) -> errors.ApiError:
    """kube's ToStatusErr: the refusal a denying webhook's ``response.status`` becomes."""
    result: Mapping[str, Any] = status if isinstance(status, Mapping) else {}
    code = result.get("code")
    code = code if isinstance(code, int) and code >= 400 else 400
    denied_by = f'admission webhook "{webhook_name}" denied the request'
    if result.get("message"):
        message = f"{denied_by}: {result['message']}"
    elif result.get("reason"):
        message = f"{denied_by}: {result['reason']}"
    else:
        message = f"{denied_by} without explanation"
    details = result.get("details")
    return errors.ApiError(
        code,
        str(result.get("reason") or ""),
        message,
        details=dict(details) if isinstance(details, Mapping) else None,
    )


def _labels_match(selector: LabelSelector, obj: Mapping[str, Any] | None) -> bool:
    if obj is None:
        return False
    return selector.matches((obj.get("metadata") or {}).get("labels") or {})


def _present(info: ResourceInfo, obj: Any) -> Any:
    if isinstance(obj, dict) and obj.get("apiVersion") != info.api_version:
        return {**obj, "apiVersion": info.api_version}
    return obj


class MutatingWebhooks:
    """Admission plugin: the mutating webhooks, in order, each applying its JSONPatch."""

    mutating = True

    def __init__(self, owner: WebhookAdmission) -> None:
        self._owner = owner

    def idle(self) -> bool:
        """No mutating webhook is registered (``AdmissionPlugin``)."""
        return not self._owner.mutating_hooks

    async def admit(self, request: AdmissionRequest) -> dict[str, Any] | None:
        owner = self._owner
        matches = owner.matching(owner.mutating_hooks, request)
        if not matches:
            return None
        obj = request.obj
        changed = False
        for hook, matched in matches:
            response = await owner.run(hook, matched, request, obj)
            if response is None or obj is None or not response.get("patch"):
                continue
            if response.get("patchType") != "JSONPatch":
                raise errors.internal(
                    f'admission webhook "{hook.name}" returned an unsupported patchType '
                    f"{response.get('patchType')!r}: only JSONPatch is supported"
                )
            try:
                ops = orjson.loads(base64.b64decode(response["patch"]))
                base = await owner.presented(matched, request, obj)
                patched = json_patch(base, ops)
            except (binascii.Error, ValueError, PatchError) as exc:
                raise errors.internal(
                    f'admission webhook "{hook.name}": invalid patch: {exc}'
                ) from None
            if not isinstance(patched, dict):
                raise errors.internal(
                    f'admission webhook "{hook.name}": patch result is not an object'
                )
            converted_back = (
                patched.get("apiVersion") != request.info.api_version
                and owner.convert is not None
                and request.info.conversion is not None
            )
            if converted_back and owner.convert is not None:  # to the request's version
                patched = await owner.convert(request.info, patched, request.info.version)
            patched["apiVersion"] = request.info.api_version
            patched["kind"] = request.info.kind
            if request.info.schema is not None:
                # kube defaults again after a webhook's patch (what it added gets its defaults)
                request.info.schema.apply_defaults(patched)
            obj, changed = patched, True
        return obj if changed else None


class ValidatingWebhooks:
    """Admission plugin: the validating webhooks, called concurrently; first refusal wins."""

    mutating = False

    def __init__(self, owner: WebhookAdmission) -> None:
        self._owner = owner

    def idle(self) -> bool:
        """No validating webhook is registered (``AdmissionPlugin``)."""
        return not self._owner.validating_hooks

    async def admit(self, request: AdmissionRequest) -> dict[str, Any] | None:
        owner = self._owner
        matches = owner.matching(owner.validating_hooks, request)
        if not matches:
            return None
        outcomes = await asyncio.gather(
            *(owner.run(hook, matched, request, request.obj) for hook, matched in matches),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return None
