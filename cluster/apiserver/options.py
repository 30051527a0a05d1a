"""``ApiServerOptions``: the embedded API server's knobs, each with a laptop-sized default."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubetrain.base.clock import REAL_CLOCK, Clock

from .gc import GcOptions
from .store import StorageBackend

__all__ = ["ApiServerOptions", "Authorizer"]

Authorizer = Callable[[Mapping[str, Any]], tuple[bool, str]]
"""Decides a SubjectAccessReview from its ``spec``: ``(allowed, reason)`` (``reviews.py``)."""


@dataclass(kw_only=True)
class ApiServerOptions:
    """Server options; every default is what a developer laptop needs.

    - ``watch_history_size``: events retained per resource for watches from a resourceVersion
      (older -> 410 Expired). Tests set it small to provoke 410.
    - ``watch_buffer_size``: events a slow watcher may lag behind before it is closed.
    - ``bookmark_interval_seconds``: idle time after which a watch with
      ``allowWatchBookmarks=true`` gets a BOOKMARK.
    - ``watch_default_timeout_seconds``: watch length when the client gives no timeoutSeconds.
    - ``log_follow_poll_seconds``: how often a followed log re-checks its pod when idle.
    - ``service_cidr``: where service clusterIPs come from.
    - ``git_version``: what ``/version`` reports.
    - ``backend``: durable storage (None: memory only).
    - ``max_body_bytes``: largest request body accepted; a larger one is refused with 413
      RequestEntityTooLarge (kube-apiserver's ``MaxRequestBodyBytes``, 3 MiB).
    - ``controllers``: run the garbage collector and the namespace controller (kube-controller-
      manager's jobs, ``gc.py``/``namespaces.py``); off only for tests of bare store semantics.
    - ``gc``: garbage collector options.
    - ``clock``: the wall time objects are stamped with (creation, deletion, conditions, logs).
    - ``tokens``: bearer token -> user name; set, every request but health and version needs
      one of these tokens (``authn.py``; 401 otherwise). None: no authentication. TokenReviews
      authenticate these tokens too (none without a table: ``reviews.py``).
    - ``authorizer``: decides SubjectAccessReviews (``reviews.py``); None: every authenticated
      subject is allowed (the embedded server has no RBAC).
    """

    watch_history_size: int = 10_000
    watch_buffer_size: int = 10_000
    bookmark_interval_seconds: float = 1.0
    watch_default_timeout_seconds: float = 1800.0
    log_follow_poll_seconds: float = 1.0
    service_cidr: str = "10.96.0.0/12"
    git_version: str = "v1.34.0-kubetrain"
    backend: StorageBackend | None = None
    max_body_bytes: int = 3 * 1024 * 1024
    controllers: bool = True
    gc: GcOptions = field(default_factory=GcOptions)
    tokens: dict[str, str] | None = None
    authorizer: Authorizer | None = None
    clock: Clock = REAL_CLOCK
