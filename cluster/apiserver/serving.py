"""What a request handler is given: the parsed resource path, its selectors, and ``ServerParts``,
the parts of the server it reads and writes (``ApiServer`` is one; handlers need not import it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from . import errors
from .options import ApiServerOptions
from .podlogs import PodLogs
from .resources import ResourceInfo
from .rest import ObjectService
from .selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from .store import ObjectStore
from .watch import WatchHub

__all__ = ["ResourcePath", "ServerParts", "parse_selectors"]


class ServerParts(Protocol):
    """What the resource, watch and log handlers use of the server."""

    rest: ObjectService
    store: ObjectStore
    hub: WatchHub
    pod_logs: PodLogs
    options: ApiServerOptions


@dataclass(frozen=True, slots=True)
class ResourcePath:
    """A parsed resource URL. ``namespace`` is None for cluster-wide collection requests."""

    info: ResourceInfo
    namespace: str | None
    name: str
    subresource: str

    @property
    def ns(self) -> str:
        """The namespace for item operations ("" for cluster-scoped)."""
        return self.namespace or ""


def parse_selectors(
    info: ResourceInfo, query: Any
) -> tuple[LabelSelector | None, FieldSelector | None]:
    """labelSelector/fieldSelector from the query; 400 with the parser's message."""
    try:
        lsel = parse_label_selector(query.get("labelSelector"))
        fsel = parse_field_selector(query.get("fieldSelector"), supported=info.field_selectors)
    except SelectorError as exc:
        raise errors.bad_request(str(exc)) from exc
    return lsel, fsel
