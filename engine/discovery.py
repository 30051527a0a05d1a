"""Which resources the API server serves: the discovery document of one group/version.

Why: an operator started before its CRDs are installed would otherwise list resources that do
not exist, retry, and fail its cache sync minutes later with a timeout that does not say why.
Asking discovery first names the missing resources at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError, Transport

__all__ = ["missing_resources", "served_resources"]


async def served_resources(client: Transport, group: str, version: str) -> set[str]:
    """The resource names (plurals and ``plural/subresource``) served under ``group/version``;
    empty when the group/version is not served at all (404/503)."""
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    try:
        doc = await client.request_json("GET", path)
    except ApiStatusError as e:
        if e.code in (404, 503):  # no such group yet; 503: an aggregated API not available
            return set()
        raise
    return {str(r.get("name")) for r in doc.get("resources") or [] if isinstance(r, dict)}


async def missing_resources(client: Transport, refs: Iterable[ResourceRef]) -> list[ResourceRef]:
    """The ``refs`` the API server does not serve now, in the order given (one discovery
    request per group/version)."""
    refs = list(refs)
    served: dict[tuple[str, str], set[str]] = {}
    for ref in refs:
        key = (ref.group, ref.version)
        if key not in served:
            served[key] = await served_resources(client, ref.group, ref.version)
    return [ref for ref in refs if ref.plural not in served[(ref.group, ref.version)]]
