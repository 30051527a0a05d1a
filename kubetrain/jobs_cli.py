"""``kubetrain jobs``: the training jobs of a cluster for people and scripts, kubectl-like.

Why a command of its own when kubectl exists: a training job is seven kinds to kubectl
(``kubeflow.org/v1`` TFJob ... JAXJob, and Kubeflow Trainer v2's TrainJob), each with its own way
of saying it is done, its own pod labels and its own suspend field; a script that starts a job
needs one answer and an exit code it can test. The actions (issue 19):

- ``list [-n NS | -A] [-o table|wide|json|yaml]``: every kind, one row each: kind, namespace,
  name, state, age, duration (``wide`` adds the replicas).
- ``describe KIND/NAME [-o json|yaml]``: state, times, each replica type's pods, conditions and
  the job's Events (``jobs_describe.py``).
- ``logs KIND/NAME [-f] [--replica worker-1] [--container C] [--previous] [--tail N]``: the
  pods' logs, ``[pod/container]``-prefixed when several (``jobs_logs.py``).
- ``wait KIND/NAME [--for Succeeded|Failed|Running] [--timeout S]``: one progress line per change
  on stderr (``jobs_wait.py``).
- ``submit -f FILE|- | --manifest-text TEXT | --kind K --name N --image I ...`` with ``--wait``,
  ``--follow-logs``, ``--delete-on-cancel``, ``--dry-run``: the launcher (``jobs_submit.py``,
  ``jobs_manifest.py``; the Kubeflow Pipelines component is ``deploy/pipelines``).
- ``delete KIND/NAME [--wait]``, ``suspend KIND/NAME``, ``resume KIND/NAME`` (``jobs_actions.py``).

Exit codes, the same for every action (``EXIT_*``):

- ``0``: done; for ``wait``/``submit --wait`` the job reached ``--for`` (succeeded).
- ``1``: the job finished otherwise (failed, when waiting for success).
- ``2``: timed out.
- ``3``: not found, invalid input, or refused by (or unreachable) API server.
- ``130`` / ``143``: cancelled by SIGINT / SIGTERM (``jobs_signals.py``).

A job's *state* is one vocabulary over the kinds: a v1 job's last true condition (Created, Running,
Restarting, Suspended, Succeeded, Failed) or a TrainJob's ``status.phase`` (its ``Complete`` is
``Succeeded``); ``Pending`` before the operator wrote any. Everything goes through the API server
with the user's kubeconfig: the command needs no privilege of the operator's.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from typing import Any, NoReturn, TextIO

import orjson
import yaml

from kubetrain.engine.client import ApiClient
from kubetrain.engine.config import load_kubeconfig
from kubetrain.informers.transport import ApiStatusError
from kubetrain.jobs_describe import human as _human
from kubetrain.jobs_ref import (
    EXIT_FINISHED_OTHERWISE,
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_REACHED,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_TIMED_OUT,
    UsageProblem,
    parse_job_ref,
    print_api_error,
)
from kubetrain.jobs_signals import Interrupts
from kubetrain.jobs_wait import WANTED_STATES
from kubetrain.reconcilers.jobview import KINDS, job_row

__all__ = [
    "EXIT_FINISHED_OTHERWISE",
    "EXIT_INVALID",
    "EXIT_NOT_FOUND",
    "EXIT_REACHED",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_TIMED_OUT",
    "add_jobs_flags",
    "run_jobs",
]

EPILOG = """exit codes:
  0    done; for wait and submit --wait: the job reached --for (succeeded)
  1    the job finished otherwise (failed, when waiting for success)
  2    timed out
  3    not found, invalid input, or refused by (or unreachable) API server
  130  cancelled by SIGINT (Ctrl-C)
  143  cancelled by SIGTERM (submit --delete-on-cancel deletes the job first)
"""

_JOB_HELP = "e.g. pytorchjob/mnist or trainjob/llm"


class _JobsParser(argparse.ArgumentParser):
    """An action's parser: a usage error is invalid input, exit 3 (argparse's 2 is "timed out"
    here)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\n")


