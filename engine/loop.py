"""Process plumbing: run the operator's main coroutine on uvloop, and turn signals into a stop.

``run(main)`` is the one entry point the CLI uses: uvloop when available (a faster loop for a
process that is all I/O and callbacks), the standard loop otherwise or when asked. Signals follow
controller-runtime's ``SetupSignalHandler``: the first SIGTERM/SIGINT asks for a graceful stop,
a second one exits at once with status 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

__all__ = ["install_signal_handlers", "run"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Exit status when a second signal cuts a graceful shutdown short.
FORCED_EXIT_STATUS = 1


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not installed (Windows): the standard loop works too
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(
    main: Callable[[], Coroutine[Any, Any, T]], *, use_uvloop: bool = True, debug: bool = False
) -> T:
    """Run ``main()`` to completion on a new loop (uvloop unless ``use_uvloop`` is False or it is
    not installed) and return its result. The loop is closed afterwards."""
    factory = _uvloop_factory() if use_uvloop else None
    with asyncio.Runner(loop_factory=factory, debug=debug) as runner:
        return runner.run(main())


def install_signal_handlers(
    on_stop: Callable[[], None],
    *,
    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
    force_exit: Callable[[int], None] = os._exit,
) -> Callable[[], None]:
    """Call ``on_stop()`` on the first of ``signals``; on a second, ``force_exit(1)``.

    Needs the running loop (main thread). Returns a function that removes the handlers.
    ``force_exit`` is injectable for tests.
    """
    loop = asyncio.get_running_loop()
    installed = list(signals)
    received = 0

    def handle(sig: signal.Signals) -> None:
        nonlocal received
        received += 1
        if received == 1:
            log.info("received %s: shutting down gracefully (again to force)", sig.name)
            on_stop()
        else:
            log.warning("received %s again: exiting now", sig.name)
            force_exit(FORCED_EXIT_STATUS)

    for sig in installed:
        loop.add_signal_handler(sig, handle, sig)

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return remove
