"""The simulated Nodes: registration with capacity and a Ready condition, and Lease heartbeats.

Like a kubelet, each node is created once (or adopted when it exists, its status refreshed) and
then kept alive by renewing a Lease in ``kube-node-lease`` every ``lease_renew_seconds``: one small
PUT per node per period, the cheap heartbeat kube uses instead of rewriting node status.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import LEASES, NODES
from kubetrain.informers.transport import ApiStatusError

from .options import NodeSimOptions
from .podstatus import rfc3339
from .quantity import PODS, Resources, milli

__all__ = ["GPU", "LEASE_NAMESPACE", "NodeRegistrar", "host_ip", "node_allocatable"]

GPU = "nvidia.com/gpu"
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.30.0-kubetrain-sim"

log = logging.getLogger(__name__)


def host_ip(index: int) -> str:
    """The InternalIP of node ``index`` (172.18.0.0/16, like a kind network)."""
    return f"172.18.{index // 254}.{index % 254 + 1}"


def pod_cidr_prefix(index: int) -> str:
    """The first three octets of node ``index``'s pod /24 (10.244.0.0/14 and up)."""
    return f"10.{244 + index // 256}.{index % 256}"


def _capacity(options: NodeSimOptions) -> dict[str, str]:
    cap = {
        "cpu": options.cpu,
        "memory": options.memory,
        "pods": str(options.pods),
        "ephemeral-storage": "100Gi",
    }
    if options.gpus:
        cap[GPU] = str(options.gpus)
    return cap


def node_allocatable(options: NodeSimOptions) -> Resources:
    """What each node offers the scheduler, in milli-units."""
    out = {
        name: milli(value, field=f"NodeSimOptions.{name}")
        for name, value in _capacity(options).items()
    }
    out[PODS] = options.pods * 1000
    return out


def node_labels(options: NodeSimOptions, name: str) -> dict[str, str]:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "kubetrain-sim",
        "type": "kubetrain-sim",
    }
    labels.update(dict(options.node_labels))
    return labels


def node_object(options: NodeSimOptions, index: int, *, at: datetime) -> dict[str, Any]:
    """The Node a simulated kubelet registers (status included), its conditions stamped ``at``."""
    name = f"{options.node_name_prefix}{index}"
    now = rfc3339(at.timestamp())
    cap = _capacity(options)

    def cond(ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": ctype,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels(options, name),
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kubetrain.dev/simulated": "true"},
        },
        "spec": {
            "podCIDR": f"{pod_cidr_prefix(index)}.0/24",
            "podCIDRs": [f"{pod_cidr_prefix(index)}.0/24"],
            "providerID": f"kubetrain://{name}",
        },
        "status": {
            "capacity": dict(cap),
            "allocatable": dict(cap),
            "conditions": [
                cond(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                cond(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                cond(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": host_ip(index)},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": f"kubetrain-{index}",
                "systemUUID": f"kubetrain-{index}",
                "bootID": f"kubetrain-{index}",
                "kernelVersion": "6.0.0-kubetrain",
                "osImage": "kubetrain simulated node",
                "containerRuntimeVersion": "containerd://1.7.0-sim",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def _micro_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeRegistrar:
    """Registers the nodes and renews their leases until stopped."""

    def __init__(
        self, client: ApiClient, options: NodeSimOptions, *, clock: Clock = REAL_CLOCK
    ) -> None:
        self._client = client
        self._options = options
        self._clock = clock
        self._leases: dict[str, dict[str, Any]] = {}
        self._uids: dict[str, str] = {}

    async def register(self) -> None:
        """Create every node (or refresh an existing one's status) and its lease."""
        await asyncio.gather(*(self._register_one(i) for i in range(self._options.nodes)))

    async def _register_one(self, index: int) -> None:
        desired = node_object(self._options, index, at=self._clock.utcnow())
        name = desired["metadata"]["name"]
        try:
            stored = await self._client.create(NODES, desired)
        except ApiStatusError as e:
            if not e.is_already_exists:
                raise
            stored = await self._client.get(NODES, None, name)
        if stored.get("status", {}).get("conditions") != desired["status"]["conditions"]:
            stored = dict(stored, status=desired["status"])
            stored = await self._client.update_status(NODES, stored)
        self._uids[name] = stored["metadata"].get("uid", "")
        await self._renew(name)

    def _lease(self, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": LEASE_NAMESPACE,
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": name,
                        "uid": self._uids.get(name, ""),
                    }
                ],
            },
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": 40,
                "renewTime": _micro_time(self._clock.utcnow()),
            },
        }

    async def _renew(self, name: str) -> None:
        """One heartbeat: PUT the cached lease with a new renewTime (create/re-read as needed)."""
        cached = self._leases.get(name)
        for _ in range(3):
            try:
                if cached is None:
                    try:
                        cached = await self._client.create(LEASES, self._lease(name))
                        self._leases[name] = cached
                        return
                    except ApiStatusError as e:
                        if not e.is_already_exists:
                            raise
                        cached = await self._client.get(LEASES, LEASE_NAMESPACE, name)
                spec = dict(
                    cached.get("spec") or {},
                    holderIdentity=name,
                    renewTime=_micro_time(self._clock.utcnow()),
                )
                spec.setdefault("leaseDurationSeconds", 40)
                self._leases[name] = await self._client.update(LEASES, dict(cached, spec=spec))
                return
            except ApiStatusError as e:
                if not (e.is_conflict or e.is_not_found):
                    raise
                cached = None
                self._leases.pop(name, None)

    async def heartbeat_forever(self) -> None:
        """Renew every node's lease each ``lease_renew_seconds``; errors are logged, not fatal."""
        names = self._options.node_names()
        while True:
            await self._clock.sleep(self._options.lease_renew_seconds)
            for name in names:
                try:
                    await self._renew(name)
                except (ApiStatusError, ConnectionError, TimeoutError) as e:
                    log.warning("lease renewal of node %s failed: %s", name, e)
