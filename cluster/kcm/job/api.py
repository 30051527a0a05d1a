"""``JobApi`` over the ``ApiClient``: the Job controller's writes, as kube's ``PodControl`` and
status updates send them."""

from __future__ import annotations

from typing import Any

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import PODS
from kubetrain.informers.transport import ApiStatusError

from .constants import JOBS, TRACKING_FINALIZER

__all__ = ["ClientJobApi"]

Obj = dict[str, Any]
_REMOVE_FINALIZER = {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}


class ClientJobApi:
    def __init__(self, client: ApiClient) -> None:
        self._client = client

    async def create_pod(self, namespace: str, pod: Obj) -> Obj:
        return await self._client.create(PODS, pod, namespace=namespace)

    async def delete_pod(self, namespace: str, name: str) -> bool:
        try:
            await self._client.delete(PODS, namespace, name)
        except ApiStatusError as exc:
            if exc.is_not_found:
                return False
            raise
        return True

    async def remove_tracking_finalizer(self, namespace: str, name: str) -> None:
        try:
            await self._client.patch(
                PODS, namespace, name, _REMOVE_FINALIZER, patch_type="strategic"
            )
        except ApiStatusError as exc:
            if not exc.is_not_found:
                raise

    async def update_job_status(self, job: Obj) -> Obj:
        return await self._client.update_status(JOBS, job)
