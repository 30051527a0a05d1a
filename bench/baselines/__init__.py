"""Peer baselines run side by side with kubetrain in the same scenario (BENCHMARKS.md):

- ``raw``: a bare client that makes only the minimal writes of each job (the physical floor);
- ``kopf_operator``: a straightforward kopf PyTorchJob operator (run with ``kopf run``).

Both build the same pods and services (``children``) so that only the machinery differs.
"""
