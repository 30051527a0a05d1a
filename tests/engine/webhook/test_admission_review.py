"""admission: the AdmissionReview v1 a handler's decision becomes (allowed, denied, patched,
errored)."""

from __future__ import annotations

import base64

import orjson

from kubetrain.engine.webhook.admission import (
    ADMISSION_API_VERSION,
    AdmissionResponse,
    allowed,
    denied,
    errored,
    patched,
)


def test_allowed_review() -> None:
    review = allowed().review("u-1")
    assert review == {
        "apiVersion": ADMISSION_API_VERSION,
        "kind": "AdmissionReview",
        "response": {"uid": "u-1", "allowed": True},
    }
    assert ADMISSION_API_VERSION == "admission.k8s.io/v1"


def test_allowed_with_warnings() -> None:
    response = allowed(warnings=["a", "b"]).review("u")["response"]
    assert response == {"uid": "u", "allowed": True, "warnings": ["a", "b"]}


def test_patched_is_base64_json_patch() -> None:
    ops = [{"op": "add", "path": "/metadata/labels/x", "value": "1"}]
    response = patched(ops, warnings=["w"]).review("u")["response"]
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert orjson.loads(base64.b64decode(response["patch"])) == ops
    assert response["warnings"] == ["w"]


def test_empty_patch_changes_nothing() -> None:
    decision = patched([])
    assert decision.patch is None
    response = decision.review("u")["response"]
    assert "patch" not in response and "patchType" not in response


def test_denied_status() -> None:
    response = denied("no way", details={"name": "x"}, warnings=["careful"]).review("u")["response"]
    assert response["allowed"] is False
    assert response["status"] == {
        "metadata": {},
        "status": "Failure",
        "code": 403,
        "reason": "Forbidden",
        "message": "no way",
        "details": {"name": "x"},
    }
    assert response["warnings"] == ["careful"]
    assert "patch" not in response


def test_denied_custom_code_and_reason() -> None:
    status = denied("bad", code=422, reason="Invalid").status
    assert status is not None
    assert status["code"] == 422 and status["reason"] == "Invalid" and "details" not in status


def test_errored_is_an_internal_error_refusal() -> None:
    decision = errored("boom")
    assert decision.allowed is False
    assert decision.status is not None
    assert decision.status["code"] == 500
    assert decision.status["reason"] == "InternalError"
    assert decision.status["message"] == "boom"
    assert errored("x", code=503).status["code"] == 503  # type: ignore[index]


def test_review_copies_status() -> None:
    status = {"code": 400, "message": "m"}
    decision = AdmissionResponse(allowed=False, status=status)
    review = decision.review("u")
    review["response"]["status"]["code"] = 999
    assert status["code"] == 400
