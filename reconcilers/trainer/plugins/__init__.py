"""Trainer's runtime plugins that build objects beside the JobSet (``objects.py`` lists their
builders) or, for the status server, change it after the build.

What a plugin changes in the JobSet during the build itself (env, volumes, counts) lives in
``jobset_build.py``'s phases (with ``mpi_policy.py`` and ``torchtune.py``), so the JobSet stays
one pure build. Plugins import ``side_objects.py``, never ``objects.py``.
"""

from __future__ import annotations
