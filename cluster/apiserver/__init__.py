"""An asyncio Kubernetes API server good enough that kubectl, kubernetes-asyncio, the sync
client and the Kubeflow SDK cannot tell it from a real one for what kubetrain does.

May import: the standard library and third-party packages only.
"""
