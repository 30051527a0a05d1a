"""``kubetrain jobs``: the training jobs of a cluster for people and scripts, kubectl-like.

Why a command of its own when kubectl exists: a training job is seven kinds to kubectl
(``kubeflow.org/v1`` TFJob ... JAXJob, and Kubeflow Trainer v2's TrainJob), each with its own way
of saying it is done; a script that starts a job needs one answer and an exit code it can test.

First slice of the job CLI (issue 19):

- ``kubetrain jobs list [-n NS | -A] [-o table|wide|json|yaml]``: every kind, one row each:
  kind, namespace, name, state, age, duration (``wide`` adds the replicas).
- ``kubetrain jobs wait KIND/NAME [-n NS] [--for Succeeded|Failed|Running] [--timeout S]``:
  waits, showing the state as it changes on stderr, and exits ``0`` when the job reached
  ``--for``, ``1`` when it finished otherwise (a failed job, when waiting for success), ``2`` on
  timeout; ``3`` for a job that does not exist.

A job's *state* is one vocabulary over the kinds: a v1 job's last true condition (Created, Running,
Restarting, Suspended, Succeeded, Failed) or a TrainJob's ``status.phase`` (its ``Complete`` is
``Succeeded``); ``Pending`` before the operator wrote any. The reads are plain GETs and LISTs with
the user's kubeconfig: the command needs no privilege of the operator's.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
import time
from typing import Any, TextIO

import orjson
import yaml

from kubetrain.engine.client import ApiClient
from kubetrain.engine.config import load_kubeconfig
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.jobview import FINISHED, KINDS, job_row, job_state, kind_of

__all__ = [
    "EXIT_FINISHED_OTHERWISE",
    "EXIT_NOT_FOUND",
    "EXIT_REACHED",
    "EXIT_TIMED_OUT",
    "add_jobs_flags",
    "run_jobs",
]

EXIT_REACHED = 0
EXIT_FINISHED_OTHERWISE = 1
EXIT_TIMED_OUT = 2
EXIT_NOT_FOUND = 3


def _human(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(max(0.0, seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60}s" if s < 600 else f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60}m" if s < 86400 else f"{s // 86400}d"


def add_jobs_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", default=None, help="kubeconfig (default: $KUBECONFIG, ~/.kube)")
    sub = p.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="the training jobs of every kind")
    ls.add_argument("-n", "--namespace", default="default")
    ls.add_argument("-A", "--all-namespaces", action="store_true")
    ls.add_argument("-o", "--output", choices=("table", "wide", "json", "yaml"), default="table")
    wait = sub.add_parser("wait", help="wait for a job's state; the exit code says how it went")
    wait.add_argument("job", metavar="KIND/NAME", help="e.g. pytorchjob/mnist or trainjob/llm")
    wait.add_argument("-n", "--namespace", default="default")
    wait.add_argument("--for", dest="wanted", choices=("Succeeded", "Failed", "Running"),
                      default="Succeeded")  # fmt: skip
    wait.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    wait.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    p.set_defaults(main=run_jobs)


async def run_jobs(args: argparse.Namespace) -> int:
    config = await load_kubeconfig(args.kubeconfig)
    async with ApiClient(config) as client:
        if args.jobs_command == "list":
            return await _list(client, args, sys.stdout)
        return await _wait(client, args, sys.stderr)


async def _list(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    namespace = None if args.all_namespaces else args.namespace
    now = datetime.datetime.now(datetime.UTC)
    rows: list[dict[str, Any]] = []
    for kind, ref in KINDS.items():
        try:
            jobs = await client.list_all(ref, namespace)
        except ApiStatusError as e:
            if e.is_not_found:
                continue  # the cluster does not serve this kind
            raise
        rows.extend(job_row(kind, job, now=now) for job in jobs)
    rows.sort(key=lambda r: (r["namespace"], r["kind"], r["name"]))
    if args.output == "json":
        out.write(orjson.dumps({"items": rows}, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if args.output == "yaml":
        out.write(yaml.safe_dump({"items": rows}, sort_keys=False))
        return 0
    header = ["NAMESPACE", "KIND", "NAME", "STATE", "AGE", "DURATION"]
    if args.output == "wide":
        header.append("REPLICAS")
    table = [header]
    for r in rows:
        line = [r["namespace"], r["kind"], r["name"], r["state"]]
        line += [_human(r["age"]), _human(r["duration"])]
        if args.output == "wide":
            line.append(str(r["replicas"]))
        table.append(line)
    if len(table) == 1:
        where = "any namespace" if namespace is None else f"namespace {namespace}"
        print(f"No training jobs found in {where}.", file=sys.stderr)
        return 0
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        out.write("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
    return 0


async def _wait(client: ApiClient, args: argparse.Namespace, err: TextIO) -> int:
    kind_word, _, name = str(args.job).partition("/")
    kind = kind_of(kind_word)
    if kind is None or not name:
        known = ", ".join(k.lower() for k in KINDS)
        print(
            f"kubetrain jobs wait: {args.job!r}: expected KIND/NAME, KIND one of {known}", file=err
        )
        return EXIT_NOT_FOUND
    deadline = time.monotonic() + args.timeout
    start = time.monotonic()
    shown = ""
    while True:
        try:
            job = await client.get(KINDS[kind], args.namespace, name)
        except ApiStatusError as e:
            if not e.is_not_found:
                raise
            print(f"{kind} {args.namespace}/{name} not found", file=err)
            return EXIT_NOT_FOUND
        state = job_state(kind, job)
        if state != shown:
            print(f"{time.monotonic() - start:6.1f}s {kind} {name}: {state}", file=err, flush=True)
            shown = state
        if state == args.wanted or (args.wanted == "Running" and state == "Succeeded"):
            return EXIT_REACHED
        if state in FINISHED:
            return EXIT_FINISHED_OTHERWISE
        if time.monotonic() >= deadline:
            print(f"timed out after {args.timeout:g} s waiting for {args.wanted}", file=err)
            return EXIT_TIMED_OUT
        await asyncio.sleep(min(args.interval, max(0.0, deadline - time.monotonic())))
