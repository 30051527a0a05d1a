"""Request bodies as kube-apiserver reads them: within its size limit, YAML converted to JSON.

- ``read_body``: the body, or 413 ``RequestEntityTooLarge`` (a Status) past the server's
  ``max_body_bytes`` (kube-apiserver's ``MaxRequestBodyBytes``, 3 MiB), as its
  ``limitedReadBody`` answers;
- ``load_yaml``: a YAML document as the JSON tree kube's ``sigs.k8s.io/yaml`` makes of it:
  timestamps stay the strings they were written as, keys become strings, and what JSON cannot
  hold (binary, sets), aliases that expand beyond bounds (``&a [*a]``, "billion laughs") or
  nesting deeper than the parser's stack are a 400, never an exception out of the handler.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from aiohttp import web

from . import errors

__all__ = ["MAX_DEPTH", "MAX_YAML_NODES", "check_depth", "load_json", "load_yaml", "read_body"]

#: Levels of nesting a body (and an object a JSON patch builds) may have. kube's JSON decoder
#: allows 10000; the server walks trees recursively (patches, schemas) and orjson writes no
#: more than 255 levels, so a deeper tree would fail inside the server instead. Real objects
#: nest a few dozen levels (a pod template in a job: about 20).
MAX_DEPTH = 100
_TOO_DEEP = f"the request body is nested too deeply: exceeded max depth of {MAX_DEPTH}"

#: Nodes a YAML document may expand to (aliases counted each time they are used), like
#: yaml.v2's "document contains excessive aliasing" guard; far above any real manifest.
MAX_YAML_NODES = 1_000_000


async def read_body(request: web.Request) -> bytes:
    """The request body; 413 with a Status when it is over the server's limit."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.request_entity_too_large(request.client_max_size) from None


def _too_deep(doc: Any, raw: bytes | None) -> bool:
    """Whether ``doc`` nests deeper than ``MAX_DEPTH``. ``raw``, the JSON ``doc`` was parsed
    from, answers at C speed when it has no more brackets than the limit; else the tree's
    containers are walked (no recursion)."""
    if raw is not None and raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH:
        return False
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        items = node.values() if isinstance(node, dict) else node
        for item in items:
            if isinstance(item, dict | list):
                if depth >= MAX_DEPTH:
                    return True
                stack.append((item, depth + 1))
    return False


def check_depth(doc: Any, raw: bytes | None = None) -> None:
    """400 BadRequest when ``doc`` (parsed from the JSON ``raw``, if given) nests deeper than
    ``MAX_DEPTH`` levels."""
    if isinstance(doc, dict | list) and _too_deep(doc, raw):
        raise errors.bad_request(_TOO_DEEP)


def load_json(raw: bytes, what: str) -> Any:
    """``raw`` parsed as JSON, at most ``MAX_DEPTH`` deep; 400 BadRequest naming ``what`` (how
    kube words the decoding failure: "couldn't get version/kind; json parse error") else."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"{what}: {exc}") from None
    check_depth(doc, raw)
    return doc


class _Loader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver (``2024-01-02`` stays a string, as in kube),
    refusing nesting past ``MAX_DEPTH`` as it composes (not hundreds of frames later)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:  # a container's scalars are one level below it
                raise errors.bad_request(_TOO_DEEP)
            node: yaml.Node | None = super().compose_node(parent, index)  # type: ignore[misc]
            return node
        finally:
            self._depth -= 1


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes ``root`` expands to with every alias copied out; raises ValueError past
    ``MAX_YAML_NODES`` or for a node that contains itself. Iterative: any depth."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1
            for child in _children(node):
                total += sizes[id(child)]
            if total > MAX_YAML_NODES:
                raise ValueError("yaml: document contains excessive aliasing")
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ValueError("yaml: document contains a recursive alias")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise ValueError("yaml: document contains a recursive alias")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml(raw: bytes) -> Any:
    """``raw`` (one YAML document) as a JSON tree; 400 BadRequest for anything else."""
    loader: _Loader | None = None
    try:
        loader = _Loader(raw)  # reads the encoding: raises for bytes no YAML stream may hold
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        doc = loader.construct_document(node)
        check_depth(doc)
        # JSON's own types, string keys (1 -> "1", true -> "true"); binary and sets refused
        return orjson.loads(orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS))
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error converting YAML to JSON: yaml: {exc}") from None
    except RecursionError:  # the parser's stack, hundreds of levels down
        raise errors.bad_request(_TOO_DEEP) from None
    except (ValueError, TypeError) as exc:  # orjson's errors are ValueError/TypeError kinds
        raise errors.bad_request(f"error converting YAML to JSON: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
