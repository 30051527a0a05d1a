"""Trainer's runtime plugins that build objects beside the JobSet.

Each module registers its ``SideObjectBuilder`` in ``objects.SIDE_OBJECT_BUILDERS`` when
imported; importing this package imports them all. What a plugin changes in the JobSet itself
(env, volumes, counts) lives in ``jobset_build.py``'s phases, so the JobSet stays one pure build.
"""

from __future__ import annotations
