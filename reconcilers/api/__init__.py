"""The kubeflow.org/v1 API as data: the per-kind table and the CRDs generated from it.

Everything that differs between kinds at the API level (plural, replica map field, replica types,
default container and port, default restart policy, scale subresource) lives in ``kinds.py``; the
CRDs in ``deploy/crds/`` are generated from it by ``crds.py`` so the two cannot drift.
"""