def _flag_bool(text: str) -> bool:
    """``--follow-logs=false``: a value a pipeline can pass (true/false, yes/no, 1/0)."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: expected true or false")


_KUBECONFIG_HELP = "kubeconfig (default: $KUBECONFIG, ~/.kube)"


def _sub(sub: Any, name: str, help_text: str, *, job: bool = True) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if job:
        p.add_argument("job", metavar="KIND/NAME", help=_JOB_HELP)
    p.add_argument(
        "-n",
        "--namespace",
        default=None,
        help="default: the kubeconfig context's (in a pod: its own)",
    )
    # After the action too, as kubectl takes it anywhere; SUPPRESS keeps a value given before
    # the action when it is not repeated here.
    p.add_argument("--kubeconfig", default=argparse.SUPPRESS, help=_KUBECONFIG_HELP)
    return p


def _add_wait_flags(p: argparse.ArgumentParser, *, timeout: float) -> None:
    p.add_argument("--for", dest="wanted", choices=WANTED_STATES, default="Succeeded")
    p.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help=f"seconds, 0 for no limit (default {timeout:g})",
    )
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)


def _add_submit_flags(sub: Any) -> None:
    p = _sub(sub, "submit", "create training jobs; optionally wait and stream logs", job=False)
    p.add_argument("-f", "--filename", metavar="FILE", help="YAML or JSON manifest, - for stdin")
    p.add_argument(
        "--manifest-text",
        metavar="TEXT",
        help="the manifest itself (launchers); an empty value is the same as leaving the option "
        "out, for pipeline components that always pass every input",
    )
    p.add_argument("--wait", action="store_true", help="wait like jobs wait, same exit codes")
    p.add_argument("--follow-logs", nargs="?", const=True, default=False, type=_flag_bool,
                   metavar="BOOL", help="stream the pods' logs while waiting (implies --wait)")  # fmt: skip
    p.add_argument("--delete-on-cancel", nargs="?", const=True, default=False,
                   type=_flag_bool, metavar="BOOL",
                   help="on SIGINT/SIGTERM delete the submitted jobs (foreground)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the manifests, create nothing")
    _add_wait_flags(p, timeout=0.0)
    built = p.add_argument_group(
        "a job from flags, without a manifest",
        "-f/--manifest-text or these, not both. For --manifest-text and these, an empty value "
        "is the same as leaving the option out, for pipeline components that always pass "
        "every input.",
    )
    built.add_argument("--kind", help=f"one of {', '.join(KINDS)}")
    built.add_argument("--name")
    built.add_argument("--image")
    built.add_argument("--replicas", help="v1: Master=1,Worker=2; TrainJob: number of nodes")
    built.add_argument("--command", help="the container's command, one shell-like string")
    built.add_argument(
        "--arg", action="append", default=[], help="an argument (repeatable; --arg=-v for a dash)"
    )
    built.add_argument("--env", action="append", default=[], help="NAME=VALUE (repeatable)")
    built.add_argument("--runtime", help="TrainJob: the ClusterTrainingRuntime")


def add_jobs_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", default=None, help=_KUBECONFIG_HELP)
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(
        dest="jobs_command", required=True, metavar="ACTION", parser_class=_JobsParser
    )
    ls = _sub(sub, "list", "the training jobs of every kind", job=False)
    ls.add_argument("-A", "--all-namespaces", action="store_true")
    ls.add_argument("-o", "--output", choices=("table", "wide", "json", "yaml"), default="table")
    desc = _sub(sub, "describe", "a job's state, pods, conditions and events")
    desc.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text")
    logs = _sub(sub, "logs", "the logs of a job's pods")
    logs.add_argument("-f", "--follow", action="store_true", help="stream until the job ends")
    logs.add_argument("--replica", help="worker-1 (one pod) or worker (every worker)")
    logs.add_argument("-c", "--container", help="one container (default: all)")
    logs.add_argument("-p", "--previous", action="store_true", help="the previous run's logs")
    logs.add_argument("--tail", type=int, default=None, help="the last N lines of each")
    logs.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    wait = _sub(sub, "wait", "wait for a job's state; the exit code says how it went")
    _add_wait_flags(wait, timeout=600.0)
    _add_submit_flags(sub)
    delete = _sub(sub, "delete", "delete a job (foreground: its pods first)")
    delete.add_argument("--wait", action="store_true", help="until the job is gone")
    delete.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    _sub(sub, "suspend", "suspend a job (its pods are deleted)")
    _sub(sub, "resume", "resume a suspended job")
    p.set_defaults(main=run_jobs)


async def run_jobs(args: argparse.Namespace) -> int:
    """Run the action; a signal, a usage problem or an API refusal become exit codes."""
    config = await load_kubeconfig(args.kubeconfig)
    async with ApiClient(config) as client:
        with Interrupts() as interrupts:
            try:
                return await _dispatch(client, args, interrupts)
            except asyncio.CancelledError:
                if interrupts.received is None:
                    raise
                task = asyncio.current_task()
                while task is not None and task.uncancel() > 0:
                    pass
                print(f"kubetrain jobs {args.jobs_command}: cancelled by {interrupts.name}",
                      file=sys.stderr)  # fmt: skip
                return interrupts.exit_code
            except UsageProblem as e:
                print(f"kubetrain jobs {args.jobs_command}: {e}", file=sys.stderr)
                return EXIT_INVALID
            except ApiStatusError as e:
                print_api_error(e, sys.stderr)
                return EXIT_INVALID
            except ConnectionError as e:
                print(f"kubetrain jobs {args.jobs_command}: cannot reach the API server: {e}",
                      file=sys.stderr)  # fmt: skip
                return EXIT_INVALID


async def _dispatch(client: ApiClient, args: argparse.Namespace, interrupts: Interrupts) -> int:
    out, err = sys.stdout, sys.stderr
    action = args.jobs_command
    if action == "submit":  # a document's own namespace beats the context's, not a -n
        from kubetrain.jobs_submit import submit

        return await submit(client, args, interrupts, out, err)
    args.namespace = args.namespace or client.config.namespace
    if action == "list":
        return await _list(client, args, out)
    ref = parse_job_ref(args.job, args.namespace)
    if action == "wait":
        from kubetrain.jobs_wait import wait_for

        timeout = args.timeout if args.timeout > 0 else None
        return await wait_for(
            client, ref, wanted=args.wanted, timeout=timeout, err=err, interval=args.interval
        )
    if action == "describe":
        from kubetrain.jobs_describe import describe

        return await describe(client, ref, args.output, out, err)
    if action == "logs":
        from kubetrain.jobs_logs import LogOptions, follow_logs, parse_replica, print_logs

        opts = LogOptions(
            replica=parse_replica(args.replica),
            container=args.container,
            previous=args.previous,
            tail=args.tail,
            interval=args.interval,
        )
        if args.follow:
            return await follow_logs(client, ref, opts, out, err)
        return await print_logs(client, ref, opts, out, err)
    from kubetrain.jobs_actions import delete_job, set_suspended

    if action == "delete":
        return await delete_job(client, ref, wait=args.wait, timeout=args.timeout, out=out, err=err)
    return await set_suspended(client, ref, action == "suspend", out, err)


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
