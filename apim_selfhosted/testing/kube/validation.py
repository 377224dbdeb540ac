"""Admission checks of the emulator: schema, names, labels, quantities and immutable fields.

The structural checks use the official JSON schemas of ``kubernetes-validate`` (one compiled
validator per kind, cached). Unknown fields are found first by walking the object along the
schema, so the HTTP layer can treat them according to ``fieldValidation`` (``Strict``: 400
``strict decoding error``; ``Warn``: a ``Warning`` header and the field is dropped; ``Ignore``:
dropped). Messages are worded like kube-apiserver's ``field.Error``\\s.

Example:
    >>> from apim_selfhosted.testing.kube.schema import load_schemas
    >>> from apim_selfhosted.testing.kube.resources import by_key
    >>> v = Validator(load_schemas("1.33"))
    >>> obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}
    >>> [(f, m[:40]) for _, f, m in v.validate(by_key("configmaps"), obj)]
    [('metadata.name', 'Invalid value: "Bad_Name": a lowercase R')]
    >>> v.unknown_fields(by_key("configmaps"), {"metadata": {"name": "x"}, "dta": {}})
    ['dta']
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

from apim_selfhosted.testing.kube.resources import ResourceType
from apim_selfhosted.testing.kube.schema import Node, Schemas

Cause = tuple[str, str, str]
"""``(reason, field, message)`` as ``ApiError.invalid`` takes them."""

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")

MSG_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
MSG_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
MSG_DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
MSG_QUALIFIED = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
MSG_LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
MSG_CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
MSG_QUANTITY = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)

_COMPILED: dict[tuple[str, int, str], Any] = {}
_COMPILE_LOCK = threading.Lock()

# how each kind's name is validated (default: DNS-1123 subdomain)
_NAME_RULES = {
    "namespaces": "label",
    "services": "dns1035",
    "roles": "path",
    "rolebindings": "path",
}
_POD_SPEC_PATHS = {
    "pods": ("spec",),
    "deployments": ("spec", "template", "spec"),
    "replicasets": ("spec", "template", "spec"),
    "jobs": ("spec", "template", "spec"),
    "cronjobs": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def go_value(value: Any) -> str:
    """Renders a value as kube-apiserver prints it after ``Invalid value:``.

    Example:
        >>> go_value("x"), go_value(3), go_value({"app": "y"})
        ('"x"', '3', 'map[string]string{"app":"y"}')
    """
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(value.items()))
        return "map[string]string{" + inner + "}"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def check_name(rt: ResourceType, name: str, field: str = "metadata.name") -> list[Cause]:
    """The causes (if any) for an invalid object name of resource ``rt``.

    Example:
        >>> check_name(by_key("services"), "1svc")[0][2][:32]
        'Invalid value: "1svc": a DNS-103'
    """
    rule = _NAME_RULES.get(rt.plural, "subdomain")
    causes: list[Cause] = []
    bad = f"Invalid value: {json.dumps(name)}: "
    if rule == "path":
        for part in ("/", "%"):
            if part in name:
                causes.append(("FieldValueInvalid", field, bad + f"may not contain '{part}'"))
        if name in (".", ".."):
            causes.append(("FieldValueInvalid", field, bad + f"may not be '{name}'"))
        return causes
    if rule == "subdomain":
        if len(name) > 253:
            causes.append(("FieldValueInvalid", field, bad + "must be no more than 253 characters"))
        if not _DNS1123_SUBDOMAIN.match(name):
            causes.append(("FieldValueInvalid", field, bad + MSG_SUBDOMAIN))
        return causes
    if len(name) > 63:
        causes.append(("FieldValueInvalid", field, bad + "must be no more than 63 characters"))
    pattern, msg = (_DNS1123_LABEL, MSG_LABEL) if rule == "label" else (_DNS1035_LABEL, MSG_DNS1035)
    if not pattern.match(name):
        causes.append(("FieldValueInvalid", field, bad + msg))
    return causes


def check_labels(labels: Any, field: str) -> list[Cause]:
    """Causes for invalid label keys or values.

    Example:
        >>> check_labels({"app": "bad value"}, "metadata.labels")[0][1]
        'metadata.labels'
    """
    causes: list[Cause] = []
    if not isinstance(labels, dict):
        return causes
    for key, value in labels.items():
        causes.extend(check_qualified_name(str(key), field))
        if not isinstance(value, str):
            continue
        bad = f"Invalid value: {json.dumps(value)}: "
        if len(value) > 63:
            causes.append(("FieldValueInvalid", field, bad + "must be no more than 63 characters"))
        if not _LABEL_VALUE.match(value):
            causes.append(("FieldValueInvalid", field, bad + MSG_LABEL_VALUE))
    return causes


def check_qualified_name(key: str, field: str) -> list[Cause]:
    """Causes for an invalid qualified name (label or annotation key, ``prefix/name``)."""
    bad = f"Invalid value: {json.dumps(key)}: "
    prefix, _, name = key.rpartition("/")
    causes: list[Cause] = []
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        causes.append(("FieldValueInvalid", field, bad + "prefix part " + MSG_SUBDOMAIN))
    if not name:
        causes.append(("FieldValueInvalid", field, bad + "name part must be non-empty"))
    elif len(name) > 63:
        causes.append(
            ("FieldValueInvalid", field, bad + "name part must be no more than 63 characters")
        )
    elif not _QUALIFIED_NAME.match(name):
        causes.append(("FieldValueInvalid", field, bad + MSG_QUALIFIED))
    return causes


def _schema_path(path: Iterator[Any] | Any) -> str:
    out = ""
    for element in path:
        if isinstance(element, int):
            out += f"[{element}]"
        else:
            out += ("." if out else "") + str(element)
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class Validator:
    """Validates objects of every served kind against one Kubernetes release's schemas.

    Args:
        schemas: The release's schemas (``load_schemas(version)``).

    Example:
        >>> from apim_selfhosted.testing.kube.schema import load_schemas
        >>> v = Validator(load_schemas("1.33"))
        >>> v.validate(by_key("configmaps"), {"metadata": {"name": "ok"}, "data": {"k": "v"}})
        []
    """

    def __init__(self, schemas: Schemas) -> None:
        self.schemas = schemas

    def _validator(self, rt: ResourceType) -> Any:
        # compiled validators (and the references they resolved) are shared by every emulator
        # of the same release in the process
        key = (self.schemas.kube_version, id(self.schemas), rt.key)
        compiled = _COMPILED.get(key)
        if compiled is None:
            import jsonschema  # type: ignore[import-untyped]

            with _COMPILE_LOCK:
                compiled = _COMPILED.get(key)
                if compiled is None:
                    name = self.schemas.definition_name(rt.api_version, rt.kind)
                    schema = {"$defs": self.schemas.definitions, "$ref": f"#/$defs/{name}"}
                    compiled = jsonschema.Draft202012Validator(schema)
                    _COMPILED[key] = compiled
        return compiled

    def unknown_fields(
        self, rt: ResourceType, obj: dict[str, Any], *, prune: bool = False
    ) -> list[str]:
        """The dotted paths of fields the schema does not declare; with ``prune`` also drop them.

        Args:
            rt: The resource type.
            obj: The object (modified in place when ``prune``).
            prune: Remove the unknown fields.

        Returns:
            Paths like ``spec.foo`` or ``spec.template.spec.containers[0].imagePullPolcy``.
        """
        node = self.schemas.for_kind(rt.api_version, rt.kind)
        out: list[str] = []
        self._unknown(obj, node, "", out, prune)
        return out

    def _unknown(
        self, value: Any, node: Node | None, path: str, out: list[str], prune: bool
    ) -> None:
        s = self.schemas
        resolved = s.resolve(node)
        if resolved is None:
            return
        if isinstance(value, dict):
            props = resolved.get("properties")
            extra = resolved.get("additionalProperties")
            if resolved.get("x-kubernetes-preserve-unknown-fields"):
                return
            for key in list(value):
                child_path = f"{path}.{key}" if path else key
                if props is not None and key in props:
                    self._unknown(value[key], props[key], child_path, out, prune)
                elif isinstance(extra, dict):
                    self._unknown(value[key], extra, child_path, out, prune)
                elif props is not None or extra is False:
                    out.append(child_path)
                    if prune:
                        del value[key]
        elif isinstance(value, list):
            items = s.items(resolved)
            if items is not None:
                for i, item in enumerate(value):
                    self._unknown(item, items, f"{path}[{i}]", out, prune)

    def validate(
        self, rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any] | None = None
    ) -> list[Cause]:
        """All causes that make ``obj`` invalid (empty when valid).

        Args:
            rt: The resource type.
            obj: The defaulted object about to be stored (unknown fields already dropped).
            old: The stored object for an update (immutable-field checks).

        Returns:
            ``(reason, field, message)`` triples.
        """
        causes: list[Cause] = []
        meta = obj.get("metadata") or {}
        name = meta.get("name") or ""
        if name:
            causes.extend(check_name(rt, name))
        elif not meta.get("generateName"):
            causes.append(
                (
                    "FieldValueRequired",
                    "metadata.name",
                    "Required value: name or generateName is required",
                )
            )
        causes.extend(check_labels(meta.get("labels"), "metadata.labels"))
        for key in (
            (meta.get("annotations") or {}) if isinstance(meta.get("annotations"), dict) else ()
        ):
            causes.extend(check_qualified_name(str(key), "metadata.annotations"))
        causes.extend(self._schema_causes(rt, obj))
        if not causes:
            causes.extend(self._semantic(rt, obj))
        if old is not None:
            causes.extend(self._immutable(rt, obj, old))
        return causes

    def _schema_causes(self, rt: ResourceType, obj: dict[str, Any]) -> list[Cause]:
        causes: list[Cause] = []
        for error in self._validator(rt).iter_errors(obj):
            causes.extend(self._describe(error))
        return causes

    def _describe(self, error: Any) -> list[Cause]:
        field = _schema_path(error.absolute_path)
        value = error.instance
        if error.validator == "type":
            wanted = error.validator_value
            if isinstance(wanted, list):
                wanted = next((w for w in wanted if w != "null"), "object")
            actual = _json_type(value)
            msg = (
                f"Invalid value: {json.dumps(actual)}: {field} in body must be of type "
                f"{wanted}: {json.dumps(actual)}"
            )
            return [("FieldValueTypeInvalid", field, msg)]
        if error.validator == "required":
            missing = str(error.message).split("'")[1] if "'" in error.message else ""
            child = f"{field}.{missing}" if field else missing
            return [("FieldValueRequired", child, "Required value")]
        if error.validator == "enum":
            supported = ", ".join(json.dumps(v) for v in error.validator_value if v is not None)
            msg = f"Unsupported value: {go_value(value)}: supported values: {supported}"
            return [("FieldValueNotSupported", field, msg)]
        if error.validator == "oneOf":
            kinds = sorted(
                {
                    next((t for t in (sub.get("type") or []) if t != "null"), "")
                    for sub in error.validator_value
                }
                - {""}
            )
            actual = _json_type(value)
            msg = (
                f"Invalid value: {json.dumps(actual)}: {field} in body must be of type "
                f"{' or '.join(kinds)}: {json.dumps(actual)}"
            )
            return [("FieldValueTypeInvalid", field, msg)]
        if error.validator == "additionalProperties":
            return []  # reported separately as unknown fields
        if error.context:
            out: list[Cause] = []
            for sub in error.context:
                out.extend(self._describe(sub))
            if out:
                return out[:1]
        return [("FieldValueInvalid", field, f"Invalid value: {go_value(value)}: {error.message}")]

    # --- semantic checks (the apiserver's validation functions) ---------------------------

    def _semantic(self, rt: ResourceType, obj: dict[str, Any]) -> list[Cause]:
        causes: list[Cause] = []
        spec = obj.get("spec") or {}
        pod_path = _POD_SPEC_PATHS.get(rt.plural)
        if pod_path is not None:
            pod_spec: Any = obj
            for step in pod_path:
                pod_spec = (pod_spec or {}).get(step) if isinstance(pod_spec, dict) else None
            causes.extend(_pod_spec(pod_spec or {}, ".".join(pod_path)))
            if rt.plural in ("deployments", "replicasets"):
                causes.extend(self._workload(spec))
        if rt.plural in ("secrets", "configmaps"):
            for field in ("data", "binaryData", "stringData"):
                for key in obj.get(field) or {}:
                    if len(key) > 253 or not _CONFIG_KEY.match(key):
                        causes.append(
                            (
                                "FieldValueInvalid",
                                f"{field}[{key}]",
                                f"Invalid value: {json.dumps(key)}: {MSG_CONFIG_KEY}",
                            )
                        )
        if rt.plural == "secrets":
            for key, value in (obj.get("data") or {}).items():
                try:
                    base64.b64decode(str(value), validate=True)
                except (binascii.Error, ValueError):
                    causes.append(
                        (
                            "FieldValueInvalid",
                            f"data[{key}]",
                            'Invalid value: "<secret contents redacted>": illegal base64 data',
                        )
                    )
        if rt.plural == "services":
            causes.extend(_service(spec))
        if rt.plural == "cronjobs":
            causes.extend(_cron_job(spec))
        if rt.plural == "persistentvolumeclaims":
            for bucket in ("requests", "limits"):
                for key, value in ((spec.get("resources") or {}).get(bucket) or {}).items():
                    causes.extend(_quantity(value, f"spec.resources.{bucket}[{key}]"))
        return causes

    @staticmethod
    def _workload(spec: dict[str, Any]) -> list[Cause]:
        from apim_selfhosted.testing.kube.store import match_label_selector

        causes: list[Cause] = []
        strategy = spec.get("strategy") or {}
        causes.extend(
            _supported(strategy.get("type"), "spec.strategy.type", ("Recreate", "RollingUpdate"))
        )
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.replicas",
                    f"Invalid value: {replicas}: must be greater than or equal to 0",
                )
            )
        selector = spec.get("selector")
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            causes.append(
                ("FieldValueRequired", "spec.selector", "Required value")
                if not selector
                else (
                    "FieldValueInvalid",
                    "spec.selector",
                    f"Invalid value: {go_value(selector)}: "
                    "empty selector is invalid for deployment",
                )
            )
            return causes
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not match_label_selector(selector, labels):
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.template.metadata.labels",
                    f"Invalid value: {go_value(labels)}: "
                    "`selector` does not match template `labels`",
                )
            )
        return causes

    def _immutable(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        causes: list[Cause] = []
        immutable = "field is immutable"
        if rt.plural in ("secrets", "configmaps") and old.get("immutable") is True:
            for field in ("data", "binaryData"):
                if (obj.get(field) or {}) != (old.get(field) or {}):
                    causes.append(
                        (
                            "FieldValueForbidden",
                            field,
                            "Forbidden: field is immutable when `immutable` is set",
                        )
                    )
            if obj.get("immutable") is not True:
                causes.append(
                    (
                        "FieldValueForbidden",
                        "immutable",
                        "Forbidden: field is immutable when `immutable` is set",
                    )
                )
        if rt.plural == "secrets" and old.get("type") and obj.get("type") != old.get("type"):
            causes.append(
                (
                    "FieldValueInvalid",
                    "type",
                    f"Invalid value: {go_value(obj.get('type'))}: {immutable}",
                )
            )
        if rt.plural in ("deployments", "replicasets"):
            new_sel = (obj.get("spec") or {}).get("selector")
            if new_sel != (old.get("spec") or {}).get("selector"):
                causes.append(
                    (
                        "FieldValueInvalid",
                        "spec.selector",
                        f"Invalid value: {go_value(new_sel)}: {immutable}",
                    )
                )
        if rt.plural == "services":
            old_ip = (old.get("spec") or {}).get("clusterIP")
            new_ip = (obj.get("spec") or {}).get("clusterIP")
            if old_ip and new_ip and old_ip != new_ip:
                causes.append(
                    (
                        "FieldValueInvalid",
                        "spec.clusterIPs[0]",
                        f"Invalid value: {go_value([new_ip])}: may not change once set",
                    )
                )
        if rt.plural == "jobs":
            new_t = (obj.get("spec") or {}).get("template")
            if new_t != (old.get("spec") or {}).get("template"):
                causes.append(
                    (
                        "FieldValueInvalid",
                        "spec.template",
                        f"Invalid value: {go_value(new_t)}: {immutable}",
                    )
                )
        return causes


def _quantity(value: Any, field: str) -> list[Cause]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return []
    if isinstance(value, str) and _QUANTITY.match(value):
        return []
    return [("FieldValueInvalid", field, f"Invalid value: {go_value(value)}: {MSG_QUANTITY}")]


def _pod_spec(spec: dict[str, Any], base: str) -> list[Cause]:
    causes: list[Cause] = []
    causes.extend(
        _supported(
            spec.get("restartPolicy"), f"{base}.restartPolicy", ("Always", "Never", "OnFailure")
        )
    )
    causes.extend(
        _supported(
            spec.get("dnsPolicy"),
            f"{base}.dnsPolicy",
            ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"),
        )
    )
    containers = spec.get("containers")
    if not containers:
        causes.append(("FieldValueRequired", f"{base}.containers", "Required value"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            if not isinstance(c, dict):
                continue
            at = f"{base}.{group}[{i}]"
            name = c.get("name") or ""
            if not name:
                causes.append(("FieldValueRequired", f"{at}.name", "Required value"))
            else:
                causes.extend(check_name_label(name, f"{at}.name"))
                if name in seen:
                    causes.append(
                        (
                            "FieldValueDuplicate",
                            f"{at}.name",
                            f"Duplicate value: {json.dumps(name)}",
                        )
                    )
                seen.add(name)
            if not c.get("image"):
                causes.append(("FieldValueRequired", f"{at}.image", "Required value"))
            causes.extend(
                _supported(
                    c.get("imagePullPolicy"),
                    f"{at}.imagePullPolicy",
                    ("Always", "IfNotPresent", "Never"),
                )
            )
            for bucket in ("limits", "requests"):
                for key, value in ((c.get("resources") or {}).get(bucket) or {}).items():
                    causes.extend(_quantity(value, f"{at}.resources.{bucket}[{key}]"))
            for j, env in enumerate(c.get("env") or []):
                env_name = (env or {}).get("name") or ""
                if not env_name:
                    causes.append(("FieldValueRequired", f"{at}.env[{j}].name", "Required value"))
                elif not _ENV_NAME.match(env_name):
                    causes.append(
                        (
                            "FieldValueInvalid",
                            f"{at}.env[{j}].name",
                            f"Invalid value: {json.dumps(env_name)}: a valid environment variable "
                            "name must consist of alphabetic characters, digits, '_', '-', or '.', "
                            "and must not start with a digit (e.g. 'my.env-name',  or "
                            "'MY_ENV.NAME',"
                            "  or 'MyEnvName1', regex used for validation is "
                            "'[-._a-zA-Z][-._a-zA-Z0-9]*')",
                        )
                    )
            for j, port in enumerate(c.get("ports") or []):
                number = (port or {}).get("containerPort")
                if isinstance(number, int) and not 1 <= number <= 65535:
                    causes.append(
                        (
                            "FieldValueInvalid",
                            f"{at}.ports[{j}].containerPort",
                            f"Invalid value: {number}: must be between 1 and 65535, inclusive",
                        )
                    )
    return causes


def check_name_label(name: str, field: str) -> list[Cause]:
    """Causes for a value that must be a DNS-1123 label (container and port names)."""
    bad = f"Invalid value: {json.dumps(name)}: "
    if len(name) > 63:
        return [("FieldValueInvalid", field, bad + "must be no more than 63 characters")]
    if not _DNS1123_LABEL.match(name):
        return [("FieldValueInvalid", field, bad + MSG_LABEL)]
    return []


def _supported(value: Any, field: str, allowed: tuple[str, ...]) -> list[Cause]:
    if value is None or value in allowed:
        return []
    listed = ", ".join(json.dumps(a) for a in allowed)
    return [
        (
            "FieldValueNotSupported",
            field,
            f"Unsupported value: {go_value(value)}: supported values: {listed}",
        )
    ]


def _service(spec: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    svc_type = spec.get("type", "ClusterIP")
    causes.extend(
        _supported(
            spec.get("type"), "spec.type", ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
        )
    )
    causes.extend(
        _supported(spec.get("sessionAffinity"), "spec.sessionAffinity", ("ClientIP", "None"))
    )
    for i, port in enumerate(spec.get("ports") or []):
        if isinstance(port, dict):
            causes.extend(
                _supported(
                    port.get("protocol"), f"spec.ports[{i}].protocol", ("SCTP", "TCP", "UDP")
                )
            )
    ports = spec.get("ports") or []
    if not ports and svc_type != "ExternalName" and spec.get("clusterIP") != "None":
        causes.append(("FieldValueRequired", "spec.ports", "Required value"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        if not isinstance(port, dict):
            continue
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            causes.append(
                (
                    "FieldValueInvalid",
                    f"spec.ports[{i}].port",
                    f"Invalid value: {go_value(number)}: must be between 1 and 65535, inclusive",
                )
            )
        name = port.get("name")
        if len(ports) > 1 and not name:
            causes.append(("FieldValueRequired", f"spec.ports[{i}].name", "Required value"))
        if name:
            if name in names:
                causes.append(
                    (
                        "FieldValueDuplicate",
                        f"spec.ports[{i}].name",
                        f"Duplicate value: {json.dumps(name)}",
                    )
                )
            names.add(name)
    return causes


def by_key(key: str) -> ResourceType:
    """Re-export of :func:`resources.by_key` for the examples of this module."""
    from apim_selfhosted.testing.kube.resources import by_key as _by_key

    return _by_key(key)


# (min, max, names) of the five standard cron fields, as robfig/cron (kube's parser) has them.
_CRON_FIELDS: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (0, 59, ()),
    (0, 23, ()),
    (1, 31, ()),
    (1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    (0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_CRON_MACROS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_GO_DURATION = re.compile(r"^[+-]?(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+$|^0$")


def _cron_int(text: str, expr: str, names: tuple[str, ...], low: int) -> int:
    if text.lower() in names:
        return names.index(text.lower()) + low
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(
            f"failed to parse int from {text}: strconv.Atoi: parsing {json.dumps(text)}: "
            "invalid syntax"
        )
    number = int(text)
    if number < 0:
        raise ValueError(f"negative number ({number}) not allowed: {expr}")
    return number


def cron_schedule_error(schedule: str) -> str | None:
    """Why robfig/cron's ``ParseStandard`` (kube-apiserver's parser) refuses ``schedule``.

    Args:
        schedule: A CronJob's ``spec.schedule``.

    Returns:
        The parser's error message, or ``None`` when the schedule is valid.

    >>> cron_schedule_error("*/5 1-3 * jan,mar mon-fri"), cron_schedule_error("@daily")
    (None, None)
    >>> cron_schedule_error("61 * * * *")
    'end of range (61) above maximum (59): 61'
    """
    text = schedule.strip()
    if not text:
        return "empty spec string"
    if text.startswith(("TZ=", "CRON_TZ=")):
        zone, _, text = text.partition(" ")
        name = zone.split("=", 1)[1]
        if _time_zone_error(name) is not None:
            return f"provided bad location {name}: unknown time zone {name}"
        text = text.strip()
    if text.startswith("@"):
        if text in _CRON_MACROS:
            return None
        if text.startswith("@every "):
            duration = text[len("@every ") :]
            if _GO_DURATION.match(duration):
                return None
            return f"failed to parse duration {text}: time: invalid duration {json.dumps(duration)}"
        return f"unrecognized descriptor: {text}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    for field, (low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for expr in field.split(","):
            try:
                _cron_range(expr, low, high, names)
            except ValueError as exc:
                return str(exc)
    return None


def _cron_range(expr: str, low: int, high: int, names: tuple[str, ...]) -> None:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    if low_and_high[0] in ("*", "?"):
        start, end = low, high
    else:
        start = _cron_int(low_and_high[0], expr, names, low)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _cron_int(low_and_high[1], expr, names, low)
        else:
            raise ValueError(f"too many hyphens: {expr}")
    if len(range_and_step) == 2:
        step = _cron_int(range_and_step[1], expr, (), 0)
        if single:
            end = high
        if step <= 0:
            raise ValueError(f"step of range should be a positive number: {expr}")
    elif len(range_and_step) > 2:
        raise ValueError(f"too many slashes: {expr}")
    if start < low:
        raise ValueError(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise ValueError(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")


def _time_zone_error(name: str) -> str | None:
    import zoneinfo

    unknown = f"unknown time zone {name}"
    for part in name.split("/"):
        if (
            part in (".", "..")
            or part.startswith("-")
            or not re.fullmatch(r"[A-Za-z._+\-0-9]+", part)
        ):
            return unknown
    if name.lower() == "local":
        return (
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
        )
    if name == "UTC":
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return unknown
    return None


def _cron_job(spec: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    schedule = spec.get("schedule")
    if not schedule:
        causes.append(("FieldValueRequired", "spec.schedule", "Required value"))
    elif isinstance(schedule, str):
        error = cron_schedule_error(schedule)
        if error is not None:
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.schedule",
                    f"Invalid value: {go_value(schedule)}: {error}",
                )
            )
        if "TZ" in schedule:
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.schedule",
                    f"Invalid value: {go_value(schedule)}: cannot use TZ or CRON_TZ in schedule, "
                    "use timeZone field instead",
                )
            )
    zone = spec.get("timeZone")
    if isinstance(zone, str):
        if not zone:
            problem: str | None = "timeZone must be nil or non-empty string"
        else:
            problem = _time_zone_error(zone)
        if problem is not None:
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.timeZone",
                    f"Invalid value: {go_value(zone)}: {problem}",
                )
            )
    return causes
