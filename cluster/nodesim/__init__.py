"""A node simulator: registers Nodes, schedules pods and drives their lifecycle, reaching the
API server only through HTTP, like a kubelet, so it works against any API server.
"""
