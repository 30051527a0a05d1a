"""``SharedInformerFactory``: exactly one informer per watched thing, however many ask for it.

Controllers ask the factory for the informers they need (``informer_for``); two controllers asking
for pods in the same namespace with the same selectors get the same ``SharedInformer``, hence one
watch and one cache. The factory holds the defaults (namespace, transform, options, metrics, clock)
and starts, syncs and stops all its informers together.

Identity of an informer: (resource, namespace, label selector, field selector, metadata-only).
The transform and the options are properties of that one informer: asking again with different
ones is a programming error and raises ``ValueError`` (say it once, where the informer is first
requested, or leave them to the factory defaults).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import EllipsisType

from prometheus_client import CollectorRegistry

from kubetrain.base.clock import REAL_CLOCK, Clock

from .informer import InformerOptions, SharedInformer
from .metrics import InformerMetrics
from .objects import IndexFunc, Transform
from .resource import ResourceRef
from .transforms import compose, strip_managed_fields
from .transforms import metadata_only as metadata_only_transform
from .transport import Transport

__all__ = ["InformerKey", "SharedInformerFactory"]


@dataclass(frozen=True, slots=True)
class InformerKey:
    """What makes two informer requests the same informer."""

    resource: ResourceRef
    namespace: str | None
    label_selector: str | None
    field_selector: str | None
    metadata_only: bool


@dataclass(frozen=True, slots=True)
class _Spec:
    """How an informer was first requested, to reject conflicting later requests."""

    transform: Transform | None
    keep: tuple[str, ...]
    options: InformerOptions | None


class SharedInformerFactory:
    """Creates, shares, starts and stops informers over one ``Transport``."""

    def __init__(
        self,
        transport: Transport,
        *,
        namespace: str | None = None,
        transform: Transform = strip_managed_fields,
        options: InformerOptions | None = None,
        registry: CollectorRegistry | None = None,
        metrics: InformerMetrics | None = None,
        clock: Clock = REAL_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        """Defaults for every informer of this factory.

        ``namespace``: watch only this namespace (None: all namespaces); ``transform``: the ingest
        transform (default strips managedFields and last-applied); ``options``: informer options
        (default ``InformerOptions()``); ``registry``: where to register the
        ``kubetrain_informer_*`` metrics (None: unregistered), or pass ready ``metrics`` to share
        them between factories on one registry; ``clock``/``rng``: injectable for tests.
        """
        self._transport = transport
        self.namespace = namespace
        self._transform = transform
        self._options = options or InformerOptions()
        self._metrics = metrics or InformerMetrics(registry)
        self._clock = clock
        self._rng = rng or random.Random()
        self._informers: dict[InformerKey, SharedInformer] = {}
        self._specs: dict[InformerKey, _Spec] = {}
        self._started = False

    @property
    def clock(self) -> Clock:
        """The time every informer of this factory (reflector, resync, backoff) runs on."""
        return self._clock

    @property
    def informers(self) -> list[SharedInformer]:
        """Every informer created so far, in creation order."""
        return list(self._informers.values())

    def informer_for(
        self,
        resource: ResourceRef,
        *,
        namespace: str | EllipsisType | None = ...,
        label_selector: str | None = None,
        field_selector: str | None = None,
        transform: Transform | None = None,
        metadata_only: bool = False,
        keep: Iterable[str] = (),
        indexers: Mapping[str, IndexFunc] | None = None,
        options: InformerOptions | None = None,
    ) -> SharedInformer:
        """The one informer for this resource, scope and selectors; created on first request.

        ``namespace``: ``...`` (default) uses the factory's; ``None`` means all namespaces.
        ``transform``: None uses the factory's. ``metadata_only``: cache only apiVersion, kind,
        metadata and the ``keep`` paths (e.g. ``("status.phase",)``); the transform, if given, runs
        after that. ``indexers`` are added to the informer (also to an existing one). ``options``:
        None uses the factory's. Created after ``start()``, the informer starts at once.

        Raises ``ValueError`` when an existing informer was requested with a different
        ``transform``, ``keep`` or ``options``, or when ``namespace`` is given for a cluster-scoped
        resource.
        """
        ns = self.namespace if isinstance(namespace, EllipsisType) else namespace
        if not resource.namespaced:
            if not isinstance(namespace, EllipsisType) and namespace is not None:
                raise ValueError(
                    f"{resource.group_resource} is cluster-scoped: pass namespace=None or omit it"
                )
            ns = None
        key = InformerKey(
            resource, ns or None, label_selector or None, field_selector or None, metadata_only
        )
        spec = _Spec(transform, tuple(keep), options)
        existing = self._informers.get(key)
        if existing is not None:
            self._check_same(key, self._specs[key], spec)
            if indexers:
                existing.add_indexers(indexers)
            return existing
        effective: Transform = transform or self._transform
        if metadata_only:
            trim = metadata_only_transform(spec.keep)
            effective = compose(trim, transform) if transform else trim
        elif spec.keep:
            raise ValueError("keep= only applies with metadata_only=True")
        informer = SharedInformer(
            self._transport,
            resource,
            namespace=key.namespace,
            label_selector=key.label_selector,
            field_selector=key.field_selector,
            transform=effective,
            indexers=indexers,
            options=options or self._options,
            clock=self._clock,
            rng=random.Random(self._rng.random()),
            metrics=self._metrics,
        )
        self._informers[key] = informer
        self._specs[key] = spec
        if self._started:
            informer.start()
        return informer

    @staticmethod
    def _check_same(key: InformerKey, first: _Spec, again: _Spec) -> None:
        what = f"the informer for {key.resource.group_resource}"
        if again.transform is not None and again.transform is not first.transform:
            raise ValueError(
                f"{what} already exists with transform {first.transform!r}; pass the same "
                "transform object (or None) everywhere it is requested"
            )
        if again.keep and again.keep != first.keep:
            raise ValueError(f"{what} already exists with keep={first.keep}; got keep={again.keep}")
        if again.options is not None and again.options != first.options:
            raise ValueError(
                f"{what} already exists with other options; pass the same InformerOptions or None"
            )

    def start(self) -> None:
        """Start every informer (and those created later). Needs a running event loop."""
        self._started = True
        for informer in self._informers.values():
            informer.start()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Wait until every informer has synced; False if ``timeout`` (real seconds) passed."""
        informers = list(self._informers.values())
        try:
            async with asyncio.timeout(timeout):
                for informer in informers:
                    await informer.wait_for_sync()
        except TimeoutError:
            return False
        return True

    def unsynced(self) -> list[SharedInformer]:
        """Informers not synced yet (for readiness messages)."""
        return [i for i in self._informers.values() if not i.has_synced]

    async def stop(self) -> None:
        """Stop every informer and wait for their tasks."""
        await asyncio.gather(*(informer.stop() for informer in self._informers.values()))
