"""A node simulator: registers Nodes, schedules pods and drives their lifecycle, reaching the
API server only through HTTP, like a kubelet, so it works against any API server.

It is a client like a kubelet plus a scheduler (``kubetrain.engine.client.ApiClient`` and a pod
informer from ``kubetrain.informers``); it never imports the embedded API server.

- Nodes ``kubetrain-node-0..N-1`` with cpu, memory, pods and ``nvidia.com/gpu``, Ready, and a Lease
  in ``kube-node-lease`` renewed every 10 s (``nodes.py``).
- Scheduler for pods of ``schedulerName`` default-scheduler, volcano and scheduler-plugins-scheduler
  (configurable), by free capacity, tracked incrementally, higher PriorityClass first; Unschedulable
  with kube's message otherwise (``scheduler.py``, ``shapes.py``, ``podwrites.py``). Members of a
  Volcano or scheduler-plugins PodGroup are bound all or nothing, and the group's status is written
  as each project writes it (``gang_decisions.py``, ``podgroup.py``, ``gangs.py``,
  ``gangstatus.py``); a Volcano group is admitted by its Queue (state, capability; queues take freed
  room by weight), and each Queue's status is written (``volcano_queues.py``, ``queues.py``). With
  ``preemption`` (``--preemption``, off by default) a pod or gang that fits nowhere evicts
  lower-priority pods, whole groups for gangs (``preemptor.py``, ``preemption.py``,
  ``evictions.py``).
- Kubelets: Pending -> Running -> Succeeded/Failed with full container statuses, in-place
  restarts, graceful deletion, logs (``kubelet.py``, ``timeline.py``, ``podstatus.py``).

Per-pod behaviour, from annotations (prefix ``sim.kubetrain.dev/``; defaults from
``NodeSimOptions``):

``run-seconds``
    How long each container run lasts (default ``default_run_seconds``, 1).
``exit-code``
    Exit code of every container's final run (default 0).
``exit-code-<container>``
    That container's final exit code (also for init containers, default 0), overriding
    ``exit-code``.
``fail-after-seconds``
    Failing runs last this long instead of ``run-seconds``. Without ``restarts`` it makes the
    final exit code 1 (unless ``exit-code`` says otherwise); with ``restarts`` it times the
    crashes and the final run still exits ``exit-code`` (default 0).
``restarts``
    Runs that crash (exit ``exit-code`` if non-zero, else 1) before the final one. Under
    restartPolicy OnFailure/Always each is restarted in place (restartCount + 1, lastState
    terminated); under Never the first crash fails the pod.
``start-delay-seconds``
    Image pull/create time, shown as ContainerCreating (default ``default_start_delay_seconds``, 0).
``log``
    Literal text each container logs at the start of each run.
``log-lines``
    Number of generated lines each container logs per run (default ``default_log_lines``, 1).

After the final run: Never gives Succeeded (all 0) or Failed; OnFailure gives Succeeded when all
exited 0, else the failed container waits in CrashLoopBackOff (steady, pod Running); Always keeps
the final run running forever. ``restart_delay_seconds`` adds a CrashLoopBackOff stage between a
crash and its restart.

Entry points: ``EmbeddedCluster(nodes=N)`` / ``kubetrain cluster --nodes N`` (in process, via
``start_for_cluster``) and ``python -m kubetrain.cluster.nodesim --kubeconfig FILE --nodes N``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.engine.config import load_kubeconfig

from .behaviour import PREFIX, PodBehaviour, behaviour_of
from .logsink import DirectLogSink, HttpLogSink, LogSink
from .options import DEFAULT_SCHEDULER, GANG_SCHEDULERS, NodeSimOptions
from .simulator import NodeSimulator

__all__ = [
    "DEFAULT_SCHEDULER",
    "GANG_SCHEDULERS",
    "PREFIX",
    "DirectLogSink",
    "HttpLogSink",
    "LogSink",
    "NodeSimOptions",
    "NodeSimulator",
    "PodBehaviour",
    "behaviour_of",
    "start_for_cluster",
]


async def start_for_cluster(cluster: Any) -> NodeSimulator:
    """Start a simulator for an ``EmbeddedCluster`` (its ``nodes``, ``kubeconfig_path`` and, when
    set, ``nodesim_options``); the caller awaits ``stop()``.

    Logs go straight into the embedded server's buffers when the cluster exposes them
    (``cluster.api.pod_logs.append``), over HTTP otherwise. The nodes run on the server's clock
    (``cluster.api.options.clock``) when it has one, so a fake-time cluster is fake throughout.
    """
    options = getattr(cluster, "nodesim_options", None) or NodeSimOptions()
    options = replace(options, nodes=int(cluster.nodes))
    append = getattr(getattr(getattr(cluster, "api", None), "pod_logs", None), "append", None)
    sink: LogSink | None = DirectLogSink(append) if callable(append) else None
    server_options = getattr(getattr(cluster, "api", None), "options", None)
    clock: Clock = getattr(server_options, "clock", None) or REAL_CLOCK
    sim = NodeSimulator.for_config(
        await load_kubeconfig(cluster.kubeconfig_path), options, log_sink=sink, clock=clock
    )
    try:
        await sim.start()
    except BaseException:
        await sim.stop()
        raise
    return sim
