"""JobSet (``jobset.x-k8s.io/v1alpha2``, sigs.k8s.io/jobset v0.12 semantics) in the embedded
cluster, as the real JobSet controller runs on a real cluster.

Two halves, like the real project's webhook server and controller:

- the server side (``install.py``): the release's CRD (``crd.yaml``) and its webhooks'
  defaulting (``defaults.py``) and validation (``validation.py``, with the CRD's CEL rules) as
  admission plugins of the embedded API server (``admission.py``);
- the controller (``controller.py``, ``reconcile.py``, one concept a file: ``childjobs.py``,
  ``children.py``, ``conditions.py``, ``policies.py``, ``naming.py``, ``spec.py``, ``api.py``),
  an HTTP client of the server like the kcm controllers, which run the child batch/v1 Jobs.

``EmbeddedCluster(kube_controllers=True)`` installs both (``manager.start_for_cluster``).
"""

from __future__ import annotations

from .controller import JobSetController, JobSetControllerOptions
from .install import install_jobset
from .manager import JobSetManager, start_for_cluster

__all__ = [
    "JobSetController",
    "JobSetControllerOptions",
    "JobSetManager",
    "install_jobset",
    "start_for_cluster",
]
