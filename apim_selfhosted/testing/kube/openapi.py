"""Discovery and OpenAPI documents of the emulator, generated from the resource table and schemas.

* Discovery: ``/api``, ``/apis`` (plain ``APIVersions``/``APIGroupList`` and the aggregated
  ``apidiscovery.k8s.io/v2`` form that kubectl asks for first) and one ``APIResourceList`` per
  group-version.
* OpenAPI v3: an index at ``/openapi/v3`` and one document per group-version, with the
  component schemas converted from the official JSON schemas and paths that declare the
  query parameters (``fieldValidation``, ``dryRun``, ``fieldManager``) kubectl looks for.
* OpenAPI v2 (JSON): one document with every definition and path.

Example:
    >>> from apim_selfhosted.testing.kube.schema import load_schemas
    >>> docs = Documents(load_schemas("1.33"), kube_version="1.33")
    >>> docs.resource_list("apps/v1")["resources"][0]["name"]
    'deployments'
    >>> sorted(docs.openapi_v3_index()["paths"])[:2]
    ['api/v1', 'apis/apps/v1']
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from functools import cached_property
from typing import Any

from apim_selfhosted.testing.kube.resources import RESOURCES, ResourceType, groups
from apim_selfhosted.testing.kube.schema import Schemas

_SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "log": ["get"],
}

_PATCH_CONTENT_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_EXTRA_DEFINITIONS = (
    _META + "Status",
    _META + "DeleteOptions",
    _META + "WatchEvent",
    _META + "APIResourceList",
    _META + "Patch",
    "io.k8s.api.autoscaling.v1.Scale",
)


_VIRTUAL: dict[str, list[dict[str, Any]]] = {
    # create-only review resources that are answered, never stored
    "authorization.k8s.io/v1": [
        {
            "name": "selfsubjectaccessreviews",
            "singularName": "selfsubjectaccessreview",
            "namespaced": False,
            "kind": "SelfSubjectAccessReview",
            "verbs": ["create"],
        }
    ],
}


def _subresource_kind(rt: ResourceType, sub: str) -> tuple[str, str, str]:
    if sub == "scale":
        return "autoscaling", "v1", "Scale"
    return rt.group, rt.version, rt.kind


class Documents:
    """Builds (once) every discovery and OpenAPI document the server serves.

    Args:
        schemas: The release's schemas.
        kube_version: ``major.minor`` reported by ``/version``.
    """

    def __init__(self, schemas: Schemas, *, kube_version: str) -> None:
        self.schemas = schemas
        self.kube_version = kube_version

    # --- /version and discovery ------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        """The ``/version`` document.

        Example:
            >>> from apim_selfhosted.testing.kube.schema import load_schemas
            >>> Documents(load_schemas("1.33"), kube_version="1.33").version()["gitVersion"]
            'v1.33.0'
        """
        major, minor = self.kube_version.split(".")
        return {
            "major": major,
            "minor": minor,
            "gitVersion": f"v{self.kube_version}.0",
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24.0",
            "compiler": "gc",
            "platform": "linux/amd64",
            "emulationMajor": major,
            "emulationMinor": minor,
        }

    def api_versions(self, server_address: str) -> dict[str, Any]:
        """``/api``: the core group's versions."""
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
            ],
        }

    def api_groups(self) -> dict[str, Any]:
        """``/apis``: the named groups."""
        items = []
        for api_version in [*groups(), *_VIRTUAL]:
            if "/" not in api_version:
                continue
            group, version = api_version.split("/")
            gv = {"groupVersion": api_version, "version": version}
            items.append({"name": group, "versions": [gv], "preferredVersion": gv})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": items}

    def resource_list(self, api_version: str) -> dict[str, Any]:
        """The ``APIResourceList`` of one group-version.

        Raises:
            KeyError: The group-version is not served.
        """
        if api_version in _VIRTUAL:
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": api_version,
                "resources": [dict(r) for r in _VIRTUAL[api_version]],
            }
        resources: list[dict[str, Any]] = []
        for rt in groups()[api_version]:
            entry: dict[str, Any] = {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": list(rt.verbs),
                "storageVersionHash": _hash(rt.key)[:12],
            }
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            if rt.categories:
                entry["categories"] = list(rt.categories)
            resources.append(entry)
            for sub in rt.subresources:
                group, version, kind = _subresource_kind(rt, sub)
                sub_entry: dict[str, Any] = {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": kind,
                    "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"]),
                }
                if sub == "scale":
                    sub_entry["group"], sub_entry["version"] = group, version
                resources.append(sub_entry)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": api_version,
            "resources": resources,
        }

    def aggregated(self, *, core: bool) -> dict[str, Any]:
        """The aggregated discovery document (``apidiscovery.k8s.io/v2``) of /api or /apis."""
        items = []
        for api_version, rts in groups().items():
            if ("/" in api_version) == core:
                continue
            group, _, version = api_version.rpartition("/")
            resources = []
            for rt in rts:
                res: dict[str, Any] = {
                    "resource": rt.plural,
                    "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                    "scope": "Namespaced" if rt.namespaced else "Cluster",
                    "singularResource": rt.singular,
                    "verbs": list(rt.verbs),
                }
                if rt.short_names:
                    res["shortNames"] = list(rt.short_names)
                if rt.categories:
                    res["categories"] = list(rt.categories)
                subs = []
                for sub in rt.subresources:
                    g, v, k = _subresource_kind(rt, sub)
                    subs.append(
                        {
                            "subresource": sub,
                            "responseKind": {"group": g, "version": v, "kind": k},
                            "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"]),
                        }
                    )
                if subs:
                    res["subresources"] = subs
                resources.append(res)
            items.append(
                {
                    "metadata": {"name": group, "creationTimestamp": None},
                    "versions": [
                        {"version": version, "resources": resources, "freshness": "Current"}
                    ],
                }
            )
        if not core:
            for api_version, virtual in _VIRTUAL.items():
                group, _, version = api_version.partition("/")
                resources = [
                    {
                        "resource": r["name"],
                        "responseKind": {"group": group, "version": version, "kind": r["kind"]},
                        "scope": "Namespaced" if r["namespaced"] else "Cluster",
                        "singularResource": r["singularName"],
                        "verbs": list(r["verbs"]),
                    }
                    for r in virtual
                ]
                items.append(
                    {
                        "metadata": {"name": group, "creationTimestamp": None},
                        "versions": [
                            {"version": version, "resources": resources, "freshness": "Current"}
                        ],
                    }
                )
        return {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        }

    # --- OpenAPI v3 ------------------------------------------------------------------------

    @staticmethod
    def gv_path(api_version: str) -> str:
        """``api/v1`` or ``apis/<group>/<version>``."""
        return f"apis/{api_version}" if "/" in api_version else f"api/{api_version}"

    @cached_property
    def _v3_docs(self) -> dict[str, bytes]:
        return {
            self.gv_path(api_version): json.dumps(
                self._v3_document(api_version, rts), separators=(",", ":")
            ).encode()
            for api_version, rts in groups().items()
        }

    def openapi_v3_index(self) -> dict[str, Any]:
        """The ``/openapi/v3`` index with content-hashed URLs."""
        return {
            "paths": {
                path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash_bytes(body)}"}
                for path, body in sorted(self._v3_docs.items())
            }
        }

    def openapi_v3(self, gv_path: str) -> bytes | None:
        """The serialized OpenAPI v3 document of ``api/v1`` or ``apis/<g>/<v>``, or None."""
        return self._v3_docs.get(gv_path)

    def _closure(self, names: list[str]) -> list[str]:
        seen: dict[str, None] = {}
        stack = list(names)
        while stack:
            name = stack.pop()
            if name in seen or name not in self.schemas.definitions:
                continue
            seen[name] = None
            stack.extend(_refs(self.schemas.definitions[name], self.schemas))
        return sorted(seen)

    def _kind_names(self, rts: list[ResourceType]) -> list[str]:
        names = list(_EXTRA_DEFINITIONS)
        for rt in rts:
            names.append(self.schemas.definition_name(rt.api_version, rt.kind))
            with contextlib.suppress(KeyError):
                names.append(self.schemas.definition_name(rt.api_version, rt.kind + "List"))
        return names

    def _v3_document(self, api_version: str, rts: list[ResourceType]) -> dict[str, Any]:
        names = self._closure(self._kind_names(rts))
        schemas = {
            n: _to_openapi(self.schemas.definitions[n], "#/components/schemas/", n) for n in names
        }
        paths: dict[str, Any] = {}
        for rt in rts:
            paths.update(self._paths(rt, "#/components/schemas/", v3=True))
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": f"v{self.kube_version}.0"},
            "paths": paths,
            "components": {"schemas": schemas},
        }

    @cached_property
    def openapi_v2(self) -> bytes:
        """The serialized OpenAPI v2 (swagger) JSON document with every served path."""
        all_rts = list(RESOURCES)
        names = self._closure(self._kind_names(all_rts))
        definitions = {
            n: _to_openapi(self.schemas.definitions[n], "#/definitions/", n) for n in names
        }
        paths: dict[str, Any] = {}
        for rt in all_rts:
            paths.update(self._paths(rt, "#/definitions/", v3=False))
        doc = {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": f"v{self.kube_version}.0"},
            "paths": paths,
            "definitions": definitions,
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    def _paths(self, rt: ResourceType, prefix: str, *, v3: bool) -> dict[str, Any]:
        base = f"/{self.gv_path(rt.api_version)}"
        if rt.namespaced:
            base += "/namespaces/{namespace}"
        collection = f"{base}/{rt.plural}"
        item = f"{collection}/{{name}}"
        kind_ref = prefix + self.schemas.definition_name(rt.api_version, rt.kind)
        try:
            list_ref = prefix + self.schemas.definition_name(rt.api_version, rt.kind + "List")
        except KeyError:
            list_ref = kind_ref
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}

        def param(name: str, kind: str = "string", where: str = "query") -> dict[str, Any]:
            if v3:
                return {"name": name, "in": where, "schema": {"type": kind, "uniqueItems": True}}
            return {"name": name, "in": where, "type": kind, "uniqueItems": True}

        def op(action: str, verb: str, ref: str, params: list[str], body: bool) -> dict[str, Any]:
            ok = (
                {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}
                if v3
                else {"description": "OK", "schema": {"$ref": ref}}
            )
            operation: dict[str, Any] = {
                "operationId": f"{verb}{rt.kind}",
                "parameters": [param(p) for p in params],
                "responses": {"200": ok},
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            }
            if body:
                if v3:
                    if action == "patch":
                        patch_schema = {"schema": {"$ref": prefix + _META + "Patch"}}
                        content = dict.fromkeys(_PATCH_CONTENT_TYPES, patch_schema)
                    else:
                        content = {"*/*": {"schema": {"$ref": ref}}}
                    operation["requestBody"] = {"content": content, "required": True}
                else:
                    operation["parameters"].append(
                        {"name": "body", "in": "body", "required": True, "schema": {"$ref": ref}}
                    )
            return operation

        write = ["dryRun", "fieldManager", "fieldValidation", "pretty"]
        path_params = [param("name", where="path")] if True else []
        ns_param = [param("namespace", where="path")] if rt.namespaced else []
        collection_ops = {
            "get": op(
                "list",
                "list",
                list_ref,
                [
                    "labelSelector",
                    "fieldSelector",
                    "limit",
                    "continue",
                    "resourceVersion",
                    "watch",
                    "timeoutSeconds",
                ],
                False,
            ),
            "post": op("post", "create", kind_ref, write, True),
            "parameters": ns_param,
        }
        item_ops = {
            "get": op("get", "read", kind_ref, ["pretty"], False),
            "put": op("put", "replace", kind_ref, write, True),
            "patch": op("patch", "patch", kind_ref, [*write, "force"], True),
            "delete": op(
                "delete",
                "delete",
                prefix + _META + "Status",
                ["dryRun", "gracePeriodSeconds", "propagationPolicy"],
                False,
            ),
            "parameters": [*path_params, *ns_param],
        }
        out = {collection: collection_ops, item: item_ops}
        for sub in rt.subresources:
            if sub == "log":
                continue
            g, v, k = _subresource_kind(rt, sub)
            sub_ref = kind_ref if sub != "scale" else prefix + "io.k8s.api.autoscaling.v1.Scale"
            sub_ops: dict[str, Any] = {
                "get": op("get", f"read{sub.title()}", sub_ref, ["pretty"], False),
                "put": op("put", f"replace{sub.title()}", sub_ref, write, True),
                "patch": op("patch", f"patch{sub.title()}", sub_ref, [*write, "force"], True),
                "parameters": [*path_params, *ns_param],
            }
            for o in ("get", "put", "patch"):
                sub_ops[o]["x-kubernetes-group-version-kind"] = {
                    "group": g,
                    "version": v,
                    "kind": k,
                }
            out[f"{item}/{sub}"] = sub_ops
        return out


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _hash_bytes(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()[:128].upper()


def _refs(node: Any, schemas: Schemas) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out.append(schemas.ref_name(value))
            else:
                out.extend(_refs(value, schemas))
    elif isinstance(node, list):
        for value in node:
            out.extend(_refs(value, schemas))
    return out


_SPECIAL = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "type": "string",
        "format": "int-or-string",
        "description": "IntOrString is a type that can hold an int32 or a string.",
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "type": "string",
        "description": "Quantity is a fixed-point representation of a number.",
    },
}


def _to_openapi(node: Any, prefix: str, name: str | None = None) -> Any:
    """Converts a JSON-schema node (2020-12, nullable types) to OpenAPI v2/v3 form."""
    if name is not None and name in _SPECIAL:
        return dict(_SPECIAL[name])
    if isinstance(node, list):
        return [_to_openapi(v, prefix) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    ref = node.get("$ref")
    for key, value in node.items():
        if key in ("$ref", "$schema", "$id"):
            continue
        if key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) == 1:
                out["type"] = types[0]
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key == "oneOf":
            continue
        if key in ("properties",) and isinstance(value, dict):
            out[key] = {k: _to_openapi(v, prefix) for k, v in value.items()}
            continue
        out[key] = _to_openapi(value, prefix)
    if ref is not None:
        target = {"$ref": prefix + Schemas.ref_name(ref)}
        if not out:
            return target
        out["allOf"] = [target]
    return out
