"""Index functions for ``Store``: the lookups controllers make on every event.

A controller that reacts to a pod event must find the pod's job, and a job reconcile must find its
pods, without scanning the cache. These helpers build the common ``IndexFunc``s:

- ``NAMESPACE_INDEX`` (every store has it): value = the namespace.
- ``CONTROLLER_UID_INDEX``: value = the UID of the ``ownerReferences`` entry with
  ``controller: true`` (at most one by API validation).
- ``label_index(key)``: value = ``namespace/<label value>`` for namespaced objects (``<label value>``
  for cluster-scoped ones), so that one job name in two namespaces stays two index values. Use
  ``label_index_name(key)`` as its name; listers recognise that name and use it for label selectors.
"""

from __future__ import annotations

from kubetrain.base.objects import Obj, controller_uid

from .objects import IndexFunc

__all__ = [
    "CONTROLLER_UID_INDEX",
    "NAMESPACE_INDEX",
    "controller_uid_index",
    "label_index",
    "label_index_name",
    "label_index_value",
    "namespace_index",
]

NAMESPACE_INDEX = "namespace"
CONTROLLER_UID_INDEX = "controller-uid"
_LABEL_INDEX_PREFIX = "label:"


def namespace_index(obj: Obj) -> list[str]:
    """The object's namespace; cluster-scoped objects are not indexed."""
    namespace = obj["metadata"].get("namespace")
    return [namespace] if namespace else []


def controller_uid_index(obj: Obj) -> list[str]:
    """The UID of the controlling owner (``ownerReferences[].controller == true``), if any."""
    uid = controller_uid(obj)
    return [uid] if uid else []


def label_index_name(label_key: str) -> str:
    """The conventional index name for ``label_index(label_key)``: ``label:<key>``."""
    return _LABEL_INDEX_PREFIX + label_key


def label_index_value(namespace: str | None, label_value: str) -> str:
    """The value ``label_index`` files an object under: ``namespace/value`` or ``value``."""
    return f"{namespace}/{label_value}" if namespace else label_value


def label_index(label_key: str) -> IndexFunc:
    """An index by the value of label ``label_key``, qualified by namespace (module docstring)."""

    def index(obj: Obj) -> list[str]:
        meta = obj["metadata"]
        labels = meta.get("labels")
        if not labels:
            return []
        value = labels.get(label_key)
        if value is None:
            return []
        return [label_index_value(meta.get("namespace"), value)]

    index.__name__ = f"label_index[{label_key}]"
    return index
