"""The embedded cluster: an in-process Kubernetes API server and a node simulator.

The API server (``kubetrain.cluster.apiserver``) imports only the standard library and
third-party packages. The node simulator (``kubetrain.cluster.nodesim``) is a client like any
kubelet and may use ``kubetrain.informers`` and ``kubetrain.engine``, never ``reconcilers``.
"""
