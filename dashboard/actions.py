"""What a user does from the page: submit, suspend, resume, delete, with the user's own client.

The dashboard acts with the credentials it was started with (the user's kubeconfig), never the
operator's: the API server's authorization and the operator's admission webhooks judge each
action exactly as they would judge ``kubectl``. An API error keeps its status code and comes back
as ``{message, reason, causes: [{field, message}]}``, the webhook's messages with their field
paths, so the page can show them next to what was submitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from kubetrain.engine.client import ApiClient, ApiConnectionError
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.jobview import KINDS, suspend_patch

from .index import Row, make_row

__all__ = ["ActionError", "Actions", "parse_job", "resource_for"]

#: The largest body ``submit`` reads.
MAX_BODY = 1 << 20
MPIJOB_V2BETA1 = ResourceRef("kubeflow.org", "v2beta1", "mpijobs", True, "MPIJob")


class ActionError(Exception):
    """An action that failed: the HTTP status and the contract's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        reason: str = "",
        causes: tuple[dict[str, str], ...] = (),
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.reason = reason
        self.causes = causes

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "reason": self.reason, "causes": list(self.causes)}

    @classmethod
    def from_api(cls, e: ApiStatusError) -> ActionError:
        details = (e.status or {}).get("details") or {}
        causes = tuple(
            {"field": str(c.get("field") or ""), "message": str(c.get("message") or "")}
            for c in details.get("causes") or ()
            if isinstance(c, dict)
        )
        status = e.code if 400 <= e.code <= 599 else 502
        return cls(status, e.message or str(e), e.reason, causes)


def resource_for(api_version: str, kind: str) -> ResourceRef | None:
    """The resource a job of ``apiVersion``/``kind`` is created as; None for no job kind."""
    ref = KINDS.get(kind)
    if ref is None:
        return None
    if kind == "MPIJob" and api_version == "kubeflow.org/v2beta1":
        return MPIJOB_V2BETA1
    return ref if api_version == f"{ref.group}/{ref.version}" else None


def parse_job(body: bytes) -> dict[str, Any]:
    """The one job in ``body`` (JSON or YAML); ``ActionError`` 400 naming what is wrong."""
    if len(body) > MAX_BODY:
        raise ActionError(413, f"the body is {len(body)} bytes; at most {MAX_BODY} are read")
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        raise ActionError(400, "the body is empty: send one job as YAML or JSON")
    try:
        if text.startswith("{"):
            docs = [orjson.loads(text)]
        else:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except (orjson.JSONDecodeError, yaml.YAMLError) as e:
        raise ActionError(400, f"the body is neither JSON nor YAML: {e}") from e
    if len(docs) != 1:
        raise ActionError(400, f"the body holds {len(docs)} objects; send exactly one job")
    job = docs[0]
    if not isinstance(job, dict):
        raise ActionError(400, f"the body is a {type(job).__name__}, not an object")
    return job


@dataclass(frozen=True, slots=True)
class Submitted:
    kind: str
    namespace: str
    name: str


class Actions:
    """The dashboard's writes, through ``client`` (the user's)."""

    def __init__(self, client: ApiClient, *, default_namespace: str = "default") -> None:
        self._client = client
        self._default_namespace = default_namespace

    async def submit(self, body: bytes) -> Submitted:
        """Create the job in ``body``; its namespace, or the default one."""
        job = parse_job(body)
        api_version = str(job.get("apiVersion") or "")
        kind = str(job.get("kind") or "")
        ref = resource_for(api_version, kind)
        if ref is None:
            known = ", ".join(f"{r.group}/{r.version} {k}" for k, r in KINDS.items())
            raise ActionError(
                400,
                f"apiVersion {api_version!r} kind {kind!r} is no training job; one of {known}",
                "BadRequest",
            )
        meta = job.get("metadata")
        if not isinstance(meta, dict):
            raise ActionError(400, "metadata must be an object with a name", "BadRequest")
        namespace = str(meta.get("namespace") or self._default_namespace)
        job = {**job, "metadata": {**meta, "namespace": namespace}}
        created = await self._call(self._client.create(ref, job))
        created_meta = created.get("metadata") or {}
        return Submitted(kind, namespace, str(created_meta.get("name") or meta.get("name") or ""))

    async def set_suspended(self, kind: str, namespace: str, name: str, suspend: bool) -> Row:
        """Suspend or resume the job; its row as the API answered."""
        patch = suspend_patch(kind, suspend)
        job = await self._call(self._client.patch(KINDS[kind], namespace, name, patch))
        return make_row(kind, job)

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        await self._call(self._client.delete(KINDS[kind], namespace, name))

    @staticmethod
    async def _call(awaitable: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await awaitable
        except ApiStatusError as e:
            raise ActionError.from_api(e) from e
        except (ApiConnectionError, TimeoutError) as e:
            raise ActionError(
                502, f"the API server did not answer: {e}", "ServiceUnavailable"
            ) from e
        return result
