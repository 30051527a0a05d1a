"""The job a ``kubetrain jobs`` command names, and how every such command reports a problem.

Why one module: each action reads ``KIND/NAME`` the same way, answers a missing job, a bad word or
an API refusal with the same exit code (3) and prints the API server's refusal the way kubectl
does (``Error from server (Reason): message`` and each cause's ``field: message``), so a script
sees one contract whatever the action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

from kubetrain.engine.client import ApiClient
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.jobview import KINDS, kind_of, resource_name

__all__ = [
    "EXIT_FINISHED_OTHERWISE",
    "EXIT_INVALID",
    "EXIT_NOT_FOUND",
    "EXIT_REACHED",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_TIMED_OUT",
    "JobRef",
    "UsageProblem",
    "fetch_job",
    "parse_job_ref",
    "print_api_error",
]

EXIT_REACHED = 0
EXIT_FINISHED_OTHERWISE = 1
EXIT_TIMED_OUT = 2
EXIT_NOT_FOUND = 3
EXIT_INVALID = 3
"""Invalid input, or refused by (or unreachable) API server: the same code as not found."""
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class UsageProblem(Exception):
    """Input the command cannot act on; the message names the problem and the fix (exit 3)."""


@dataclass(frozen=True, slots=True)
class JobRef:
    """One job: its kind (as in ``KINDS``), namespace and name."""

    kind: str
    namespace: str
    name: str

    @property
    def resource(self) -> str:
        """``pytorchjob.kubeflow.org/mnist``, as kubectl prints it."""
        return resource_name(self.kind, self.name)

    @property
    def word(self) -> str:
        """``pytorchjob/mnist``: what a user types to name it again."""
        return f"{self.kind.lower()}/{self.name}"


def parse_job_ref(text: str, namespace: str) -> JobRef:
    """``KIND/NAME`` (any spelling ``kind_of`` knows) in ``namespace``; raises ``UsageProblem``."""
    kind_word, _, name = text.partition("/")
    kind = kind_of(kind_word)
    if kind is None or not name or "/" in name:
        known = ", ".join(k.lower() for k in KINDS)
        raise UsageProblem(f"{text!r}: expected KIND/NAME, KIND one of {known}")
    return JobRef(kind, namespace, name)


async def fetch_job(client: ApiClient, ref: JobRef) -> dict[str, Any] | None:
    """The job, or None when it does not exist (other refusals raise ``ApiStatusError``)."""
    try:
        return await client.get(KINDS[ref.kind], ref.namespace, ref.name)
    except ApiStatusError as e:
        if e.is_not_found:
            return None
        raise


def print_api_error(e: ApiStatusError, err: TextIO) -> None:
    """kubectl's form of a refusal: ``Error from server (Reason): message``, then each of
    ``details.causes`` as ``  field: message`` (what the API server's validation or an admission
    webhook said was wrong)."""
    reason = f" ({e.reason})" if e.reason else ""
    print(f"Error from server{reason}: {e.message or e}", file=err)
    details = (e.status or {}).get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    for cause in causes if isinstance(causes, list) else []:
        if not isinstance(cause, dict):
            continue
        field = cause.get("field") or cause.get("reason") or "(object)"
        print(f"  {field}: {cause.get('message', '')}", file=err)
    err.flush()
