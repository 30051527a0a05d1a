"""``AdaptiveLimit``: how many requests the API client keeps in flight, learned from the answers.

Why: a fixed client-side rate (client-go's QPS 20 / burst 30, the reference operator's default) is
either too slow for the server at hand (500 jobs took 43 times the floor) or too fast for a busy
one. Kubernetes servers protect themselves with API Priority and Fairness: they queue each flow's
requests and answer 429 with ``Retry-After`` when a flow exceeds its share. So the client's
default is to find the concurrency the server gives, the way TCP finds a link's bandwidth:

- **Additive increase.** While answers come back fast and successful, the limit grows: by one per
  answer at first (slow start: it doubles each round trip), then by one per round trip (``1/limit``
  per answer) once it has been cut. It grows only while the client uses most of it, so an idle
  client does not earn a limit it never tested.
- **Multiplicative decrease.** A 429 (or a 5xx with ``Retry-After``) halves it. On a server
  without API Priority and Fairness (the embedded one; kube-apiserver before 1.20), answers
  slower than ``latency_tolerance`` times their usual latency plus ``latency_slack`` (the server
  is queueing us) cut it by ``latency_backoff``, never below ``latency_floor``. A server with APF
  (its answers carry ``X-Kubernetes-PF-FlowSchema-UID``) queues each flow fairly and refuses with
  429 when ours exceeds its share: there latency is not read, the explicit signal is better. A cut
  applies once per round trip: answers to requests sent before the last cut do not cut again.
- **Retry-After is honoured by every request**, not only the retried one: the limiter admits
  nothing until it has passed.
- **Priorities.** When the limit is full, a freed slot goes to the waiter of the highest
  priority (``acquire(priority=)``, from ``engine.request_priority``), in arrival order within
  one: a job's one status write or TTL deletion is not queued behind a burst of other jobs' pod
  creations (each many requests), the way the work queue already orders the reconciles.

"Usual latency" is kept per kind of request (verb and resource: a pod create and a job list do not
take the same time) as the smaller of the minima of the current and previous window of answers, so
it follows a server that has become lastingly slower without forgetting within one burst. Slowness
is an exponential average over answers, so one slow answer (a garbage collection pause) does not
cut.

The limit is bounded by ``[minimum, maximum]``; ``maximum`` stays below the client's pooled
connections (each in-flight HTTP/1.1 request holds one). Watches are long-running: they do not
hold a slot. A fixed ``--kube-api-qps``/``--kube-api-burst`` set by the user stays a hard cap on top
(``engine.client``). Single event loop; no locks, no tasks.
"""

from __future__ import annotations

import asyncio
import heapq
from dataclasses import dataclass
from typing import Literal

from kubetrain.base.clock import REAL_CLOCK, Clock

__all__ = ["AdaptiveLimit", "AdaptiveLimitOptions", "Outcome", "Ticket"]

Outcome = Literal["ok", "throttled", "slow", "neutral"]
"""What one answer says about the server: success (may grow), 429 / Retry-After (halve), too slow
(cut), or nothing (a client-side error, a 4xx other than 429)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptiveLimitOptions:
    """Knobs of an ``AdaptiveLimit``; the defaults are the operator's."""

    initial: int = 8
    """In-flight requests allowed at start; slow start doubles it each round trip."""
    minimum: int = 1
    maximum: int = 64
    """Upper bound; keep it below the client's connection pool (``ClientOptions.connection_limit``,
    100, which the open watches share). kube-apiserver's own default is 400 read + 200 mutating
    requests in flight for all clients together."""
    backoff: float = 0.5
    """Factor applied on 429 / Retry-After (TCP's halving)."""
    latency_backoff: float = 0.8
    """Factor applied when answers are too slow: gentler, latency is a noisier signal."""
    latency_tolerance: float = 3.0
    """An answer is slow when it takes more than this times its usual latency plus the slack."""
    latency_slack: float = 0.050
    """Seconds of queueing always tolerated: on a busy machine answers slow down for reasons
    that are not ours (CPU shared with etcd, nodes, other clients), and a limit that yields to
    every such delay only hands the server to clients that do not yield (measured: cutting at
    2x + 10 ms held kubetrain's limit at 4-8 on a real API server and tripled its latency)."""
    latency_floor: int = 8
    """Slowness alone never cuts the limit below this; only 429s and Retry-After go lower."""
    latency_smoothing: float = 0.1
    """Weight of one answer in the average of slowness (an exponential moving average)."""
    window: int = 200
    """Answers per window of the usual-latency minimum (per kind of request)."""
    warmup: int = 10
    """Answers of a kind seen before its latency can count as slow."""

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.latency_floor:
            raise ValueError(
                "AdaptiveLimitOptions: need 1 <= minimum <= latency_floor, got "
                f"{self.minimum}, {self.latency_floor}"
            )
        if not 1 <= self.minimum <= self.initial <= self.maximum:
            raise ValueError(
                "AdaptiveLimitOptions: need 1 <= minimum <= initial <= maximum, got "
                f"{self.minimum}, {self.initial}, {self.maximum}"
            )
        for name in ("backoff", "latency_backoff", "latency_smoothing"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"AdaptiveLimitOptions.{name} must be in (0, 1)")
        if self.latency_tolerance <= 1 or self.latency_slack < 0 or self.window < 1:
            raise ValueError(
                "AdaptiveLimitOptions: latency_tolerance must be > 1, latency_slack >= 0, "
                "window >= 1"
            )


