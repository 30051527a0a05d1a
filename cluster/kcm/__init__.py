"""kube-controller-manager's controllers that API semantics need, as clients of any API server.

A real cluster runs a Job for you (``pkg/controller/job``) and deletes finished Jobs past their
``ttlSecondsAfterFinished`` (``pkg/controller/ttlafterfinished``); the embedded API server alone
only stores them. These controllers run next to it like the node simulator does: through HTTP
(``engine.client.ApiClient``), shared informers and work queues, never the server's internals,
so they behave the same against any API server.

``EmbeddedCluster(kube_controllers=True)`` (the default) starts them through
``start_for_cluster``; ``manager.py`` holds what runs.
"""

from __future__ import annotations

from .manager import KubeControllerManager, KubeControllerManagerOptions, start_for_cluster

__all__ = ["KubeControllerManager", "KubeControllerManagerOptions", "start_for_cluster"]
