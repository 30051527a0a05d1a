"""One adapter per kubeflow.org/v1 kind: only what differs between kinds (env, success rules,
validation, defaults, extra objects). ``ADAPTERS`` maps the kind name to its adapter.
"""

from __future__ import annotations

from kubetrain.reconcilers.common.kind_adapter import KindAdapter
from kubetrain.reconcilers.kinds.jax import JAX
from kubetrain.reconcilers.kinds.mpi import MPI
from kubetrain.reconcilers.kinds.paddle import PADDLE
from kubetrain.reconcilers.kinds.pytorch import PYTORCH
from kubetrain.reconcilers.kinds.tensorflow import TENSORFLOW
from kubetrain.reconcilers.kinds.xgboost import XGBOOST

ADAPTERS: dict[str, KindAdapter] = {
    a.kind.kind: a for a in (TENSORFLOW, PYTORCH, XGBOOST, MPI, PADDLE, JAX)
}

__all__ = ["ADAPTERS", "KindAdapter"]
