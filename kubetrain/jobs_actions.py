"""``kubetrain jobs delete | suspend | resume``: the writes a person or script makes to a job.

Why commands of their own: suspending is a different field per kind (a v1 job's
``spec.runPolicy.suspend``, a TrainJob's ``spec.suspend``) that kubectl users get wrong; deleting
with ``--wait`` waits until the job (and, foreground, its pods) is gone, so a script can create
one of the same name next. Each prints one line saying what was done, kubectl's way
(``pytorchjob.kubeflow.org/mnist suspended``).
"""

from __future__ import annotations

import asyncio
import time
from typing import TextIO

from kubetrain.engine.client import ApiClient
from kubetrain.informers.transport import ApiStatusError
from kubetrain.jobs_ref import EXIT_NOT_FOUND, EXIT_TIMED_OUT, JobRef, fetch_job
from kubetrain.reconcilers.jobview import KINDS, suspend_patch

__all__ = ["delete_job", "set_suspended"]


async def set_suspended(
    client: ApiClient, ref: JobRef, suspend: bool, out: TextIO, err: TextIO
) -> int:
    """Merge-patch the job's suspend field; 0, or 3 when it does not exist."""
    try:
        await client.patch(
            KINDS[ref.kind], ref.namespace, ref.name, suspend_patch(ref.kind, suspend)
        )
    except ApiStatusError as e:
        if not e.is_not_found:
            raise
        print(f"{ref.kind} {ref.namespace}/{ref.name} not found", file=err)
        return EXIT_NOT_FOUND
    print(f"{ref.resource} {'suspended' if suspend else 'resumed'}", file=out, flush=True)
    return 0


async def delete_job(
    client: ApiClient,
    ref: JobRef,
    *,
    wait: bool,
    timeout: float,
    out: TextIO,
    err: TextIO,
    interval: float = 0.5,
) -> int:
    """Delete the job (foreground: its pods first); with ``wait`` poll until it is gone. 0, 2
    when ``timeout`` passed first, 3 when it did not exist."""
    try:
        await client.delete(
            KINDS[ref.kind], ref.namespace, ref.name, propagation_policy="Foreground"
        )
    except ApiStatusError as e:
        if not e.is_not_found:
            raise
        print(f"{ref.kind} {ref.namespace}/{ref.name} not found", file=err)
        return EXIT_NOT_FOUND
    if wait:
        deadline = time.monotonic() + timeout
        while await fetch_job(client, ref) is not None:
            if time.monotonic() >= deadline:
                print(f"timed out after {timeout:g} s waiting for {ref.resource} to go", file=err)
                return EXIT_TIMED_OUT
            await asyncio.sleep(interval)
    print(f"{ref.resource} deleted", file=out, flush=True)
    return 0
