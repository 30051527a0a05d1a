"""Webhook configurations are defaulted and validated as kube-apiserver v1.36.3 does, field for
field and word for word: the expected messages below are what a real kube-apiserver answered
(every test here also runs under ``--apiserver=real``). The conformance tier found the embedded
server storing configurations kube refuses (``sideEffects: Unknown``, a missing
``admissionReviewVersions``, ...), so a manifest could work here and break on a real cluster."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from apiserver_helpers import Raw

pytestmark = pytest.mark.http_api

VWC = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
DRY_RUN = {"dryRun": "All"}
RULE = {
    "operations": ["CREATE"],
    "apiGroups": [""],
    "apiVersions": ["v1"],
    "resources": ["configmaps"],
}


def hook(**changes: Any) -> dict[str, Any]:
    """A valid v1 webhook with ``changes`` applied (a value of None removes the field)."""
    webhook: dict[str, Any] = {
        "name": "a.example.com",
        "clientConfig": {"url": "https://127.0.0.1:9443/x"},
        "rules": [dict(RULE)],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    for key, value in changes.items():
        if value is None:
            webhook.pop(key, None)
        else:
            webhook[key] = value
    return webhook


def rule(**changes: Any) -> dict[str, Any]:
    return {**RULE, **changes}


def configuration(kind: str, name: str, webhooks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": copy.deepcopy(webhooks),
    }


V, M = "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"
SVC = {"namespace": "d", "name": "s"}

#: (name, kind, webhooks, what follows `<Kind>.admissionregistration.k8s.io "<name>" is invalid: `)
INVALID: list[tuple[str, str, list[dict[str, Any]], str]] = [
    (
        "side-unknown",
        V,
        [hook(sideEffects="Unknown")],
        'webhooks[0].sideEffects: Unsupported value: "Unknown": supported values: "None", '
        '"NoneOnDryRun"',
    ),
    (
        "side-missing",
        V,
        [hook(sideEffects=None)],
        "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
    ),
    (
        "arv-missing",
        V,
        [hook(admissionReviewVersions=None)],
        "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
    ),
    (
        "arv-unknown",
        V,
        [hook(admissionReviewVersions=["v2"])],
        'webhooks[0].admissionReviewVersions: Invalid value: ["v2"]: must include at least one '
        "of v1, v1beta1",
    ),
    (
        "arv-dup",
        V,
        [hook(admissionReviewVersions=["v1", "v1"])],
        'webhooks[0].admissionReviewVersions[1]: Invalid value: "v1": duplicate version',
    ),
    ("name-missing", V, [hook(name="")], "webhooks[0].name: Required value"),
    (
        "name-two-seg",
        V,
        [hook(name="a.example")],
        'webhooks[0].name: Invalid value: "a.example": should be a domain with at least three '
        "segments separated by dots",
    ),
    ("name-dup", V, [hook(), hook()], 'webhooks[1].name: Duplicate value: "a.example.com"'),
    (
        "cc-none",
        V,
        [hook(clientConfig={})],
        "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
    ),
    (
        "url-http",
        V,
        [hook(clientConfig={"url": "http://127.0.0.1:9443/x"})],
        "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL "
        "scheme; desired format: https://host[/path]",
    ),
    (
        "url-query",
        V,
        [hook(clientConfig={"url": "https://h/x?a=b"})],
        'webhooks[0].clientConfig.url: Invalid value: "a=b": query parameters are not permitted '
        "in the URL",
    ),
    (
        "url-user",
        V,
        [hook(clientConfig={"url": "https://u:p@h/x"})],
        'webhooks[0].clientConfig.url: Invalid value: "u:p": user information is not permitted '
        "in the URL",
    ),
    # kube v1.36.3 passes the service's name and namespace swapped: each missing one is
    # reported under the other's field
    (
        "svc-nons",
        V,
        [hook(clientConfig={"service": {"name": "s"}})],
        "webhooks[0].clientConfig.service.name: Required value",
    ),
    (
        "svc-noname",
        V,
        [hook(clientConfig={"service": {"namespace": "d"}})],
        "webhooks[0].clientConfig.service.namespace: Required value",
    ),
    (
        "svc-port",
        V,
        [hook(clientConfig={"service": {**SVC, "port": 70000}})],
        "webhooks[0].clientConfig.service.port: Invalid value: 70000: port is not valid: must be "
        "between 1 and 65535, inclusive",
    ),
    (
        "svc-path-noslash",
        V,
        [hook(clientConfig={"service": {**SVC, "path": "x"}})],
        "[webhooks[0].clientConfig.service.path: Invalid value: \"x\": must start with a '/', "
        'webhooks[0].clientConfig.service.path: Invalid value: "x": segment[0] may not be empty]',
    ),
    (
        "failure-bad",
        V,
        [hook(failurePolicy="Sometimes")],
        'webhooks[0].failurePolicy: Unsupported value: "Sometimes": supported values: "Fail", '
        '"Ignore"',
    ),
    (
        "match-bad",
        V,
        [hook(matchPolicy="Fuzzy")],
        'webhooks[0].matchPolicy: Unsupported value: "Fuzzy": supported values: "Equivalent", '
        '"Exact"',
    ),
    (
        "timeout-31",
        V,
        [hook(timeoutSeconds=31)],
        "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and "
        "30 seconds",
    ),
    (
        "reinv-bad",
        M,
        [hook(reinvocationPolicy="Always")],
        'webhooks[0].reinvocationPolicy: Unsupported value: "Always": supported values: '
        '"IfNeeded", "Never"',
    ),
    (
        "rule-ops-star-mix",
        V,
        [hook(rules=[rule(operations=["CREATE", "*"])])],
        'webhooks[0].rules[0].operations: Invalid value: ["CREATE","*"]: if \'*\' is present, '
        "must not specify other operations",
    ),
    (
        "rule-ops-bad",
        V,
        [hook(rules=[rule(operations=["GET"])])],
        'webhooks[0].rules[0].operations[0]: Unsupported value: "GET": supported values: "*", '
        '"CONNECT", "CREATE", "DELETE", "UPDATE"',
    ),
    (
        "rule-res-sub-star",
        V,
        [hook(rules=[rule(resources=["pods/*", "pods/status"])])],
        "webhooks[0].rules[0].resources[1]: Invalid value: \"pods/status\": if 'pods/*' is "
        "present, must not specify pods/status",
    ),
    (
        "rule-res-star-mix",
        V,
        [hook(rules=[rule(resources=["*", "pods"])])],
        'webhooks[0].rules[0].resources: Invalid value: ["*","pods"]: if \'*\' is present, must '
        "not specify other resources without subresources",
    ),
    (
        "rule-res-empty",
        V,
        [hook(rules=[rule(resources=[""])])],
        "webhooks[0].rules[0].resources[0]: Required value",
    ),
    (
        "rule-scope-bad",
        V,
        [hook(rules=[rule(scope="Global")])],
        'webhooks[0].rules[0].scope: Unsupported value: "Global": supported values: "*", '
        '"Cluster", "Namespaced"',
    ),
    (
        "sel-bad-op",
        V,
        [hook(namespaceSelector={"matchExpressions": [{"key": "a", "operator": "Like"}]})],
        'webhooks[0].namespaceSelector.matchExpressions[0].operator: Invalid value: "Like": '
        "not a valid selector operator",
    ),
    (
        "sel-in-novalues",
        V,
        [hook(objectSelector={"matchExpressions": [{"key": "a", "operator": "In"}]})],
        "webhooks[0].objectSelector.matchExpressions[0].values: Required value: must be "
        "specified when `operator` is 'In' or 'NotIn'",
    ),
    (
        "sel-exists-values",
        V,
        [
            hook(
                objectSelector={
                    "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]
                }
            )
        ],
        "webhooks[0].objectSelector.matchExpressions[0].values: Forbidden: may not be specified "
        "when `operator` is 'Exists' or 'DoesNotExist'",
    ),
    (
        "multi",
        V,
        [hook(sideEffects="Unknown", timeoutSeconds=40, failurePolicy="X")],
        '[webhooks[0].failurePolicy: Unsupported value: "X": supported values: "Fail", "Ignore", '
        'webhooks[0].sideEffects: Unsupported value: "Unknown": supported values: "None", '
        '"NoneOnDryRun", webhooks[0].timeoutSeconds: Invalid value: 40: the timeout value must be '
        "between 1 and 30 seconds]",
    ),
]


async def test_invalid_configurations_are_refused_with_kubes_words(raw: Raw) -> None:
    wrong: list[tuple[str, int, str]] = []
    for name, kind, webhooks, expected in INVALID:
        path = VWC if kind == V else MWC
        status, body, _ = await raw.post(path, configuration(kind, name, webhooks), params=DRY_RUN)
        message = f'{kind}.admissionregistration.k8s.io "{name}" is invalid: {expected}'
        if status != 422 or body.get("message") != message:
            wrong.append((name, status, body.get("message", "")))
        elif body["reason"] != "Invalid" or not body["details"]["causes"]:
            wrong.append((name, status, f"details: {body.get('details')}"))
    assert wrong == []


async def test_the_causes_name_each_field(raw: Raw) -> None:
    webhooks = [hook(sideEffects="Unknown", timeoutSeconds=40, failurePolicy="X")]
    status, body, _ = await raw.post(VWC, configuration(V, "multi", webhooks), params=DRY_RUN)
    assert status == 422
    assert [(c["reason"], c["field"]) for c in body["details"]["causes"]] == [
        ("FieldValueNotSupported", "webhooks[0].failurePolicy"),
        ("FieldValueNotSupported", "webhooks[0].sideEffects"),
        ("FieldValueInvalid", "webhooks[0].timeoutSeconds"),
    ]
    assert body["details"]["kind"] == V
    assert body["details"]["group"] == "admissionregistration.k8s.io"


@pytest.mark.parametrize(
    "webhooks",
    [
        [hook(clientConfig={"service": {**SVC, "path": "/"}})],
        [hook(clientConfig={"service": {**SVC, "path": "/validate-x/"}})],
        [hook(rules=[rule(resources=["*", "pods/status"])])],
        [hook(rules=[rule(resources=["*/status", "*/scale", "pods/*", "deployments/*"])])],
        [hook(rules=[rule(operations=["CONNECT", "DELETE", "UPDATE"])])],
        [hook(admissionReviewVersions=["v2", "v1beta1"])],
        [hook(name="a" * 64 + ".example.com")],
        [hook(), hook(name="b.example.com", timeoutSeconds=30, failurePolicy="Ignore")],
    ],
    ids=[
        "path-root",
        "path-segments",
        "star-and-subresource",
        "wildcards",
        "ops",
        "arv",
        "long",
        "two",
    ],
)
async def test_valid_configurations_are_accepted(raw: Raw, webhooks: list[dict[str, Any]]) -> None:
    status, body, _ = await raw.post(VWC, configuration(V, "ok", webhooks), params=DRY_RUN)
    assert status == 201, body.get("message")


async def test_v1_defaults_are_filled_in_on_create_and_update(raw: Raw) -> None:
    service = {"namespace": "d", "name": "s", "path": "/v"}
    webhooks = [hook(), hook(name="b.example.com", clientConfig={"service": service})]
    status, created, _ = await raw.post(MWC, configuration(M, "defaults", webhooks))
    assert status == 201, created
    first, second = created["webhooks"]
    assert first == {
        **hook(),
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "namespaceSelector": {},
        "objectSelector": {},
        "timeoutSeconds": 10,
        "reinvocationPolicy": "Never",
        "rules": [{**RULE, "scope": "*"}],
    }
    assert second["clientConfig"] == {"service": {**service, "port": 443}}
    # a PUT without the defaulted fields gets them again; one that breaks a rule is refused
    replaced = configuration(M, "defaults", [hook(failurePolicy="Ignore")])
    replaced["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    status, updated, _ = await raw.put(f"{MWC}/defaults", replaced)
    assert status == 200, updated
    (only,) = updated["webhooks"]
    assert only["failurePolicy"] == "Ignore" and only["timeoutSeconds"] == 10
    assert only["reinvocationPolicy"] == "Never" and only["rules"][0]["scope"] == "*"
    broken = configuration(M, "defaults", [hook(timeoutSeconds=0)])
    broken["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]
    status, refused, _ = await raw.put(f"{MWC}/defaults", broken)
    assert status == 422
    assert refused["message"] == (
        'MutatingWebhookConfiguration.admissionregistration.k8s.io "defaults" is invalid: '
        "webhooks[0].timeoutSeconds: Invalid value: 0: the timeout value must be between 1 and "
        "30 seconds"
    )
    status, patched, _ = await raw.patch(
        f"{MWC}/defaults",
        [{"op": "replace", "path": "/webhooks/0/sideEffects", "value": "Some"}],
        content_type="application/json-patch+json",
    )
    assert status == 422 and "webhooks[0].sideEffects: Unsupported value" in patched["message"]
