"""The official Kubernetes object schemas, as the emulator reads them.

The ``kubernetes-validate`` package ships the OpenAPI definitions of every Kubernetes release as
JSON Schema (``kubernetes-json-schema/v1.XX.0-local-strict/_definitions.json``). This module
loads them once per version and answers the questions that patching, server-side apply,
validation and OpenAPI generation ask: what is the schema of a field, is a list a map keyed by
``name`` or a set, what is the strategic-merge-patch merge key.

Example:
    >>> from apim_selfhosted.testing.kube.schema import load_schemas
    >>> schemas = load_schemas("1.33")
    >>> dep = schemas.for_kind("apps/v1", "Deployment")
    >>> containers = schemas.path(dep, ["spec", "template", "spec", "containers"])
    >>> schemas.list_semantics(containers)
    ('map', ('name',))
    >>> schemas.merge_key(containers)
    'name'
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

Node = dict[str, Any]
"""A JSON-schema node (a property or a definition)."""

_REF_PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")


def schema_dir(kube_version: str) -> Path:
    """The directory of the strict schemas for ``kube_version`` (``"1.33"``).

    Args:
        kube_version: ``major.minor``.

    Returns:
        The path of ``v<version>.0-local-strict``.

    Raises:
        ValueError: ``kubernetes-validate`` is missing or has no schemas for that version.

    Example:
        >>> schema_dir("1.33").name
        'v1.33.0-local-strict'
    """
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "kubernetes-validate is not installed: pip install 'apim-selfhosted[testing]'"
        )
    base = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    path = base / f"v{kube_version}.0-local-strict"
    if not path.is_dir():
        known = sorted(
            p.name[1:].removesuffix(".0-local-strict")
            for p in base.glob("v*-local-strict")
            if p.is_dir()
        )
        raise ValueError(f"kube_version {kube_version!r} is not supported; allowed: {known}")
    return path


class Schemas:
    """The definitions of one Kubernetes release and navigation helpers over them.

    Args:
        definitions: The ``$defs`` mapping of ``_definitions.json``.
        kube_version: ``major.minor`` the definitions belong to.

    Example:
        >>> s = load_schemas("1.33")
        >>> s.kube_version, "io.k8s.api.core.v1.Pod" in s.definitions
        ('1.33', True)
    """

    def __init__(self, definitions: dict[str, Node], *, kube_version: str) -> None:
        self.definitions = definitions
        self.kube_version = kube_version
        self._by_gvk: dict[tuple[str, str], str] = {}
        for name, node in definitions.items():
            for gvk in node.get("x-kubernetes-group-version-kind", ()):
                group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
                api_version = f"{group}/{version}" if group else version
                self._by_gvk.setdefault((api_version, kind), name)

    def definition_name(self, api_version: str, kind: str) -> str:
        """The definition name (``io.k8s.api.apps.v1.Deployment``) of a kind.

        Raises:
            KeyError: No definition for that kind.
        """
        return self._by_gvk[(api_version, kind)]

    def for_kind(self, api_version: str, kind: str) -> Node:
        """The resolved schema of a top-level kind.

        Raises:
            KeyError: No definition for that kind.
        """
        return self.definitions[self._by_gvk[(api_version, kind)]]

    @staticmethod
    def ref_name(ref: str) -> str:
        """The definition name a ``$ref`` points at."""
        for prefix in _REF_PREFIXES:
            if ref.startswith(prefix):
                return ref[len(prefix) :]
        return ref.rsplit("/", 1)[-1]

    def resolve(self, node: Node | None) -> Node | None:
        """Follows ``$ref`` (and a single ``allOf``) to the node describing the structure."""
        seen = 0
        while node is not None and seen < 20:
            seen += 1
            ref = node.get("$ref")
            if ref is not None:
                node = self.definitions.get(self.ref_name(ref))
                continue
            all_of = node.get("allOf")
            if all_of and len(all_of) == 1 and "properties" not in node:
                node = all_of[0]
                continue
            return node
        return node

    def field(self, node: Node | None, name: str) -> Node | None:
        """The (unresolved) schema of field ``name`` of an object node, or None if unknown."""
        node = self.resolve(node)
        if node is None:
            return None
        props = node.get("properties")
        if props is not None and name in props:
            child: Node = props[name]
            return child
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            return extra
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return {}
        return None

    def items(self, node: Node | None) -> Node | None:
        """The (unresolved) schema of the items of an array node."""
        node = self.resolve(node)
        if node is None:
            return None
        items = node.get("items")
        return items if isinstance(items, dict) else None

    def path(self, node: Node | None, fields: Sequence[str]) -> Node | None:
        """Walks ``fields`` down from ``node``, stepping into array items transparently."""
        for name in fields:
            resolved = self.resolve(node)
            if resolved is not None and _is_array(resolved):
                node = self.items(resolved)
            node = self.field(node, name)
        return node

    def kind_of(self, node: Node | None) -> str:
        """``"object"`` (struct), ``"map"`` (free keys), ``"array"`` or ``"scalar"``."""
        node = self.resolve(node)
        if node is None:
            return "scalar"
        if _is_array(node):
            return "array"
        if "properties" in node:
            return "object"
        if isinstance(node.get("additionalProperties"), dict) or _types(node) == {"object"}:
            return "map"
        return "scalar"

    def is_atomic(self, node: Node | None) -> bool:
        """Whether server-side apply treats the (map or struct) value as one field."""
        for candidate in (node, self.resolve(node)):
            if candidate is not None and candidate.get("x-kubernetes-map-type") == "atomic":
                return True
        resolved = self.resolve(node)
        return resolved is not None and self.kind_of(resolved) == "scalar"

    def list_semantics(self, node: Node | None) -> tuple[str, tuple[str, ...]]:
        """``("map", keys)``, ``("set", ())`` or ``("atomic", ())`` for an array node.

        Uses ``x-kubernetes-list-type``/``x-kubernetes-list-map-keys`` and, where absent, the
        strategic-merge-patch annotations (as the API server's type converter does).
        """
        for candidate in (node, self.resolve(node)):
            if candidate is None:
                continue
            list_type = candidate.get("x-kubernetes-list-type")
            if list_type == "map":
                keys = tuple(candidate.get("x-kubernetes-list-map-keys") or ())
                if not keys and candidate.get("x-kubernetes-patch-merge-key"):
                    keys = (candidate["x-kubernetes-patch-merge-key"],)
                return "map", keys
            if list_type in ("set", "atomic"):
                return str(list_type), ()
        strategy = self.patch_strategy(node)
        key = self.merge_key(node)
        if "merge" in strategy and key:
            return "map", (key,)
        return "atomic", ()

    def patch_strategy(self, node: Node | None) -> tuple[str, ...]:
        """The ``x-kubernetes-patch-strategy`` of a field (e.g. ``("merge", "retainKeys")``)."""
        for candidate in (node, self.resolve(node)):
            if candidate is not None and candidate.get("x-kubernetes-patch-strategy"):
                return tuple(str(candidate["x-kubernetes-patch-strategy"]).split(","))
        return ()

    def merge_key(self, node: Node | None) -> str | None:
        """The ``x-kubernetes-patch-merge-key`` of a list field, or None."""
        for candidate in (node, self.resolve(node)):
            if candidate is not None and candidate.get("x-kubernetes-patch-merge-key"):
                return str(candidate["x-kubernetes-patch-merge-key"])
        return None


def _types(node: Node) -> set[str]:
    t = node.get("type")
    if t is None:
        return set()
    if isinstance(t, str):
        return {t}
    return {x for x in t if x != "null"}


def _is_array(node: Node) -> bool:
    return _types(node) == {"array"}


@functools.lru_cache(maxsize=4)
def load_schemas(kube_version: str) -> Schemas:
    """Loads (once per process and version) the definitions of ``kube_version``.

    Args:
        kube_version: ``major.minor``, e.g. ``"1.33"``.

    Returns:
        The :class:`Schemas`.

    Raises:
        ValueError: The version is not shipped by ``kubernetes-validate``.

    Example:
        >>> load_schemas("1.33") is load_schemas("1.33")
        True
    """
    path = schema_dir(kube_version) / "_definitions.json"
    with path.open(encoding="utf-8") as fh:
        document = json.load(fh)
    logger.debug("loaded %d definitions for Kubernetes %s", len(document["$defs"]), kube_version)
    return Schemas(document["$defs"], kube_version=kube_version)
