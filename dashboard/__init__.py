"""The job dashboard: a local web page over shared informers (docs/dashboard.md).

``Dashboard`` (``server.py``) serves the page in ``static/``, a JSON API and server-sent events
from one set of informers over the user's own client; see the contract in docs/dashboard.md.
"""

from __future__ import annotations

from .options import DashboardOptions
from .server import Dashboard

__all__ = ["Dashboard", "DashboardOptions"]
