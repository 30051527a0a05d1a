"""``kubetrain jobs submit``: create training jobs, optionally wait for them and stream their logs;
the launcher a pipeline step or a script runs.

Why one command rather than ``kubectl create`` plus ``jobs wait`` plus ``jobs logs``: a launcher
needs the three as one process with one exit code, and it must own the job it started: stopped
(SIGTERM from a pipeline, Ctrl-C from a person) it deletes the job with ``--delete-on-cancel``
(propagationPolicy Foreground, so the pods go first) or says that the job is left running. A
refusal by the API server or an admission webhook is printed as kubectl prints it, with each
cause's field, and exits 3 before anything else is tried.

What to submit is a manifest (``-f``, ``--manifest-text``) or parameters (``--kind``, ``--name``,
``--image``, ``--replicas``, ``--command``, ``--runtime``, ``--arg``, ``--env``), never both. An
empty value of ``--manifest-text`` or of a parameter is the same as leaving it out: the Kubeflow
Pipelines component (``deploy/pipelines``) passes every input every time, unused ones as ``""``,
since component YAML has no conditional arguments that every KFP version honours.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO

import yaml

from kubetrain.engine.client import ApiClient
from kubetrain.informers.transport import ApiStatusError
from kubetrain.jobs_logs import LogOptions, follow_logs
from kubetrain.jobs_manifest import (
    JobParameters,
    build_manifest,
    parse_manifests,
    place_manifest,
    resource_of,
)
from kubetrain.jobs_ref import (
    EXIT_FINISHED_OTHERWISE,
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_TIMED_OUT,
    JobRef,
    UsageProblem,
    print_api_error,
)
from kubetrain.jobs_signals import Interrupts
from kubetrain.jobs_wait import wait_for
from kubetrain.reconcilers.jobview import KINDS

__all__ = ["combined_exit", "read_documents", "submit"]

#: How long the logs of finished pods may take to arrive once the wait is over.
_DRAIN_SECONDS = 30.0
#: How long the cleanup after a signal may take (one DELETE per job).
_CLEANUP_SECONDS = 30.0
#: Which exit code wins when several jobs end differently: a failure, then a job gone, then a
#: timeout; 0 only when every job reached what was waited for.
_PRECEDENCE = (EXIT_FINISHED_OTHERWISE, EXIT_NOT_FOUND, EXIT_TIMED_OUT)


def combined_exit(codes: list[int]) -> int:
    """One exit code for several jobs' (see ``_PRECEDENCE``)."""
    for code in _PRECEDENCE:
        if code in codes:
            return code
    return max(codes, default=0)


