"""The three non-apply PATCH formats of the Kubernetes API, as pure functions over JSON values.

* JSON patch (RFC 6902, ``application/json-patch+json``): :func:`json_patch`.
* JSON merge patch (RFC 7386, ``application/merge-patch+json``): :func:`merge_patch`.
* Strategic merge patch (``application/strategic-merge-patch+json``): :func:`strategic_merge`,
  which merges lists by the ``x-kubernetes-patch-merge-key`` of the official schemas and honours
  the directives kubectl sends: ``$patch: replace|delete|merge``, ``$retainKeys``,
  ``$setElementOrder/<field>`` and ``$deleteFromPrimitiveList/<field>``.

None of these mutate their inputs.

Example:
    >>> merge_patch({"a": 1, "b": {"c": 2}}, {"a": None, "b": {"d": 3}})
    {'b': {'c': 2, 'd': 3}}
    >>> json_patch({"a": [1, 2]}, [{"op": "add", "path": "/a/-", "value": 3}])
    {'a': [1, 2, 3]}
"""

from __future__ import annotations

import copy
import json
from typing import Any

from apim_selfhosted.testing.kube.schema import Node, Schemas


class PatchError(ValueError):
    """A patch could not be applied.

    Attributes:
        bad_request: True when the patch document itself is malformed (HTTP 400), False when it
            is well formed but does not apply to the object (HTTP 422).
    """

    def __init__(self, message: str, *, bad_request: bool = False) -> None:
        super().__init__(message)
        self.bad_request = bad_request


# --- RFC 7386 -------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """Applies a JSON merge patch (RFC 7386): objects merge, ``null`` deletes, the rest replaces.

    Args:
        target: The original JSON value.
        patch: The merge patch.

    Returns:
        A new JSON value.

    Example:
        >>> merge_patch({"l": [1, 2]}, {"l": [3]})
        {'l': [3]}
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = merge_patch(result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# --- RFC 6902 -------------------------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"invalid JSON pointer {path!r}", bad_request=True)
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token, path)
    return node, tokens[-1]


def _child(node: Any, token: str, path: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise PatchError(f"doc is missing path: {path!r}")
        return node[token]
    if isinstance(node, list):
        index = _index(node, token, path, allow_end=False)
        return node[index]
    raise PatchError(f"doc is missing path: {path!r}")


def _index(node: list[Any], token: str, path: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(node)
    if not token.isdigit() or (token.startswith("0") and token != "0"):
        raise PatchError(f"invalid array index {token!r} in path {path!r}")
    index = int(token)
    limit = len(node) if allow_end else len(node) - 1
    if index > limit:
        raise PatchError(f"array index out of bounds in path {path!r}")
    return index


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}: missing value")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, path, allow_end=False))
    raise PatchError(f"doc is missing path: {path!r}")


def _get(doc: Any, path: str) -> Any:
    node = doc
    for token in _pointer(path):
        node = _child(node, token, path)
    return node


def json_patch(target: Any, operations: Any) -> Any:
    """Applies a JSON patch (RFC 6902): add, remove, replace, move, copy and test operations.

    Args:
        target: The original JSON value.
        operations: The list of operations.

    Returns:
        A new JSON value.

    Raises:
        PatchError: The patch is malformed or an operation fails (``test`` included).

    Example:
        >>> json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1},
        ...                       {"op": "replace", "path": "/a", "value": 2}])
        {'a': 2}
    """
    if not isinstance(operations, list):
        raise PatchError("json patch must be a list of operations", bad_request=True)
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid json patch operation: {op!r}", bad_request=True)
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{kind} operation does not have a value", bad_request=True)
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            doc, _ = _remove(doc, path) if _pointer(path) else (doc, None)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "move":
            doc, value = _remove(doc, op.get("from", ""))
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op.get("from", ""))))
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}", bad_request=True)
    return doc


# --- strategic merge patch ------------------------------------------------------------------

