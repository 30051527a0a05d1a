"""List+watch caches: reflectors, indexed stores, listers and the shared informer factory.

May import: the standard library, third-party packages and ``kubetrain.base``.

Data flows API server -> ``Reflector`` (list/watch, ``reflector.py``) -> transform
(``transforms.py``) -> ``Store`` (indexes, ``store.py``) -> handlers (``event_handlers.py``); readers use
a ``Lister`` (``lister.py``). ``SharedInformer`` (``informer.py``) ties one of each together and
``SharedInformerFactory`` (``factory.py``) shares informers between controllers. HTTP comes from a
``Transport`` (``transport.py``), implemented by ``kubetrain.engine.client.ApiClient``.
"""

from .event_handlers import EventHandler, FunctionHandler, ResourceEventHandler, is_resync
from .factory import SharedInformerFactory
from .indexers import (
    CONTROLLER_UID_INDEX,
    NAMESPACE_INDEX,
    controller_uid_index,
    label_index,
    label_index_name,
    namespace_index,
)
from .informer import InformerOptions, SharedInformer
from .lister import Lister
from .reflector import Reflector, ReflectorOptions
from .resource import ResourceRef
from .store import Store
from .tombstone import DeletedFinalStateUnknown
from .transforms import metadata_only, strip_managed_fields
from .transport import ApiStatusError, Transport

__all__ = [
    "CONTROLLER_UID_INDEX",
    "NAMESPACE_INDEX",
    "ApiStatusError",
    "DeletedFinalStateUnknown",
    "EventHandler",
    "FunctionHandler",
    "InformerOptions",
    "Lister",
    "Reflector",
    "ReflectorOptions",
    "ResourceEventHandler",
    "ResourceRef",
    "SharedInformer",
    "SharedInformerFactory",
    "Store",
    "Transport",
    "controller_uid_index",
    "is_resync",
    "label_index",
    "label_index_name",
    "metadata_only",
    "namespace_index",
    "strip_managed_fields",
]
