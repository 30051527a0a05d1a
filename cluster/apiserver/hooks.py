"""Extension points of the API server's write path: admission plugins.

The server runs ``ApiServer.admission`` (a list, in order) on every create, update and delete:
first the plugins whose ``mutating`` attribute is True (each may return a changed object), then
the built-in schema validation, then the others (validating: raise ``ApiError`` to refuse).
The webhook plugin (``admission.py``) and any built-in policy plug in here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .resources import ResourceInfo

__all__ = ["AdmissionPlugin", "AdmissionRequest"]


@dataclass(slots=True, kw_only=True)
class AdmissionRequest:
    """What is about to be persisted.

    ``operation`` is CREATE, UPDATE or DELETE. ``obj`` is the new object (None for DELETE) and
    ``old_obj`` the stored one (None for CREATE); both are read-only for plugins: a mutating
    plugin returns a new dict instead. ``subresource`` is "" for the main resource.
    """

    operation: str
    info: ResourceInfo
    namespace: str
    name: str
    obj: dict[str, Any] | None
    old_obj: dict[str, Any] | None
    subresource: str = ""
    dry_run: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """Filled by plugins: admission warnings, returned to the client as ``Warning`` headers."""


@runtime_checkable
class AdmissionPlugin(Protocol):
    """One admission step. ``mutating`` plugins run before validation, the others after.

    ``admit`` returns a replacement object (mutating plugins only) or None to keep it; it raises
    ``errors.ApiError`` to refuse the request.

    Optionally a plugin has ``idle()``: True while its ``admit`` would do nothing at all (return
    None, add no warning, await nothing). When every plugin is idle, a create or update skips
    admission (the webhook plugins without webhooks: most writes).
    """

    mutating: bool

    async def admit(self, request: AdmissionRequest) -> dict[str, Any] | None: ...
