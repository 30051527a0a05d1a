"""Kubeflow Trainer v2 (``trainer.kubeflow.org/v1alpha1``): TrainJob, TrainingRuntime and
ClusterTrainingRuntime, as Kubeflow Trainer v2.3.0 ships them.

What is here so far: the release's CRDs (``crds/``, read by ``crds.py``) and its built-in
ClusterTrainingRuntimes (``runtimes/``, read by ``runtimes.py``), both vendored by
``tools/deploy/vendor_trainer.py``; and a first TrainJob controller: ``jobset_build.py`` (pure:
the JobSet of a TrainJob for the torch, jax, xgboost and plain runtimes; ``strategic_merge.py``
for runtimePatches), ``reconciler.py`` and ``wiring.py`` (the JobSet applied, status copied
from it, suspend, activeDeadlineSeconds). Not yet: MPI, Flux and TorchTune runtimes,
initializers beyond their env, PodGroups, runtime snapshots, webhooks, metrics, trainerStatus.
"""
