"""API requests by verb and resource, from the API server's ``/metrics``, and the share of them
that one measured system made.

The API server counts ``apiserver_request_total{verb,resource,subresource,...}`` with no client
label, so a system's requests are the delta of two scrapes taken around its run (systems run one
after the other against the same server). That delta also holds what other clients did in the
window; ``operator_writes`` removes the writes that are known to be theirs (``NOT_OPERATOR``).
A WATCH is counted when its stream ends (kube's rule), so long-lived watches mostly do not show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "NOT_OPERATOR",
    "WRITE_VERBS",
    "RequestCounts",
    "delta",
    "operator_writes",
    "parse_request_counts",
    "scrape_request_counts",
    "without_events",
]

RequestCounts = dict[str, int]
"""``"VERB resource[/subresource]"`` -> requests answered (any code)."""

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"})

NOT_OPERATOR: tuple[tuple[str, str], ...] = (
    ("POST", "pytorchjobs"),  # the harness creates the jobs
    ("POST", "namespaces"),  # the harness creates the namespaces
    ("*", "pods/status"),  # simulated kubelets
    ("*", "pods/binding"),  # simulated scheduler
    ("*", "nodes"),
    ("*", "nodes/status"),
    ("*", "leases"),  # node leases (no system here runs leader election)
)
"""(verb or ``*``, ``plural[/subresource]``) of writes made by the harness, the simulated nodes
or the server's own controllers, never by the measured system. A ``plural.group`` resource
matches its bare ``plural`` here (the request counter's ``resource`` label has no group)."""


def parse_request_counts(text: str, *, by_code: bool = False) -> RequestCounts:
    """``apiserver_request_total`` of a Prometheus text exposition: ``"VERB resource[/sub]"``
    summed over codes, or ``"VERB resource[/sub] code"`` with ``by_code``."""
    counts: RequestCounts = {}
    for family in text_string_to_metric_families(text):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            labels = sample.labels
            resource = labels.get("resource", "")
            if labels.get("subresource"):
                resource += "/" + labels["subresource"]
            key = f"{labels.get('verb', '')} {resource}"
            if by_code:
                key += f" {labels.get('code', '')}"
            counts[key] = counts.get(key, 0) + int(sample.value)
    return counts


async def scrape_request_counts(
    session: aiohttp.ClientSession, url: str, *, by_code: bool = False
) -> RequestCounts:
    """GET ``{url}/metrics`` and parse it (see ``parse_request_counts``)."""
    async with session.get(url + "/metrics") as resp:
        resp.raise_for_status()
        return parse_request_counts(await resp.text(), by_code=by_code)


def delta(before: Mapping[str, int], after: Mapping[str, int]) -> RequestCounts:
    """``after - before`` per key, keys with a zero delta left out."""
    out = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in sorted(out.items()) if v}


def _is_other(verb: str, resource: str, others: Sequence[tuple[str, str]]) -> bool:
    plural, slash, sub = resource.partition("/")
    bare = plural.split(".", 1)[0] + slash + sub
    return any(v in ("*", verb) and r == bare for v, r in others)


def operator_writes(
    counts: Mapping[str, int],
    *,
    also_not_operator: Sequence[tuple[str, str]] = (),
    minus: Mapping[str, int] | None = None,
) -> RequestCounts:
    """The write requests of ``counts`` that the measured system made: less ``NOT_OPERATOR`` and
    ``also_not_operator`` (same rule), and less ``minus`` (``"VERB resource"`` -> requests the
    harness knows another client made, e.g. the launcher pods the Job controller created; a
    count never goes below zero)."""
    others = (*NOT_OPERATOR, *also_not_operator)
    out: RequestCounts = {}
    for key, n in counts.items():
        verb, _, resource = key.partition(" ")
        if verb in WRITE_VERBS and not _is_other(verb, resource, others):
            n -= (minus or {}).get(key, 0)
            if n > 0:
                out[key] = n
    return out


def without_events(writes: Mapping[str, int]) -> RequestCounts:
    """``writes`` less Event writes (core ``events`` and ``events.k8s.io``)."""
    return {k: n for k, n in writes.items() if k.partition(" ")[2].split(".", 1)[0] != "events"}
