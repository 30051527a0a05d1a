"""kubernetes-asyncio's configuration loaders, imported without its API client.

Why: importing any ``kubernetes_asyncio`` module runs its package ``__init__``, which builds every
API class and model (+37 MiB RSS and half a second in each process that loads a kubeconfig); the
loaders need only ``client.Configuration``. So ``loaders()`` imports the ``config`` modules behind
stand-in parent packages that hold just that, then takes the stand-ins out of ``sys.modules``
again, so a later ``import kubernetes_asyncio`` (kopf, tests) gets the real package. A process
that has already imported the real package uses it as it is.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass
from typing import Any

__all__ = ["Loaders", "loaders"]

_PACKAGE = "kubernetes_asyncio"


@dataclass(frozen=True, slots=True)
class Loaders:
    """The classes ``engine.config`` uses (untyped: kubernetes-asyncio ships no stubs)."""

    Configuration: Any
    ConfigException: type[Exception]
    KubeConfigLoader: Any
    KubeConfigMerger: Any
    InClusterConfigLoader: Any


def _from(modules: dict[str, types.ModuleType]) -> Loaders:
    kube_config = modules[f"{_PACKAGE}.config.kube_config"]
    return Loaders(
        Configuration=modules[f"{_PACKAGE}.client.configuration"].Configuration,
        ConfigException=modules[f"{_PACKAGE}.config.config_exception"].ConfigException,
        KubeConfigLoader=kube_config.KubeConfigLoader,
        KubeConfigMerger=kube_config.KubeConfigMerger,
        InClusterConfigLoader=modules[f"{_PACKAGE}.config.incluster_config"].InClusterConfigLoader,
    )


_NEEDED = (
    f"{_PACKAGE}.client.configuration",
    f"{_PACKAGE}.config.config_exception",
    f"{_PACKAGE}.config.kube_config",
    f"{_PACKAGE}.config.incluster_config",
)


@functools.cache
def loaders() -> Loaders:
    """The loader classes, imported once per process (see the module docstring)."""
    if _PACKAGE in sys.modules:  # the real package is there already: nothing to save
        return _from({name: importlib.import_module(name) for name in _NEEDED})
    spec = importlib.util.find_spec(_PACKAGE)  # a top-level name: finds without importing
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("kubernetes-asyncio is not installed; pip install kubernetes-asyncio")
    package = types.ModuleType(_PACKAGE)
    package.__path__ = list(spec.submodule_search_locations)
    client = types.ModuleType(f"{_PACKAGE}.client")
    client.__path__ = [f"{p}/client" for p in package.__path__]
    sys.modules[_PACKAGE] = package
    sys.modules[f"{_PACKAGE}.client"] = client
    try:
        configuration = importlib.import_module(f"{_PACKAGE}.client.configuration")
        client.Configuration = configuration.Configuration  # type: ignore[attr-defined]
        client.ApiClient = object  # type: ignore[attr-defined]  # named by kube_config, unused
        modules = {name: importlib.import_module(name) for name in _NEEDED}
    finally:
        for name in [n for n in sys.modules if n == _PACKAGE or n.startswith(_PACKAGE + ".")]:
            del sys.modules[name]
    return _from(modules)
