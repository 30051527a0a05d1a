"""Where simulated containers' log lines go.

A real API server proxies ``pods/{name}/log`` to the kubelet; the embedded one keeps log buffers
that a simulator fills, either in process (``DirectLogSink`` over ``PodLogs.append``) or over HTTP
(``HttpLogSink``: ``POST /apis/sim.kubetrain.dev/v1/namespaces/{ns}/pods/{pod}/log?container=c``,
text/plain). Against a server without that endpoint (a real kube-apiserver answers 404) the HTTP
sink turns itself off after one warning: logs are out of scope there and must not fail the pod.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from kubetrain.engine.client import ApiClient
from kubetrain.informers.transport import ApiStatusError

__all__ = ["SIM_LOG_GROUP", "DirectLogSink", "HttpLogSink", "LogSink"]

SIM_LOG_GROUP = "sim.kubetrain.dev"

log = logging.getLogger(__name__)


class LogSink(Protocol):
    """Receives a container's new log text (lines separated by newlines)."""

    async def write(self, namespace: str, pod: str, container: str, text: str) -> None:
        """Deliver ``text``; must not raise for a server that keeps no logs."""
        ...


class DirectLogSink:
    """In-process delivery to a callable shaped like ``PodLogs.append(ns, pod, container, text)``."""

    def __init__(self, append: Callable[[str, str, str, str], object]) -> None:
        self._append = append

    async def write(self, namespace: str, pod: str, container: str, text: str) -> None:
        self._append(namespace, pod, container, text)


class HttpLogSink:
    """Delivery over the embedded server's simulator endpoint; disabled once the server lacks it."""

    def __init__(self, client: ApiClient) -> None:
        self._client = client
        self.enabled = True
        """False after the server answered 404/405 (it keeps no simulated logs)."""

    async def write(self, namespace: str, pod: str, container: str, text: str) -> None:
        if not self.enabled or not text:
            return
        path = f"/apis/{SIM_LOG_GROUP}/v1/namespaces/{namespace}/pods/{pod}/log"
        try:
            await self._client.request_bytes(
                "POST",
                path,
                query={"container": container},
                body=text.encode(),
                content_type="text/plain",
            )
        except ApiStatusError as e:
            if e.code in (404, 405) and "pods" not in e.reason.lower():
                self.enabled = False
                log.warning(
                    "the API server has no %s log endpoint (%s); simulated pod logs are off",
                    SIM_LOG_GROUP,
                    e,
                )
            else:
                log.debug("log delivery for %s/%s failed: %s", namespace, pod, e)
        except (ConnectionError, TimeoutError) as e:
            log.debug("log delivery for %s/%s failed: %s", namespace, pod, e)
