"""PATCH bodies of every content type kubectl and the SDKs send, applied to plain dicts.

``application/merge-patch+json`` (RFC 7386), ``application/json-patch+json`` (RFC 6902, via the
``jsonpatch`` library), ``application/strategic-merge-patch+json`` (kubectl's default for built-in
kinds, with its ``$patch``/``$setElementOrder``/``$deleteFromPrimitiveList``/``$retainKeys``
directives) and ``application/apply-patch+yaml`` (server-side apply with ``managedFields``).

Inputs are never mutated; every function returns a new object. Server-side apply is a
deliberate simplification of structured-merge-diff: see :func:`server_side_apply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonpointer
import orjson

from kubetrain.base.jsoncopy import json_copy

__all__ = [
    "ApplyConflict",
    "MergeKeys",
    "PatchError",
    "json_patch",
    "merge_patch",
    "server_side_apply",
    "strategic_merge_patch",
]

MergeKeys = Mapping[tuple[str, ...], str]
"""Strategic-merge metadata of one kind: list path (``"*"`` = each list item) -> merge key.

The value ``"$set"`` marks a list of scalars merged as a set (``metadata.finalizers``). Lists not
named are atomic: a patch replaces them whole.
"""

SET_LIST = "$set"


class PatchError(ValueError):
    """A patch that cannot be applied; the message names the path and the problem."""


class ApplyConflict(Exception):
    """Server-side apply would change fields another manager owns (HTTP 409 unless force).

    ``conflicts`` lists ``(manager, field path)`` pairs, paths written like kube
    (``.spec.replicas``, ``.spec.containers[name="main"].image``).
    """

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = conflicts
        if len(conflicts) == 1:
            mgr, path = conflicts[0]
            text = f'Apply failed with 1 conflict: conflict with "{mgr}": {path}'
        else:
            lines = "".join(f'\n- conflict with "{mgr}": {path}' for mgr, path in conflicts)
            text = f"Apply failed with {len(conflicts)} conflicts:{lines}"
        super().__init__(text)


# ---------------------------------------------------------------------------------------------
# RFC 7386 and RFC 6902.


def merge_patch(target: Any, patch: Any, *, owned: bool = False) -> Any:
    """RFC 7386 JSON merge patch: maps merge recursively, ``null`` deletes, the rest replaces.

    The result shares nothing with ``patch`` or ``target``, unless ``owned``: then ``target``
    is the caller's to consume (a fresh copy) and its untouched values are kept, not copied.
    """
    if not isinstance(patch, dict):
        return json_copy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value, owned=owned)
    if not owned:
        # Untouched values are shared with ``target`` above; copy them so the result owns them.
        for key in result.keys() - patch.keys():
            result[key] = json_copy(result[key])
    return result


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (``add``/``remove``/``replace``/``move``/``copy``/``test``).

    Raises :class:`PatchError` for a malformed patch, a failed ``test`` or a missing path.
    """
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    try:
        return jsonpatch.JsonPatch(ops).apply(target, in_place=False)
    except jsonpatch.JsonPatchTestFailed as err:
        raise PatchError(f"json patch test operation failed: {err}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as err:
        raise PatchError(f"json patch could not be applied: {err}") from None
    except (TypeError, KeyError, IndexError, ValueError) as err:
        raise PatchError(f"json patch is invalid: {err}") from None


# ---------------------------------------------------------------------------------------------
# Strategic merge patch.

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_DELETE = object()  # sentinel: "$patch: delete" on a map removes it from its parent


def strategic_merge_patch(
    target: dict[str, Any], patch: dict[str, Any], merge_keys: MergeKeys
) -> dict[str, Any]:
    """Apply a strategic merge patch as kube-apiserver does for built-in kinds.

    Maps merge recursively and ``null`` deletes a key; lists named in ``merge_keys`` merge item
    by item on their merge key (``$patch: delete`` removes an item, ``$patch: replace`` replaces
    the list), ``$set`` lists merge as sets, other lists are replaced. Directives:
    ``$patch: replace|delete|merge`` on maps, ``$retainKeys``, ``$setElementOrder/<field>``,
    ``$deleteFromPrimitiveList/<field>``. Raises :class:`PatchError` on malformed directives.
    """
    if not isinstance(target, dict) or not isinstance(patch, dict):
        raise PatchError("strategic merge patch: both the object and the patch must be maps")
    result = _merge_map(target, patch, (), merge_keys)
    if result is _DELETE:
        return {}
    assert isinstance(result, dict)
    return result


def _path_text(path: tuple[str, ...]) -> str:
    return "." + ".".join(path) if path else "."


def _strip(value: Any) -> Any:
    """``value`` with every directive key removed (for content that replaces wholesale)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and _PATCH in v)]
    return value


def _merge_map(
    original: Mapping[str, Any] | None,
    patch: dict[str, Any],
    path: tuple[str, ...],
    merge_keys: MergeKeys,
) -> Any:
    directive = patch.get(_PATCH)
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip({k: v for k, v in patch.items() if k != _PATCH and v is not None})
    if directive != "merge" and (directive is not None or _PATCH in patch):
        raise PatchError(f"{_path_text(path)}: unknown patch type {directive!r} in $patch")
    result: dict[str, Any] = json_copy(dict(original)) if original else {}
    retain = patch.get(_RETAIN_KEYS)
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in (_PATCH, _RETAIN_KEYS):
            continue
        if key.startswith(_SET_ORDER):
            if not isinstance(value, list):
                raise PatchError(f"{_path_text(path)}: {key} must be a list")
            orders[key[len(_SET_ORDER) :]] = value
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE) :]
            if not isinstance(value, list):
                raise PatchError(f"{_path_text(path)}: {key} must be a list")
            current = result.get(field)
            if isinstance(current, list):
                doomed = {_hashable(v) for v in value}
                result[field] = [v for v in current if _hashable(v) not in doomed]
            continue
        child_path = (*path, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _merge_map(
                result.get(key) if isinstance(result.get(key), dict) else None,
                value,
                child_path,
                merge_keys,
            )
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, child_path, merge_keys)
        else:
            result[key] = value
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _apply_order(result[field], order, (*path, field), merge_keys)
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError(f"{_path_text(path)}: $retainKeys must be a list")
        keep = set(retain)
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _merge_list(
    original: Any, patch: list[Any], path: tuple[str, ...], merge_keys: MergeKeys
) -> list[Any]:
    key = merge_keys.get(path)  # item paths already carry "*"
    if key is None:
        return [_strip(v) for v in patch]  # atomic list
    current: list[Any] = json_copy(original) if isinstance(original, list) else []
    if key == SET_LIST:
        seen = {_hashable(v) for v in current}
        for value in patch:
            if _hashable(value) not in seen:
                current.append(json_copy(value))
                seen.add(_hashable(value))
        return current
    if any(isinstance(v, dict) and v.get(_PATCH) == "replace" for v in patch):
        return [_strip(v) for v in patch if not (isinstance(v, dict) and _PATCH in v)]
    item_path = (*path, "*")
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"{_path_text(path)}: items must be maps with merge key {key!r}")
        if key not in item:
            raise PatchError(f"{_path_text(path)}: item has no merge key {key!r}: {item}")
        index = next(
            (i for i, v in enumerate(current) if isinstance(v, dict) and v.get(key) == item[key]),
            None,
        )
        if item.get(_PATCH) == "delete":
            current = [v for v in current if not (isinstance(v, dict) and v.get(key) == item[key])]
            continue
        if index is None:
            merged = _merge_map(None, item, item_path, merge_keys)
            if merged is not _DELETE:
                current.append(merged)
        else:
            merged = _merge_map(current[index], item, item_path, merge_keys)
            current[index] = merged
    return current


def _apply_order(
    items: list[Any], order: list[Any], path: tuple[str, ...], merge_keys: MergeKeys
) -> list[Any]:
    """Reorder ``items`` as ``$setElementOrder`` says; items it does not name keep their order
    after the named ones (a simplification of kube's interleaving)."""
    key = merge_keys.get(path)
    if key is None:
        return items

    def ident(value: Any) -> Any:
        if key == SET_LIST or not isinstance(value, dict):
            return _hashable(value)
        return _hashable(value.get(key))

    rank = {ident(v): i for i, v in enumerate(order)}
    named = sorted((v for v in items if ident(v) in rank), key=lambda v: rank[ident(v)])
    others = [v for v in items if ident(v) not in rank]
    return named + others


def _hashable(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return (type(value).__name__ if isinstance(value, bool) else "", value)


# ---------------------------------------------------------------------------------------------
# Server-side apply.

# Fields server-side apply never tracks (identity, server-owned metadata).
_IGNORED: frozenset[tuple[str, ...]] = frozenset(
    {
        ("apiVersion",),
        ("kind",),
        ("metadata", "name"),
        ("metadata", "namespace"),
        ("metadata", "uid"),
        ("metadata", "resourceVersion"),
        ("metadata", "generation"),
        ("metadata", "creationTimestamp"),
        ("metadata", "deletionTimestamp"),
        ("metadata", "managedFields"),
        ("metadata", "selfLink"),
    }
)

FieldPath = tuple[str, ...]  # fieldsV1 elements: "f:spec", 'k:{"name":"a"}', 'v:"x"'


def _item_element(item: Any, key: str) -> str:
    if key == SET_LIST:
        return "v:" + orjson.dumps(item).decode()
    return "k:" + orjson.dumps({key: item.get(key)} if isinstance(item, dict) else item).decode()


def _collect(
    value: Any, path: tuple[str, ...], elems: FieldPath, merge_keys: MergeKeys, out: set[FieldPath]
) -> None:
    """Add the fieldsV1 paths ``value`` sets (leaves, and list items with ``"."``)."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            child_path = (*path, key)
            if child_path in _IGNORED:
                continue
            _collect(child, child_path, (*elems, f"f:{key}"), merge_keys, out)
        return
    if isinstance(value, list) and path in merge_keys:
        key = merge_keys[path]
        for item in value:
            item_elems = (*elems, _item_element(item, key))
            out.add((*item_elems, "."))
            if key != SET_LIST and isinstance(item, dict):
                _collect(item, (*path, "*"), item_elems, merge_keys, out)
        return
    if elems:
        out.add(elems)


def _to_fields_v1(paths: set[FieldPath]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    return tree


def _from_fields_v1(tree: Mapping[str, Any], prefix: FieldPath = ()) -> set[FieldPath]:
    paths: set[FieldPath] = set()
    for element, child in tree.items():
        path = (*prefix, element)
        if element == "." or not child:
            paths.add(path)
        if isinstance(child, Mapping) and child:
            paths |= _from_fields_v1(child, path)
    return paths


def _lookup(obj: Any, path: FieldPath) -> tuple[bool, Any]:
    """Follow a fieldsV1 path through ``obj``: (found, value)."""
    node = obj
    for element in path:
        if element == ".":
            continue
        if element.startswith("f:") and isinstance(node, dict):
            name = element[2:]
            if name not in node:
                return False, None
            node = node[name]
        elif element[:2] in ("k:", "v:") and isinstance(node, list):
            spec = orjson.loads(element[2:])
            match = _find_item(node, element[:2], spec)
            if match is None:
                return False, None
            node = node[match]
        else:
            return False, None
    return True, node


def _find_item(items: list[Any], kind: str, spec: Any) -> int | None:
    for i, item in enumerate(items):
        if kind == "v:" and item == spec:
            return i
        if (
            kind == "k:"
            and isinstance(item, dict)
            and isinstance(spec, dict)
            and all(item.get(k) == v for k, v in spec.items())
        ):
            return i
    return None


def _remove(obj: Any, path: FieldPath) -> None:
    """Remove the field or list item at ``path`` from ``obj`` (in place) if present."""
    if path and path[-1] == ".":
        path = path[:-1]
    if not path:
        return
    found, parent = _lookup(obj, path[:-1])
    if not found:
        return
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last[:2] in ("k:", "v:") and isinstance(parent, list):
        index = _find_item(parent, last[:2], orjson.loads(last[2:]))
        if index is not None:
            del parent[index]


def _path_display(path: FieldPath) -> str:
    """kube's conflict path text: ``.spec.containers[name="a"].image``."""
    out: list[str] = []
    for element in path:
        if element == ".":
            continue
        if element.startswith("f:"):
            out.append("." + element[2:])
        elif element.startswith("k:"):
            spec = orjson.loads(element[2:])
            pairs = ",".join(f"{k}={orjson.dumps(v).decode()}" for k, v in spec.items())
            out.append(f"[{pairs}]")
        else:
            out.append(f"[={element[2:]}]")
    return "".join(out)


def _apply_merge(live: Any, applied: Any, path: tuple[str, ...], merge_keys: MergeKeys) -> Any:
    """Merge the applied configuration into the live object (maps deep, keyed lists by key)."""
    if isinstance(applied, dict) and isinstance(live, dict):
        result = json_copy(live)
        for key, value in applied.items():
            result[key] = _apply_merge(live.get(key), value, (*path, key), merge_keys)
        return result
    if isinstance(applied, list) and isinstance(live, list) and path in merge_keys:
        key = merge_keys[path]
        result_list = json_copy(live)
        for item in applied:
            element = _item_element(item, key)
            index = _find_item(result_list, element[:2], orjson.loads(element[2:]))
            if index is None:
                result_list.append(json_copy(item))
            elif key != SET_LIST:
                result_list[index] = _apply_merge(
                    result_list[index], item, (*path, "*"), merge_keys
                )
        return result_list
    return json_copy(applied)


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    merge_keys: MergeKeys,
    now: str,
) -> dict[str, Any]:
    """Apply ``applied`` for ``manager`` and return the new object with ``managedFields``.

    Simplified structured-merge-diff:

    - the manager's field set is every leaf the applied config sets, plus ``"."`` entries for
      items of keyed/set lists (fieldsV1 ``f:``/``k:``/``v:`` elements);
    - a field in that set which another manager's entry owns and whose live value differs is a
      conflict: :class:`ApplyConflict` unless ``force``, which takes ownership from them;
    - the config is merged into ``live`` (maps deep, keyed lists by key, others atomic);
    - fields the manager applied before, no longer applies, and no one else owns are removed;
    - the manager's ``Apply`` entry is replaced (``time=now``); emptied entries are dropped.

    Not modelled: per-version field sets, ``Update`` ownership bookkeeping (callers that want
    conflicts with PATCH/PUT writers must record their entries), schema-aware atomic maps.
    """
    if not isinstance(applied, dict):
        raise PatchError("apply patch must be a map (a complete object configuration)")
    base: dict[str, Any] = json_copy(live) if live is not None else {}
    meta = base.get("metadata") or {}
    entries: list[dict[str, Any]] = [
        e for e in (meta.get("managedFields") or []) if isinstance(e, dict)
    ]
    owned: list[tuple[dict[str, Any], set[FieldPath]]] = [
        (e, _from_fields_v1(e.get("fieldsV1") or {})) for e in entries
    ]
    mine = next(
        ((e, s) for e, s in owned if e.get("manager") == manager and e.get("operation") == "Apply"),
        None,
    )
    previous = mine[1] if mine else set()
    new_set: set[FieldPath] = set()
    _collect(applied, (), (), merge_keys, new_set)

    conflicts: list[tuple[str, str]] = []
    conflicting: list[tuple[set[FieldPath], FieldPath]] = []
    for entry, fields in owned:
        if mine is not None and entry is mine[0]:
            continue
        for path in sorted(new_set & fields):
            if path[-1] == ".":
                continue
            found_live, live_value = _lookup(base, path)
            _, applied_value = _lookup(applied, path)
            if found_live and live_value != applied_value:
                conflicts.append((str(entry.get("manager", "")), _path_display(path)))
                conflicting.append((fields, path))
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    for fields, path in conflicting:
        fields.discard(path)

    result: dict[str, Any] = _apply_merge(base, applied, (), merge_keys)
    others: set[FieldPath] = set()
    for entry, fields in owned:
        if mine is None or entry is not mine[0]:
            others |= fields
    for path in sorted(previous - new_set - others, key=len, reverse=True):
        _remove(result, path)

    managed: list[dict[str, Any]] = []
    for entry, fields in owned:
        if mine is not None and entry is mine[0]:
            continue
        if fields:
            managed.append({**entry, "fieldsV1": _to_fields_v1(fields)})
    managed.append(
        {
            "manager": manager,
            "operation": "Apply",
            "apiVersion": str(applied.get("apiVersion", base.get("apiVersion", ""))),
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": _to_fields_v1(new_set),
        }
    )
    result.setdefault("metadata", {})["managedFields"] = managed
    return result
