"""``deep_sizeof``: how many bytes cached objects really hold, for budgets and benchmarks.

``sys.getsizeof`` counts one container, not what it references. This walks dicts, lists and
tuples and counts each distinct object once, so strings shared between objects (orjson caches dict
keys; interned names) are counted once across everything measured in one call. Divide by the number
of objects for bytes per cached object.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["deep_sizeof"]


def deep_sizeof(*objects: Any) -> int:
    """Total bytes of ``objects`` and everything they reference, each distinct object once."""
    seen: set[int] = set()
    total = 0
    stack: list[Any] = list(objects)
    while stack:
        obj = stack.pop()
        ident = id(obj)
        if ident in seen:
            continue
        seen.add(ident)
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
    return total
