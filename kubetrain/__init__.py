"""kubetrain: an asyncio operator for distributed training jobs (Kubeflow Training v1 API).

This package is the application shell: the command line, configuration and wiring. The rooms
live beside it as ``kubetrain.engine``, ``kubetrain.informers``, ``kubetrain.reconcilers``,
``kubetrain.cluster`` and ``kubetrain.bench``.
"""

__version__ = "0.1.0"
