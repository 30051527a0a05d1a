"""The trainer status endpoint (``reconcilers/trainer/status_server.py``) over HTTP, with a fake
TokenReview and a fake API client: who is let in (403), what is decoded (422), what is written
(server-side apply of the status, field manager ``trainer-status``, force), the API server's
answers mapped (404, 422, 500), the size limit (413) and the rate limit (429)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kubetrain.base.clock import FakeClock
from kubetrain.engine.metrics_auth import ReviewFailed
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.trainer.plugins.trainjob_status import token_audience
from kubetrain.reconcilers.trainer.status_server import (
    ROUTE,
    StatusServerOptions,
    TrainerStatusServer,
)

PATH = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/team/trainjobs/mnist/status"
GOOD = {"Authorization": "Bearer good"}
STATUS = {
    "progressPercentage": 42,
    "estimatedRemainingSeconds": 120,
    "metrics": [{"name": "loss", "value": "0.25"}, {"name": "accuracy", "value": "0.9"}],
    "lastUpdatedTime": "2026-12-05T08:00:00.123456+00:00",
}


class FakeReviews:
    """Tokens -> (service account user, the audience it was minted for)."""

    def __init__(self) -> None:
        self.tokens = {
            "good": ("system:serviceaccount:team:default", token_audience("team", "mnist")),
            "other-ns": (
                "system:serviceaccount:elsewhere:default",
                token_audience("team", "mnist"),
            ),
            "other-job": ("system:serviceaccount:team:default", token_audience("team", "other")),
            "admin": ("admin", token_audience("team", "mnist")),
        }
        self.fail = False
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    async def authenticate(
        self, token: str, audiences: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        self.asked.append((token, tuple(audiences)))
        if self.fail:
            raise ReviewFailed("API server down")
        found = self.tokens.get(token)
        if found is None or found[1] not in audiences:
            return None
        return {"username": found[0]}


class FakeWriter:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []
        self.errors: dict[str, ApiStatusError] = {}

    async def patch(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> dict[str, Any]:
        if name in self.errors:
            raise self.errors[name]
        self.patches.append(
            {
                "resource": ref.plural,
                "namespace": namespace,
                "name": name,
                "patch": patch,
                "patch_type": patch_type,
                "subresource": subresource,
                "field_manager": field_manager,
                "force": force,
            }
        )
        return dict(patch)


class Harness:
    def __init__(self, client: TestClient, server: TrainerStatusServer) -> None:
        self.client = client
        self.server = server
        self.reviews: FakeReviews = server.authenticator  # type: ignore[assignment]
        self.writer: FakeWriter = server.client  # type: ignore[assignment]

    async def post(
        self,
        body: Any = None,
        *,
        headers: dict[str, str] | None = GOOD,
        path: str = PATH,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else orjson.dumps(body)
        resp = await self.client.post(path, data=data, headers=headers or {})
        text = await resp.read()
        return resp.status, orjson.loads(text) if text.startswith(b"{") else text


async def harness(options: StatusServerOptions | None = None) -> AsyncIterator[Harness]:
    server = TrainerStatusServer(FakeWriter(), FakeReviews(), options, clock=FakeClock())
    app = web.Application()
    app.router.add_post(ROUTE, server.handle)
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, server)


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async for x in harness():
        yield x


async def test_a_valid_update_is_applied_to_the_status(h: Harness) -> None:
    code, body = await h.post({"trainerStatus": STATUS, "ignored": True})
    assert code == 200
    written = {**STATUS, "lastUpdatedTime": "2026-12-05T08:00:00Z"}
    assert body == {"trainerStatus": written}
    (patch,) = h.writer.patches
    assert patch == {
        "resource": "trainjobs",
        "namespace": "team",
        "name": "mnist",
        "patch": {
            "apiVersion": "trainer.kubeflow.org/v1alpha1",
            "kind": "TrainJob",
            "metadata": {"name": "mnist", "namespace": "team"},
            "status": {"trainerStatus": written},
        },
        "patch_type": "apply",
        "subresource": "status",
        "field_manager": "trainer-status",
        "force": True,
    }
    assert h.reviews.asked == [("good", (token_audience("team", "mnist"),))]


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"Authorization": "Basic good"},
        {"Authorization": "Bearer unknown"},
        {"Authorization": "Bearer other-job"},  # minted for another TrainJob's audience
        {"Authorization": "Bearer other-ns"},  # a service account of another namespace
        {"Authorization": "Bearer admin"},  # not a service account
    ],
    ids=["none", "not-bearer", "unknown", "other-audience", "other-namespace", "not-sa"],
)
async def test_who_may_not_write_gets_403(h: Harness, headers: dict[str, str] | None) -> None:
    code, body = await h.post({"trainerStatus": STATUS}, headers=headers)
    assert code == 403
    assert body == {
        "metadata": {},
        "status": "Failure",
        "message": "Forbidden",
        "reason": "Forbidden",
        "code": 403,
    }
    assert h.writer.patches == []


async def test_a_failed_review_is_500(h: Harness) -> None:
    h.reviews.fail = True
    code, body = await h.post({"trainerStatus": STATUS})
    assert (code, body["reason"]) == (500, "InternalError")
    assert h.writer.patches == []


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        b'{"trainerStatus": "half"}',
        b'{"trainerStatus": {"progressPercentage": 42.5, "lastUpdatedTime": "2026-01-01T00:00:00Z"}}',
        b'{"trainerStatus": {"progressPercentage": "42", "lastUpdatedTime": "2026-01-01T00:00:00Z"}}',
        b'{"trainerStatus": {"estimatedRemainingSeconds": 4294967296, "lastUpdatedTime": "2026-01-01T00:00:00Z"}}',
        b'{"trainerStatus": {"metrics": [{"name": "loss", "value": 0.1}], "lastUpdatedTime": "2026-01-01T00:00:00Z"}}',
        b'{"trainerStatus": {"metrics": {"loss": "0.1"}, "lastUpdatedTime": "2026-01-01T00:00:00Z"}}',
        b'{"trainerStatus": {"progressPercentage": 1, "lastUpdatedTime": "yesterday"}}',
        b'{"trainerStatus": {"progressPercentage": 1, "lastUpdatedTime": "2026-01-01"}}',
    ],
)
async def test_a_body_that_does_not_decode_is_422(h: Harness, raw: bytes) -> None:
    code, body = await h.post(raw=raw)
    assert (code, body["reason"], body["message"]) == (422, "Invalid", "Invalid payload")
    assert h.writer.patches == []


async def test_a_status_without_its_time_is_422_with_the_crd_message(h: Harness) -> None:
    code, body = await h.post({"trainerStatus": {"progressPercentage": 3}})
    assert code == 422
    assert body["message"] == "lastUpdatedTime is required when trainerStatus is present"
    assert h.writer.patches == []


@pytest.mark.parametrize("body", [{}, {"trainerStatus": None}, None])
async def test_no_trainer_status_is_200_and_nothing_is_written(h: Harness, body: Any) -> None:
    code, answer = await h.post(body)
    assert (code, answer) == (200, {})
    assert h.writer.patches == []


async def test_a_missing_trainjob_is_404(h: Harness) -> None:
    h.writer.errors["mnist"] = ApiStatusError(404, reason="NotFound", message="not found")
    code, body = await h.post({"trainerStatus": STATUS})
    assert (code, body["message"]) == (404, "Train job not found")


async def test_the_api_servers_validation_is_422_with_its_message(h: Harness) -> None:
    message = (
        'TrainJob.trainer.kubeflow.org "mnist" is invalid: status.trainerStatus.progressPercentage'
    )
    h.writer.errors["mnist"] = ApiStatusError(422, reason="Invalid", message=message)
    code, body = await h.post({"trainerStatus": {**STATUS, "progressPercentage": 101}})
    assert (code, body["message"]) == (422, message)


async def test_any_other_write_failure_is_500(h: Harness) -> None:
    h.writer.errors["mnist"] = ApiStatusError(503, reason="ServiceUnavailable", message="busy")
    code, body = await h.post({"trainerStatus": STATUS})
    assert (code, body["message"]) == (500, "Internal error")


async def test_an_unknown_path_is_404_and_another_method_405(h: Harness) -> None:
    code, _ = await h.post({"trainerStatus": STATUS}, path=PATH.replace("/status", "/scale"))
    assert code == 404
    resp = await h.client.get(PATH, headers=GOOD)
    assert resp.status == 405


async def test_a_body_over_64_kib_is_413_before_anything_else(h: Harness) -> None:
    big = {"trainerStatus": {**STATUS, "metrics": [{"name": "m", "value": "x" * 70_000}]}}
    code, body = await h.post(big)
    assert (code, body["reason"]) == (413, "RequestEntityTooLarge")
    assert h.reviews.asked == [] and h.writer.patches == []


async def test_a_chunked_body_over_the_limit_is_413(h: Harness) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"trainerStatus": {"metrics": [{"name": "m", "value": "'
        for _ in range(10):
            yield b"x" * 10_000
        yield b'"}]}}'

    resp = await h.client.post(PATH, data=chunks(), headers=GOOD)
    assert resp.status == 413
    assert h.writer.patches == []


async def test_writes_past_the_burst_are_429_until_tokens_refill() -> None:
    async for h in harness(StatusServerOptions(qps=5, burst=10, max_wait=0)):
        codes = [(await h.post({"trainerStatus": STATUS}))[0] for _ in range(12)]
        assert codes == [200] * 10 + [429, 429]
        resp = await h.client.post(PATH, data=orjson.dumps({"trainerStatus": STATUS}), headers=GOOD)
        assert resp.status == 429 and resp.headers["Retry-After"] == "1"
        assert len(h.writer.patches) == 10
        clock = h.server.clock
        assert isinstance(clock, FakeClock)
        clock.advance(0.2)  # qps 5: one token back
        assert (await h.post({"trainerStatus": STATUS}))[0] == 200
        assert (await h.post({"trainerStatus": STATUS}))[0] == 429
        # refused requests were authenticated first: a flood without a token costs no write
        code, _ = await h.post({"trainerStatus": STATUS}, headers=None)
        assert code == 403
