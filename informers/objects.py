"""The function shapes informers are configured with: index functions and ingest transforms.

Objects themselves and their keys are ``kubetrain.base.objects`` (every room names objects the
same way); these two aliases are informer-specific.
"""

from __future__ import annotations

from collections.abc import Callable

from kubetrain.base.objects import Obj

__all__ = ["IndexFunc", "Transform"]

IndexFunc = Callable[[Obj], list[str]]
"""Maps an object to the index values it is filed under (none, one or several)."""

Transform = Callable[[Obj], Obj]
"""Called once per object at ingest, before it is cached. May mutate its argument and return it,
or return a new dict. Must be idempotent and fast (it runs for every listed and watched object)."""
