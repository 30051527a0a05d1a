"""``JobSetApi``: every write the JobSet controller makes, over the ``ApiClient`` (tests pass a
fake). Deletions of Jobs and of the JobSet are Foreground, as JobSet's; a Job or Service that is
already gone or already there is not an error."""

from __future__ import annotations

from typing import Any, Protocol

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import SERVICES
from kubetrain.informers.transport import ApiStatusError

from .constants import JOBS, JOBSETS

__all__ = ["ClientJobSetApi", "JobSetApi"]

Obj = dict[str, Any]


class JobSetApi(Protocol):
    async def create_job(self, job: Obj) -> None: ...

    async def delete_job(self, namespace: str, name: str) -> None: ...

    async def update_job(self, job: Obj) -> Obj: ...

    async def update_job_status(self, job: Obj) -> Obj: ...

    async def create_service(self, service: Obj) -> None: ...

    async def update_status(self, js: Obj) -> Obj: ...

    async def delete_jobset(self, namespace: str, name: str) -> None: ...


class ClientJobSetApi:
    def __init__(self, client: ApiClient) -> None:
        self._client = client

    async def create_job(self, job: Obj) -> None:
        try:
            await self._client.create(JOBS, job, namespace=job["metadata"]["namespace"])
        except ApiStatusError as exc:
            if exc.code != 409 or exc.reason != "AlreadyExists":
                raise

    async def delete_job(self, namespace: str, name: str) -> None:
        await self._delete(JOBS, namespace, name)

    async def _delete(self, ref: Any, namespace: str, name: str) -> None:
        try:
            await self._client.delete(ref, namespace, name, propagation_policy="Foreground")
        except ApiStatusError as exc:
            if not exc.is_not_found:
                raise

    async def update_job(self, job: Obj) -> Obj:
        return await self._client.update(JOBS, job)

    async def update_job_status(self, job: Obj) -> Obj:
        return await self._client.update_status(JOBS, job)

    async def create_service(self, service: Obj) -> None:
        try:
            await self._client.create(SERVICES, service, namespace=service["metadata"]["namespace"])
        except ApiStatusError as exc:
            if exc.code != 409 or exc.reason != "AlreadyExists":
                raise

    async def update_status(self, js: Obj) -> Obj:
        return await self._client.update_status(JOBSETS, js)

    async def delete_jobset(self, namespace: str, name: str) -> None:
        await self._delete(JOBSETS, namespace, name)