_DIRECTIVE = "$patch"
_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def strategic_merge(original: Any, patch: Any, schemas: Schemas, node: Node | None) -> Any:
    """Applies a strategic merge patch to ``original`` whose schema is ``node``.

    Args:
        original: The current object (or value).
        patch: The patch (a JSON object).
        schemas: The schemas that give merge keys and strategies.
        node: The schema of ``original`` (e.g. ``schemas.for_kind("apps/v1", "Deployment")``).

    Returns:
        The patched value (new objects; inputs untouched).

    Raises:
        PatchError: The patch uses an unknown directive or malformed values.

    Example:
        >>> from apim_selfhosted.testing.kube.schema import load_schemas
        >>> s = load_schemas("1.33")
        >>> pod = {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}}
        >>> patch = {"spec": {"containers": [{"name": "a", "image": "y"}]}}
        >>> strategic_merge(pod, patch, s, s.for_kind("v1", "Pod"))["spec"]["containers"]
        [{'name': 'a', 'image': 'y'}, {'name': 'b'}]
    """
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object", bad_request=True)
    result = _merge_map(original if isinstance(original, dict) else {}, patch, schemas, node)
    return {} if result is _DELETED else result


class _Deleted:
    pass


_DELETED = _Deleted()


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], s: Schemas, node: Node | None
) -> Any:
    directive = patch.get(_DIRECTIVE)
    if directive == "delete":
        return _DELETED
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive}", bad_request=True)
    result = dict(original)
    retain = patch.get(_RETAIN)
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in (_DIRECTIVE, _RETAIN):
            continue
        if key.startswith(_ORDER):
            orders[key[len(_ORDER) :]] = list(value or [])
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE) :]
            if isinstance(result.get(field), list):
                drop = list(value or [])
                result[field] = [v for v in result[field] if v not in drop]
            continue
        if key.startswith("$"):
            raise PatchError(f"unknown directive {key!r}", bad_request=True)
        if value is None:
            result.pop(key, None)
            continue
        child = s.field(node, key)
        merged = _merge_value(result.get(key), value, s, child)
        if merged is _DELETED:
            result.pop(key, None)
        else:
            result[key] = merged
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError("$retainKeys must be a list", bad_request=True)
        keep = set(retain)
        result = {k: v for k, v in result.items() if k in keep}
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _apply_order(result[field], order, s.merge_key(s.field(node, field)))
    return result


def _merge_value(original: Any, patch: Any, s: Schemas, node: Node | None) -> Any:
    if isinstance(patch, dict):
        if s.kind_of(node) in ("object", "map") or node is None:
            return _merge_map(original if isinstance(original, dict) else {}, patch, s, node)
        return copy.deepcopy(patch)
    if isinstance(patch, list):
        strategy = s.patch_strategy(node)
        if "merge" in strategy:
            return _merge_list(original if isinstance(original, list) else [], patch, s, node)
        return copy.deepcopy(patch)
    return patch


def _merge_list(original: list[Any], patch: list[Any], s: Schemas, node: Node | None) -> Any:
    key = s.merge_key(node)
    item_node = s.items(node)
    if any(isinstance(p, dict) and p.get(_DIRECTIVE) == "replace" for p in patch):
        return [
            copy.deepcopy(p)
            for p in patch
            if not (isinstance(p, dict) and p.get(_DIRECTIVE) == "replace")
        ]
    if key is None or not all(isinstance(p, dict) for p in patch):
        # list of primitives with merge strategy: union, keeping order
        result = list(original)
        for value in patch:
            if value not in result:
                result.append(copy.deepcopy(value))
        return result
    result = [copy.deepcopy(item) for item in original]
    for item in patch:
        if key not in item:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {key}")
        index = next(
            (
                i
                for i, cur in enumerate(result)
                if isinstance(cur, dict) and cur.get(key) == item[key]
            ),
            None,
        )
        if item.get(_DIRECTIVE) == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            merged = _merge_map({}, item, s, item_node)
            if merged is not _DELETED:
                result.append(merged)
        else:
            merged = _merge_map(result[index], item, s, item_node)
            if merged is _DELETED:
                result.pop(index)
            else:
                result[index] = merged
    return result


def _apply_order(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(item: Any) -> str:
        value = item.get(key) if key is not None and isinstance(item, dict) else item
        return json.dumps(value, sort_keys=True)

    wanted = [ident(o) for o in order]
    positions = {w: i for i, w in enumerate(wanted)}
    listed = sorted(
        (it for it in items if ident(it) in positions), key=lambda it: positions[ident(it)]
    )
    rest = [it for it in items if ident(it) not in positions]
    return listed + rest