@dataclass(slots=True)
class Ticket:
    """One admitted request: hand it back to ``AdaptiveLimit.release`` exactly once."""

    sequence: int
    """Admission order; a cut ignores answers to tickets issued before it."""
    in_flight: int
    """Requests in flight when this one was admitted, itself included."""
    waited: float
    """Seconds this request waited for a slot or a Retry-After pause."""


class _UsualLatency:
    """The smaller of the minima of the current and the previous window of samples."""

    __slots__ = ("count", "current", "previous", "seen")

    def __init__(self) -> None:
        self.current = float("inf")
        self.previous = float("inf")
        self.count = 0  # samples in the current window
        self.seen = 0  # samples ever (for the warm-up)

    def add(self, latency: float, window: int) -> None:
        if latency < self.current:
            self.current = latency
        self.count += 1
        self.seen += 1
        if self.count >= window:
            self.previous, self.current, self.count = self.current, float("inf"), 0

    @property
    def value(self) -> float:
        return min(self.current, self.previous)


class AdaptiveLimit:
    """An adjustable semaphore for API requests, sized by AIMD from the answers (module docs).

    Callers: ``ticket = await limit.acquire()`` before sending, then ``limit.release(ticket,
    outcome)`` or ``limit.observe(ticket, ...)`` once the answer (or the error) is in, always,
    also when the request raised. ``pause(seconds)`` holds every admission for a Retry-After.
    """

    def __init__(self, options: AdaptiveLimitOptions | None = None, *, clock: Clock = REAL_CLOCK):
        self.options = options or AdaptiveLimitOptions()
        self._clock = clock
        self._limit = self.options.initial  # invariant: minimum <= _limit <= maximum
        self._slow_start = True  # until the first cut: +1 per good answer
        self._credit = 0  # good answers since the last +1 after slow start; < _limit
        # Sequence of the last admission that found the limit full (or queued): answers to
        # tickets within one limit's worth of it may grow the limit; an idle client's never do.
        self._full_at = -(10**9)
        # invariant: <= _limit, except just after a cut (then no slot is handed out until
        # enough answers came back); includes slots handed to waiters not yet running
        self._in_flight = 0
        self._sequence = 0
        self._cut_after = 0  # answers to tickets with sequence < this cannot cut again
        self._resume_at = 0.0  # monotonic time before which nothing is admitted (Retry-After)
        # Heap of (-priority, arrival, future): highest priority first, FIFO within one. A
        # cancelled waiter's entry stays until popped (its future is done); ``_waiting`` counts
        # the live ones (invariant: == entries whose future is not done).
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = 0
        self._waiting = 0
        self._usual: dict[str, _UsualLatency] = {}
        self._slowness = 0.0  # EWMA of latency / allowed latency; > 1: the server queues us
        self.fair_queuing = False
        """The server has API Priority and Fairness (``note_fair_queuing``): it queues flows
        fairly and says 429 when ours exceeds its share, so latency is not read at all."""
        self.cuts = {"throttled": 0, "slow": 0}
        """Cuts so far by reason (the client exports them as a counter)."""

    # -- state, for metrics and tests ----------------------------------------------------------

    @property
    def limit(self) -> int:
        """Requests that may be in flight now."""
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def paused_for(self) -> float:
        """Seconds left of the current Retry-After pause (0 when none)."""
        return max(0.0, self._resume_at - self._clock.monotonic())

    # -- admission -----------------------------------------------------------------------------

    def try_acquire(self) -> Ticket | None:
        """A ticket now when no pause holds admissions and a slot is free with nobody waiting
        (the common case, without a coroutine); else None: call ``acquire``."""
        if self._resume_at and self._resume_at > self._clock.monotonic():
            return None
        return self._ticket(0.0) if self._take_free_slot() else None

    async def acquire(self, *, priority: int = 0) -> Ticket:
        """Wait for a Retry-After pause to end and for a free slot; return the request's ticket.

        A freed slot is handed to the waiter of the highest ``priority``, the oldest among
        equals (counted as in flight from then on), so a newcomer cannot take it in between.
        Low priorities can wait as long as higher ones keep coming: callers give a high priority
        only to requests bounded by something else (one status write per job change).
        """
        start = self._clock.monotonic()
        await self.wait_out_pause()
        if not self._take_free_slot():
            self._full_at = self._sequence + 1
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._arrivals += 1
            heapq.heappush(self._waiters, (-priority, self._arrivals, waiter))
            self._waiting += 1
            try:
                await waiter
                await self.wait_out_pause()  # a pause that began while we queued
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._in_flight -= 1  # handed a slot we will not use: pass it on
                    self._wake()
                elif not waiter.done():
                    waiter.cancel()  # its heap entry is skipped when popped
                    self._waiting -= 1
                else:
                    self._waiting -= 1  # cancelled while queued
                raise
        return self._ticket(self._clock.monotonic() - start)

    @property
    def waiting(self) -> int:
        """Requests queued for a slot now."""
        return self._waiting

    def _take_free_slot(self) -> bool:
        """Take a slot if one is free and nobody waits for it (waiters go first)."""
        if self._in_flight >= self._limit or self._waiting:
            return False
        self._in_flight += 1
        if self._in_flight == self._limit:
            self._full_at = self._sequence + 1
        return True

    def _ticket(self, waited: float) -> Ticket:
        self._sequence += 1
        return Ticket(self._sequence, self._in_flight, waited)

    async def wait_out_pause(self) -> None:
        """Wait for a Retry-After pause to end, taking no slot (watches, which are
        long-running, call it directly)."""
        while (left := self._resume_at - self._clock.monotonic()) > 0:
            await self._clock.sleep(left)

    def pause(self, seconds: float) -> None:
        """Admit nothing for ``seconds`` (a server's Retry-After); a longer pause wins."""
        self._resume_at = max(self._resume_at, self._clock.monotonic() + seconds)

    # -- answers -------------------------------------------------------------------------------

    def observe(
        self,
        ticket: Ticket,
        *,
        kind: str,
        latency: float,
        status: int | None,
        retry_after: float | None = None,
        timed_out: bool = False,
    ) -> Outcome:
        """Release ``ticket`` for the answer to a request of ``kind`` (verb and resource, e.g.
        ``"POST pods"``) that took ``latency`` seconds; return how the answer was read.

        ``status``: the HTTP status, ``None`` when no answer came. A 429, or a 5xx with a
        ``retry_after`` (seconds, from the header), is ``throttled`` and pauses admissions for
        that long; a timeout (``timed_out``) is ``slow``; a 2xx is read by its latency; anything
        else (a 404, a refused connection) says nothing about load.
        """
        outcome: Outcome
        if timed_out:
            outcome = "slow"
        elif status is None:
            outcome = "neutral"
        elif status == 429 or (status >= 500 and retry_after is not None):
            outcome = "throttled"
            if retry_after is not None:
                self.pause(retry_after)
        elif status < 300:
            outcome = self._read_latency(kind, latency)
        else:
            outcome = "neutral"
        self.release(ticket, outcome)
        return outcome

    def note_fair_queuing(self) -> None:
        """The server answered with API Priority and Fairness headers: from now on only 429s,
        Retry-After and timeouts cut the limit (module docs)."""
        self.fair_queuing = True

    def _read_latency(self, kind: str, latency: float) -> Outcome:
        if self.fair_queuing:
            return "ok"
        opts = self.options
        usual = self._usual.get(kind)
        if usual is None:
            usual = self._usual[kind] = _UsualLatency()
        usual.add(latency, opts.window)
        if usual.seen < opts.warmup:
            return "ok"
        allowed = usual.value * opts.latency_tolerance + opts.latency_slack
        smoothing = opts.latency_smoothing
        # Each answer counts at most twice the allowed latency: one garbage-collection pause of
        # the server must not outweigh a run of normal answers.
        ratio = min(latency / allowed, 2.0)
        self._slowness = (1 - smoothing) * self._slowness + smoothing * ratio
        return "slow" if self._slowness > 1.0 else "ok"

    def release(self, ticket: Ticket, outcome: Outcome) -> None:
        """Free the slot of ``ticket`` and adjust the limit by ``outcome``."""
        self._in_flight -= 1
        opts = self.options
        if outcome in ("throttled", "slow"):
            if ticket.sequence > self._cut_after:
                if outcome == "throttled":
                    self._limit = max(opts.minimum, int(self._limit * opts.backoff))
                else:
                    floor = min(opts.latency_floor, self._limit)  # never raises the limit
                    self._limit = max(floor, int(self._limit * opts.latency_backoff))
                self._slow_start = False
                self._credit = 0
                self._cut_after = self._sequence  # one cut per round trip
                self._slowness = 0.0
                self.cuts[outcome] += 1
        elif outcome == "ok" and ticket.sequence <= self._full_at + self._limit:
            if self._slow_start:
                self._limit = min(opts.maximum, self._limit + 1)
            else:
                self._credit += 1  # +1 per round trip: once per limit's worth of good answers
                if self._credit >= self._limit:
                    self._credit = 0
                    self._limit = min(opts.maximum, self._limit + 1)
        self._wake()

    def _wake(self) -> None:
        """Hand free slots to the oldest waiters (each counts as in flight from now)."""
        while self._in_flight < self._limit and self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)
                self._waiting -= 1
                self._in_flight += 1