def _read_source(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise UsageProblem(f"-f {path}: {e.strerror or e}") from e


#: The flags that build a job without a manifest (``JobParameters``), string-valued: a pipeline
#: component passes each of them every time, ``""`` when unused.
_PARAMETER_FLAGS = ("kind", "name", "image", "replicas", "command", "runtime")
#: The repeatable ones (lists; empty when not given).
_PARAMETER_LISTS = ("arg", "env")


def _given(value: str | None) -> str | None:
    """A string option's value, ``None`` when left out or empty: an empty value is the same as
    leaving the option out (a Kubeflow Pipelines component always passes every input)."""
    return value or None


def read_documents(args: argparse.Namespace, default_namespace: str) -> list[dict[str, Any]]:
    """The jobs to create, each placed in its namespace (``-n``, else the document's, else
    ``default_namespace``): from ``-f``, ``--manifest-text`` or the ``--kind ...`` flags,
    exactly one of them. An empty ``--manifest-text`` or parameter counts as not given; a
    manifest together with any parameter is an error (``UsageProblem``, exit 3)."""
    manifest_text = _given(args.manifest_text)
    params = {flag: _given(getattr(args, flag)) for flag in _PARAMETER_FLAGS}
    named = [f"--{flag}" for flag, value in params.items() if value is not None]
    named += [f"--{flag}" for flag in _PARAMETER_LISTS if getattr(args, flag)]
    manifests = [
        source
        for source, value in (("-f", args.filename), ("--manifest-text", manifest_text))
        if value is not None
    ]
    if manifests and named:
        raise UsageProblem(
            f"both a manifest ({' and '.join(manifests)}) and job parameters "
            f"({', '.join(named)}) were given: submit from a manifest or from parameters, "
            "not both (an empty value counts as not given)"
        )
    if len(manifests) + (params["kind"] is not None) != 1:
        without_kind = f" ({', '.join(named)} without --kind)" if named else ""
        raise UsageProblem(
            "say what to submit with exactly one of: -f FILE (or - for stdin), "
            "--manifest-text TEXT, or --kind KIND --name NAME --image IMAGE"
            f"{without_kind}; an empty value counts as not given"
        )
    if params["kind"] is not None:
        if not params["name"] or not params["image"]:
            raise UsageProblem("--kind needs --name NAME and --image IMAGE")
        job = JobParameters(
            kind=params["kind"],
            name=params["name"],
            image=params["image"],
            namespace=args.namespace or default_namespace,
            replicas=params["replicas"],
            command=params["command"],
            args=args.arg,
            env=args.env,
            runtime=params["runtime"],
        )
        return [build_manifest(job)]
    if args.filename is not None:
        docs = parse_manifests(_read_source(args.filename), args.filename)
    else:
        docs = parse_manifests(manifest_text or "", "--manifest-text")
    return [
        place_manifest(doc, args.namespace or None, default_namespace, i)
        for i, doc in enumerate(docs)
    ]


async def submit(
    client: ApiClient,
    args: argparse.Namespace,
    interrupts: Interrupts,
    out: TextIO,
    err: TextIO,
) -> int:
    """Create, then wait and follow as asked; on a signal clean up and let the cancellation
    through (the caller turns it into 130/143)."""
    docs = read_documents(args, client.config.namespace)
    if args.dry_run:
        out.write(yaml.safe_dump_all(docs, sort_keys=False))
        return 0
    created: list[JobRef] = []
    try:
        for doc in docs:
            try:
                obj = await client.create(resource_of(doc), doc)
            except ApiStatusError as e:
                print_api_error(e, err)
                for ref in created:
                    print(f"{ref.resource} was created before the refusal", file=err)
                return EXIT_INVALID
            meta = obj.get("metadata") or {}
            ref = JobRef(str(doc["kind"]), str(meta.get("namespace")), str(meta.get("name")))
            created.append(ref)
            print(f"{ref.resource} created", file=out, flush=True)
        if not (args.wait or args.follow_logs):
            return 0
        return await _wait_all(client, created, args, out, err)
    except asyncio.CancelledError:
        if interrupts.received is None:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        try:
            await asyncio.wait_for(
                _on_cancel(client, created, args, interrupts, err), _CLEANUP_SECONDS
            )
        except TimeoutError:
            print(f"cleanup after {interrupts.name} timed out", file=err)
        raise


async def _wait_all(
    client: ApiClient, refs: list[JobRef], args: argparse.Namespace, out: TextIO, err: TextIO
) -> int:
    timeout = args.timeout if args.timeout and args.timeout > 0 else None
    stop = asyncio.Event()
    followers = [
        asyncio.create_task(follow_logs(client, ref, LogOptions(), out, err, stop=stop))
        for ref in (refs if args.follow_logs else [])
    ]
    try:
        codes = await asyncio.gather(
            *(wait_for(client, ref, wanted=args.wanted, timeout=timeout, err=err) for ref in refs)
        )
        stop.set()
        finished = args.wanted != "Running" and all(
            c in (0, EXIT_FINISHED_OTHERWISE) for c in codes
        )
        if followers and finished:  # the pods are done: their streams end by themselves
            await asyncio.wait(followers, timeout=_DRAIN_SECONDS)
        return combined_exit(list(codes))
    finally:
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)


async def _on_cancel(
    client: ApiClient,
    refs: list[JobRef],
    args: argparse.Namespace,
    interrupts: Interrupts,
    err: TextIO,
) -> None:
    for ref in refs:
        if not args.delete_on_cancel:
            print(
                f"{interrupts.name}: {ref.resource} is left running in namespace "
                f"{ref.namespace} (delete it with: kubetrain jobs delete {ref.word} "
                f"-n {ref.namespace}, or submit with --delete-on-cancel)",
                file=err,
                flush=True,
            )
            continue
        try:
            await client.delete(
                KINDS[ref.kind], ref.namespace, ref.name, propagation_policy="Foreground"
            )
        except ApiStatusError as e:
            if not e.is_not_found:
                print_api_error(e, err)
                continue
        print(f"{ref.resource} deleted ({interrupts.name})", file=err, flush=True)
