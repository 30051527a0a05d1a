"""``gc_paused()``: no cyclic garbage collection while a LIST is parsed and cached.

Parsing a LIST allocates hundreds of thousands of dicts, lists and strings that all stay alive.
CPython's cyclic collector runs every 700 net allocations and keeps re-scanning the growing young
heap, which triples the cost of ingesting 50,000 objects (tests/informers/test_bench_informer.py:
~4.7 s with the collector, ~1.6 s without). JSON trees hold no reference cycles, and reference
counting still frees everything as usual, so pausing the collector for the LIST is safe.

The pause is process-wide, so it is reference-counted: concurrent reflectors nest, and the
collector comes back (if it was enabled before the first pause) when the last one ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_depth = 0  # active gc_paused() blocks; the collector is off while > 0 (if it was on)
_was_enabled = False  # whether the collector was enabled when _depth went 0 -> 1


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block (nestable across tasks)."""
    global _depth, _was_enabled
    if _depth == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _was_enabled:
            gc.enable()
