"""Server-side apply and ``managedFields`` bookkeeping, following the documented semantics.

Field ownership is kept as sets of paths in the API server's ``FieldsV1`` vocabulary:
``f:<field>`` for a struct or map field, ``k:{"name":"app"}`` for an item of a list with map
semantics (``x-kubernetes-list-type: map``), ``v:"value"`` for an item of a set, ``i:<n>`` for an
item of an atomic list addressed by index. A path is a tuple of such elements.

* :func:`apply` merges an applied configuration into the live object for one field manager:
  conflicts with other managers whose fields would change (409 unless ``force``), removal of the
  fields the manager applied before but no longer applies and nobody else owns, and the
  manager's ``Apply`` entry set to exactly the fields it applied.
* :func:`track_update` gives the ``Update`` entry of a non-apply write (create, update, patch)
  the fields it changed, and takes them away from every other manager.

Example:
    >>> from apim_selfhosted.testing.kube.schema import load_schemas
    >>> s = load_schemas("1.33")
    >>> node = s.for_kind("v1", "ConfigMap")
    >>> cfg = {"apiVersion": "v1", "kind": "ConfigMap",
    ...        "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}}
    >>> out = apply(None, cfg, manager="me", force=False, api_version="v1", schemas=s, node=node,
    ...             now="2026-01-01T00:00:00Z")
    >>> out.obj["data"], out.obj["metadata"]["managedFields"][0]["fieldsV1"]
    ({'k': 'v'}, {'f:data': {'f:k': {}}, 'f:metadata': {'f:labels': {'f:a': {}}}})
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from apim_selfhosted.testing.kube.schema import Node, Schemas

Path = tuple[str, ...]

_TRACKED_METADATA = ("labels", "annotations", "finalizers", "ownerReferences")
_BRANCH = object()  # marker for a node that has children


class ApplyConflict(Exception):  # noqa: N818 - named after the API's own term
    """Server-side apply would change fields another manager owns.

    Attributes:
        conflicts: ``(manager label, field path string)`` pairs, where the manager label is
            ``"name"`` for an Apply manager and ``"name" using <apiVersion>`` for an Update one.
    """

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = conflicts
        super().__init__(conflict_message(conflicts))


def conflict_message(conflicts: list[tuple[str, str]]) -> str:
    """The message of the API server's apply conflict error.

    Example:
        >>> print(conflict_message([('"kubectl" using apps/v1', ".spec.replicas")]))
        Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas
    """
    if len(conflicts) == 1:
        manager, field = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {manager}: {field}"
    by_manager: dict[str, list[str]] = {}
    for manager, field in conflicts:
        by_manager.setdefault(manager, []).append(field)
    lines: list[str] = []
    for manager in sorted(by_manager):
        lines.append(f"conflicts with {manager}:")
        lines.extend(f"- {field}" for field in by_manager[manager])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


# --- path encoding --------------------------------------------------------------------------


def _key_element(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    values = {}
    for key in sorted(keys):
        if key in item:
            values[key] = item[key]
        elif key == "protocol":
            values[key] = "TCP"  # the API server defaults port protocols before keying
    return "k:" + json.dumps(values, separators=(",", ":"), sort_keys=True)


def path_string(path: Path) -> str:
    """The human form of a field path, as conflict messages print it.

    Example:
        >>> path_string(("f:spec", "f:containers", 'k:{"name":"a"}', "f:image"))
        '.spec.containers[name="a"].image'
    """
    out = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            out.append("." + rest)
        elif kind == "k":
            fields = json.loads(rest)
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in fields.items()) + "]")
        elif kind == "v":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)


def to_fields_v1(members: Iterable[Path]) -> dict[str, Any]:
    """Encodes a set of member paths as a ``FieldsV1`` tree.

    Example:
        >>> to_fields_v1([("f:a",), ("f:b", "f:c"), ("f:b",)])
        {'f:a': {}, 'f:b': {'.': {}, 'f:c': {}}}
    """
    tree: dict[str, Any] = {}
    paths = set(members)
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        node = tree
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return _sorted_tree(tree)


def _sorted_tree(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_tree(tree[k]) for k in sorted(tree)}


def from_fields_v1(tree: dict[str, Any]) -> set[Path]:
    """Decodes a ``FieldsV1`` tree into its member paths.

    Example:
        >>> sorted(from_fields_v1({"f:a": {}, "f:b": {".": {}, "f:c": {}}}))
        [('f:a',), ('f:b',), ('f:b', 'f:c')]
    """
    out: set[Path] = set()

    def walk(node: dict[str, Any], prefix: Path) -> None:
        for key, child in node.items():
            if key == ".":
                out.add(prefix)
                continue
            path = (*prefix, key)
            if not child:
                out.add(path)
            else:
                walk(child, path)

    walk(tree or {}, ())
    return out


# --- flattening -----------------------------------------------------------------------------


def flatten(
    obj: Any, schemas: Schemas, node: Node | None, *, status: bool | None = None
) -> dict[Path, Any]:
    """Every field path of ``obj`` mapped to its value (``_BRANCH`` for a node with children).

    Args:
        obj: The object.
        schemas: The schemas.
        node: The schema of ``obj``.
        status: None to track everything; True to track only ``status``; False to ignore it.

    Returns:
        The flattened object (paths of metadata other than labels, annotations, finalizers and
        ownerReferences, and of ``apiVersion``/``kind``, are left out as the API server does).
    """
    out: dict[Path, Any] = {}
    if not isinstance(obj, dict):
        return out
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if status is True and key != "status":
            continue
        if status is False and key == "status":
            continue
        if key == "metadata":
            if not isinstance(value, dict):
                continue
            meta_node = schemas.field(node, "metadata")
            for mkey in _TRACKED_METADATA:
                if mkey in value:
                    _walk(
                        value[mkey],
                        ("f:metadata", f"f:{mkey}"),
                        schemas,
                        schemas.field(meta_node, mkey),
                        out,
                    )
            if any(p[0] == "f:metadata" for p in out):
                out[("f:metadata",)] = _BRANCH
            continue
        _walk(value, (f"f:{key}",), schemas, schemas.field(node, key), out)
    return out


def _walk(value: Any, path: Path, s: Schemas, node: Node | None, out: dict[Path, Any]) -> None:
    if isinstance(value, dict) and value and not (node is not None and s.is_atomic(node)):
        out[path] = _BRANCH
        for key, child in value.items():
            _walk(child, (*path, f"f:{key}"), s, s.field(node, key), out)
        return
    if isinstance(value, list) and value:
        semantics, keys = s.list_semantics(node) if node is not None else ("atomic", ())
        if semantics == "map" and keys and all(isinstance(i, dict) for i in value):
            out[path] = _BRANCH
            item_node = s.items(node)
            for item in value:
                item_path = (*path, _key_element(item, keys))
                out[item_path] = _BRANCH
                for key, child in item.items():
                    _walk(child, (*item_path, f"f:{key}"), s, s.field(item_node, key), out)
            return
        if semantics == "set":
            out[path] = _BRANCH
            for item in value:
                out[(*path, "v:" + json.dumps(item, separators=(",", ":")))] = item
            return
    out[path] = value


def _is_map_node(s: Schemas, node: Node | None) -> bool:
    return node is not None and s.kind_of(node) == "map"


def _members_of_config(flat: dict[Path, Any]) -> set[Path]:
    members = set()
    for path, value in flat.items():
        last = path[-1]
        if value is not _BRANCH or last.startswith(("k:", "v:", "i:")):
            members.add(path)
    return members


# --- getting, setting and removing by path --------------------------------------------------


def _find_item(items: list[Any], element: str) -> int | None:
    kind, _, rest = element.partition(":")
    if kind == "k":
        wanted = json.loads(rest)
        for i, item in enumerate(items):
            if isinstance(item, dict) and all(
                item.get(k, "TCP" if k == "protocol" else None) == v for k, v in wanted.items()
            ):
                return i
    elif kind == "v":
        wanted = json.loads(rest)
        for i, item in enumerate(items):
            if item == wanted:
                return i
    elif kind == "i":
        index = int(rest)
        return index if index < len(items) else None
    return None


def remove_path(obj: dict[str, Any], path: Path) -> None:
    """Removes the field or list item at ``path`` from ``obj`` (in place) if present.

    Example:
        >>> o = {"spec": {"a": 1, "b": 2}}
        >>> remove_path(o, ("f:spec", "f:a")); o
        {'spec': {'b': 2}}
    """
    parent: Any = obj
    for element in path[:-1]:
        parent = _step(parent, element)
        if parent is None:
            return
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif isinstance(parent, list):
        index = _find_item(parent, last)
        if index is not None:
            parent.pop(index)


def _step(node: Any, element: str) -> Any:
    if element.startswith("f:"):
        return node.get(element[2:]) if isinstance(node, dict) else None
    if isinstance(node, list):
        index = _find_item(node, element)
        return node[index] if index is not None else None
    return None


# --- merging --------------------------------------------------------------------------------


def merge(live: Any, config: Any, s: Schemas, node: Node | None) -> Any:
    """Merges an applied configuration into a live value by the schema's list and map types.

    Example:
        >>> from apim_selfhosted.testing.kube.schema import load_schemas
        >>> s = load_schemas("1.33")
        >>> merge({"data": {"a": "1"}}, {"data": {"b": "2"}}, s, s.for_kind("v1", "ConfigMap"))
        {'data': {'a': '1', 'b': '2'}}
    """
    if (
        isinstance(config, dict)
        and isinstance(live, dict)
        and not (node is not None and s.is_atomic(node))
    ):
        out = dict(live)
        for key, value in config.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(live.get(key), value, s, s.field(node, key))
        return out
    if isinstance(config, list) and isinstance(live, list) and node is not None:
        semantics, keys = s.list_semantics(node)
        if semantics == "map" and keys:
            item_node = s.items(node)
            result = [copy.deepcopy(i) for i in live]
            for item in config:
                if not isinstance(item, dict):
                    return copy.deepcopy(config)
                index = _find_item(result, _key_element(item, keys))
                if index is None:
                    result.append(copy.deepcopy(item))
                else:
                    result[index] = merge(result[index], item, s, item_node)
            return result
        if semantics == "set":
            result = list(live)
            result.extend(copy.deepcopy(v) for v in config if v not in result)
            return result
    return copy.deepcopy(config)


# --- managedFields --------------------------------------------------------------------------


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    time: str
    subresource: str
    members: set[Path]

    def label(self) -> str:
        if self.operation == "Update":
            return f'"{self.manager}" using {self.api_version}'
        return f'"{self.manager}"'

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.members),
        }
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def _entries(obj: dict[str, Any] | None) -> list[_Entry]:
    raw = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    out = []
    for e in raw:
        if not isinstance(e, dict) or not e.get("manager"):
            continue
        out.append(
            _Entry(
                manager=str(e["manager"]),
                operation=str(e.get("operation", "Update")),
                api_version=str(e.get("apiVersion", "")),
                time=str(e.get("time", "")),
                subresource=str(e.get("subresource", "")),
                members=from_fields_v1(e.get("fieldsV1") or {}),
            )
        )
    return out


def _store_entries(obj: dict[str, Any], entries: list[_Entry]) -> None:
    kept = [e.to_json() for e in entries if e.members]
    meta = obj.setdefault("metadata", {})
    if kept:
        meta["managedFields"] = kept
    else:
        meta.pop("managedFields", None)


def _changed(old: dict[Path, Any], new: dict[Path, Any]) -> tuple[set[Path], set[Path]]:
    """(paths added or modified, paths removed)."""
    changed = {p for p, v in new.items() if p not in old or (v is not _BRANCH and old[p] != v)}
    changed |= {p for p, v in new.items() if v is _BRANCH and p in old and old[p] is not _BRANCH}
    removed = {p for p in old if p not in new}
    return changed, removed


def _drop_under(members: set[Path], removed: set[Path]) -> set[Path]:
    if not removed:
        return members
    return {m for m in members if not any(m[: len(r)] == r for r in removed)}


@dataclass(frozen=True)
class ApplyResult:
    """The object after a server-side apply (with ``metadata.managedFields`` set)."""

    obj: dict[str, Any]


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    force: bool,
    api_version: str,
    schemas: Schemas,
    node: Node | None,
    now: str,
    subresource: str = "",
    has_status: bool = False,
) -> ApplyResult:
    """Server-side applies ``config`` for ``manager`` onto ``live`` (None: create).

    Args:
        live: The stored object, or None when the apply creates it.
        config: The applied configuration (already parsed from YAML/JSON).
        manager: The field manager (required by the API).
        force: Take ownership of conflicting fields instead of failing.
        api_version: The object's API version (recorded in ``managedFields``).
        schemas: The schemas.
        node: The kind's schema.
        now: The timestamp for ``managedFields[].time``.
        subresource: ``"status"`` for an apply to the status subresource.
        has_status: Whether the resource has a status subresource (then the main resource
            ignores ``status`` and the status subresource only looks at ``status``).

    Returns:
        The merged object, not yet defaulted or validated.

    Raises:
        ApplyConflict: Other managers own fields whose values would change, and not ``force``.
    """
    status_scope: bool | None = None
    if has_status:
        status_scope = subresource == "status"
    base: dict[str, Any] = copy.deepcopy(live) if live is not None else {}
    entries = _entries(live)
    # apply the configuration only within the scope this endpoint may change
    scoped = dict(config)
    if status_scope is False:
        scoped.pop("status", None)
    elif status_scope is True:
        scoped = {
            k: v for k, v in config.items() if k in ("apiVersion", "kind", "metadata", "status")
        }
    config_flat = flatten(scoped, schemas, node, status=status_scope)
    applied = _members_of_config(config_flat)
    # null values in the configuration are owned and removed
    merged = merge(base, scoped, schemas, node)
    if live is not None:
        meta = dict(base.get("metadata") or {})
        applied_meta = scoped.get("metadata") or {}
        merged_meta = dict(meta)
        for key in _TRACKED_METADATA:
            if key in applied_meta:
                merged_meta[key] = (merged.get("metadata") or {}).get(key)
                if merged_meta[key] is None:
                    merged_meta.pop(key, None)
        merged["metadata"] = merged_meta
    mine = next(
        (
            e
            for e in entries
            if e.manager == manager and e.operation == "Apply" and e.subresource == subresource
        ),
        None,
    )
    others = [e for e in entries if e is not mine]
    owned_by_others: set[Path] = set().union(*(e.members for e in others)) if others else set()
    if mine is not None:
        removed_here: list[Path] = []
        for path in sorted(mine.members - applied, key=len):
            if any(path[: len(r)] == r for r in removed_here):
                continue  # its parent (a list item or map) is already gone
            if any(a[: len(path)] == path for a in applied):
                continue  # the node itself is no longer applied, but fields under it are
            if path in owned_by_others or any(o[: len(path)] == path for o in owned_by_others):
                continue
            remove_path(merged, path)
            removed_here.append(path)
        # A list left empty because this apply stopped owning all its items goes as a whole
        # when nobody else owns it (kube-apiserver does not keep `[]` behind).
        for path in removed_here:
            parent = path[:-1]
            if not parent or parent in applied or parent in owned_by_others:
                continue
            if any(o[: len(parent)] == parent for o in owned_by_others | applied):
                continue
            value: Any = merged
            for element in parent:
                value = _step(value, element)
            if value == []:
                remove_path(merged, parent)
    live_flat = flatten(live or {}, schemas, node, status=status_scope)
    merged_flat = flatten(merged, schemas, node, status=status_scope)
    changed, removed = _changed(live_flat, merged_flat)
    conflicts: list[tuple[str, str, _Entry, Path]] = []
    for entry in others:
        if entry.subresource != subresource:
            continue
        for path in sorted(entry.members & (changed | removed)):
            if path in applied or any(path[: len(a)] == a for a in applied):
                conflicts.append((entry.label(), path_string(path), entry, path))
    if conflicts and not force:
        raise ApplyConflict([(label, field) for label, field, _, _ in conflicts])
    for _, _, entry, path in conflicts:
        entry.members.discard(path)
    for entry in others:
        entry.members = _drop_under(entry.members, removed)
    new_entry = _Entry(manager, "Apply", api_version, now, subresource, applied)
    result_entries = []
    placed = False
    for entry in entries:
        if entry is mine:
            result_entries.append(new_entry)
            placed = True
        else:
            result_entries.append(entry)
    if not placed:
        result_entries.append(new_entry)
    _store_entries(merged, result_entries)
    return ApplyResult(merged)


def track_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    schemas: Schemas,
    node: Node | None,
    now: str,
    subresource: str = "",
    has_status: bool = False,
) -> None:
    """Records a non-apply write in ``new["metadata"]["managedFields"]`` (in place).

    The writer's ``Update`` entry gains the fields it added or changed; every other manager
    loses them; fields that disappeared are dropped from every manager. Managed fields sent by
    the client replace the stored ones as the starting point (``[{}]`` clears them), as the
    API server documents; the caller drops sent entries that are not valid.

    Args:
        old: The stored object, or None for a create.
        new: The object about to be stored.
        manager: The field manager of the request.
        api_version: The object's API version.
        schemas: The schemas.
        node: The kind's schema.
        now: The timestamp for ``managedFields[].time``.
        subresource: ``"status"`` for writes to the status subresource.
        has_status: Whether the resource has a status subresource.

    Example:
        >>> from apim_selfhosted.testing.kube.schema import load_schemas
        >>> s = load_schemas("1.33")
        >>> new = {"metadata": {"name": "c"}, "data": {"k": "v"}}
        >>> track_update(None, new, manager="m", api_version="v1", schemas=s,
        ...              node=s.for_kind("v1", "ConfigMap"), now="2026-01-01T00:00:00Z")
        >>> new["metadata"]["managedFields"][0]["fieldsV1"]
        {'f:data': {'.': {}, 'f:k': {}}}
    """
    sent = (new.get("metadata") or {}).get("managedFields")
    if sent == [{}]:
        new["metadata"].pop("managedFields", None)
        return
    status_scope: bool | None = None
    if has_status:
        status_scope = subresource == "status"
    # managedFields sent with the write are the new baseline (how kubectl migrates ownership);
    # without them, the stored ones are
    entries = _entries(new) if sent else _entries(old)
    old_flat = flatten(old or {}, schemas, node, status=status_scope)
    new_flat = flatten(new, schemas, node, status=status_scope)
    changed, removed = _changed(old_flat, new_flat)
    owned = {
        p
        for p in changed
        if new_flat[p] is not _BRANCH
        or p[-1].startswith(("k:", "v:", "i:"))
        or _is_map_path(p, new_flat, schemas, node)
    }
    for entry in entries:
        if entry.subresource == subresource:
            entry.members = _drop_under(entry.members - owned, removed)
    mine = next(
        (
            e
            for e in entries
            if e.manager == manager and e.operation == "Update" and e.subresource == subresource
        ),
        None,
    )
    if owned or mine is not None:
        if mine is None:
            entries.append(_Entry(manager, "Update", api_version, now, subresource, set(owned)))
        else:
            mine.members |= owned
            if owned:
                mine.time = now
    _store_entries(new, entries)


def _is_map_path(path: Path, flat: dict[Path, Any], s: Schemas, node: Node | None) -> bool:
    fields = [p[2:] for p in path if p.startswith("f:")]
    if len(fields) != len(path):
        return False
    return _is_map_node(s, s.path(node, fields))
