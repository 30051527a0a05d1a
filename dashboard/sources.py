"""The dashboard's informers: one list and one watch per resource, however many pages are open.

One ``SharedInformerFactory`` over the user's client watches the seven job kinds (a kind the
server does not serve is skipped: discovery says so before any informer starts), pods trimmed to
what a detail shows and filed under their job, and core/v1 events filed under the object they are
about. Their handlers keep the ``JobIndex`` and tell the ``LiveHub`` which followed jobs changed;
every page then reads these caches. Finished jobs are cached compacted (``compact.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kubetrain.base.objects import Obj
from kubetrain.engine.client import ApiClient
from kubetrain.engine.discovery import missing_resources
from kubetrain.informers.event_handlers import EventHandler
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.informer import SharedInformer
from kubetrain.informers.resource import EVENTS, PODS
from kubetrain.informers.tombstone import DeletedFinalStateUnknown
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.jobview import KINDS, TRAINJOB

from .compact import compact_finished_job
from .events import EVENT_INDEX, event_index, trim_event
from .index import JobIndex
from .pods import JOB_INDEX, job_key, pod_job_index, pod_job_key, trim_pod

__all__ = ["Sources", "served_kinds"]

log = logging.getLogger(__name__)

Touch = Callable[[str], None]


async def served_kinds(client: ApiClient) -> list[str]:
    """The job kinds the server serves, in ``KINDS`` order; every kind when discovery itself is
    refused (the informers then say what is missing)."""
    try:
        missing = {ref.kind for ref in await missing_resources(client, KINDS.values())}
    except (ApiStatusError, ConnectionError) as e:
        log.warning("dashboard: discovery failed (%s); watching every job kind", e)
        return list(KINDS)
    for kind in KINDS:
        if kind in missing:
            log.info("dashboard: the server does not serve %s; not shown", kind)
    return [kind for kind in KINDS if kind not in missing]


def _obj(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


class _JobHandler(EventHandler):
    def __init__(self, kind: str, index: JobIndex, touch: Touch) -> None:
        self._kind = kind
        self._index = index
        self._touch = touch

    def _key(self, obj: Obj) -> str:
        meta = obj.get("metadata") or {}
        return job_key(self._kind, meta.get("namespace", ""), meta.get("name", ""))

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self._index.upsert(self._kind, obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if old is new:
            return
        self._index.upsert(self._kind, new)
        self._touch(self._key(new))

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        meta = _obj(obj).get("metadata") or {}
        self._index.delete(self._kind, meta.get("namespace", ""), meta.get("name", ""))


class _PodHandler(EventHandler):
    def __init__(self, index: JobIndex, touch: Touch) -> None:
        self._index = index
        self._touch = touch

    def _touch_pod(self, pod: Obj) -> None:
        key = pod_job_key(pod)
        if key is not None:
            self._touch(key)

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self._index.pod_changed(None, obj)
        if not is_in_initial_list:
            self._touch_pod(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if old is new:
            return
        self._index.pod_changed(old, new)
        self._touch_pod(new)
        if pod_job_key(old) != pod_job_key(new):
            self._touch_pod(old)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = _obj(obj)
        self._index.pod_changed(pod, None)
        self._touch_pod(pod)


class _EventHandler(EventHandler):
    """Touches the job an event is about (directly, through its pod, or its JobSet)."""

    def __init__(self, pods: SharedInformer, touch: Touch) -> None:
        self._pods = pods
        self._touch = touch

    def _job_of(self, event: Obj) -> str | None:
        involved = event.get("involvedObject") or {}
        kind = involved.get("kind") or ""
        namespace = involved.get("namespace") or ""
        name = involved.get("name") or ""
        if kind in KINDS:
            return job_key(kind, namespace, name)
        if kind == "JobSet":
            return job_key(TRAINJOB, namespace, name)
        if kind == "Pod":
            pod = self._pods.lister.get(namespace, name)
            return pod_job_key(pod) if pod is not None else None
        return None

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        if not is_in_initial_list:
            self.on_update(obj, obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        key = self._job_of(new)
        if key is not None:
            self._touch(key)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        return None


class Sources:
    """The informers and their handlers (module docstring)."""

    def __init__(
        self,
        factory: SharedInformerFactory,
        *,
        kinds: list[str],
        namespace: str | None,
        index: JobIndex,
        touch: Touch,
    ) -> None:
        self.factory = factory
        self.kinds = kinds
        self.jobs: dict[str, SharedInformer] = {}
        for kind in kinds:
            informer = factory.informer_for(
                KINDS[kind], namespace=namespace, transform=compact_finished_job(kind)
            )
            informer.add_event_handler(_JobHandler(kind, index, touch))
            self.jobs[kind] = informer
        self.pods = factory.informer_for(
            PODS, namespace=namespace, transform=trim_pod, indexers={JOB_INDEX: pod_job_index}
        )
        self.pods.add_event_handler(_PodHandler(index, touch))
        self.events = factory.informer_for(
            EVENTS, namespace=namespace, transform=trim_event, indexers={EVENT_INDEX: event_index}
        )
        self.events.add_event_handler(_EventHandler(self.pods, touch))

    @property
    def informers(self) -> list[SharedInformer]:
        return [*self.jobs.values(), self.pods, self.events]

    def named_informers(self) -> list[tuple[str, SharedInformer]]:
        """Each informer with what it watches: its job kind, ``pods`` or ``events``."""
        return [*self.jobs.items(), ("pods", self.pods), ("events", self.events)]
