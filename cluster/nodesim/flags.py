"""The simulator's command-line flags, shared by ``python -m kubetrain.cluster.nodesim`` and
``kubetrain cluster``/``kubetrain up`` (which declare their own ``--nodes``): generated from
``NodeSimOptions``' fields."""

from __future__ import annotations

import argparse

from kubetrain.base import flags

from .options import NodeSimOptions

__all__ = ["add_nodesim_flags", "options_from_args"]


def add_nodesim_flags(p: argparse.ArgumentParser, *, with_nodes: bool = True) -> None:
    """The simulator's flags; ``with_nodes=False`` for a command with its own ``--nodes``."""
    flags.add_flags(p, NodeSimOptions, exclude=() if with_nodes else ("nodes",))


def options_from_args(args: argparse.Namespace) -> NodeSimOptions:
    """The options of parsed ``add_nodesim_flags`` flags (and the command's ``--nodes``)."""
    return flags.options_from_args(NodeSimOptions, args)
