"""The resource types that the Kubernetes emulator serves, as one table.

Discovery, routing, the object store, validation and the controllers all read this table, so a
resource is added in one place.

Example:
    >>> from apim_selfhosted.testing.kube.resources import by_key, by_kind
    >>> by_key("deployments.apps").api_version
    'apps/v1'
    >>> by_kind("v1", "Secret").plural
    'secrets'
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served resource: ``group``/``version``/``plural`` and what discovery says of it."""

    group: str
    """API group; ``""`` for the core group."""
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    """Served subresources, e.g. ``("status", "scale")``; pods also serve ``log``."""
    verbs: tuple[str, ...] = ALL_VERBS
    categories: tuple[str, ...] = ()

    @property
    def singular(self) -> str:
        """The lower-case kind, as discovery reports ``singularName``."""
        return self.kind.lower()

    @property
    def key(self) -> str:
        """``plural`` for the core group, ``plural.group`` otherwise (``deployments.apps``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``group/version`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def has_status(self) -> bool:
        """Whether the resource has a ``status`` subresource (spec and status written apart)."""
        return "status" in self.subresources


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        ("ns",),
        ("status",),
        ("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    ResourceType(
        "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",), ("status",)
    ),
    ResourceType(
        "",
        "v1",
        "services",
        "Service",
        True,
        ("svc",),
        ("status",),
        ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
        ("all",),
    ),
    ResourceType("", "v1", "pods", "Pod", True, ("po",), ("status", "log"), ALL_VERBS, ("all",)),
    ResourceType("", "v1", "events", "Event", True, ("ev",)),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        ("deploy",),
        ("status", "scale"),
        ALL_VERBS,
        ("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        True,
        ("rs",),
        ("status", "scale"),
        ALL_VERBS,
        ("all",),
    ),
    ResourceType(
        "policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), ("status",)
    ),
    ResourceType(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        True,
        ("hpa",),
        ("status",),
        ALL_VERBS,
        ("all",),
    ),
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceType(
        "batch", "v1", "cronjobs", "CronJob", True, ("cj",), ("status",), ALL_VERBS, ("all",)
    ),
    ResourceType("batch", "v1", "jobs", "Job", True, (), ("status",), ALL_VERBS, ("all",)),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
)

_BY_KEY = {rt.key: rt for rt in RESOURCES}
_BY_KIND = {(rt.api_version, rt.kind): rt for rt in RESOURCES}


def by_key(key: str) -> ResourceType:
    """The resource type for ``plural`` or ``plural.group``.

    Raises:
        KeyError: The emulator does not serve that resource.
    """
    return _BY_KEY[key]


def by_kind(api_version: str, kind: str) -> ResourceType:
    """The resource type for an object's ``apiVersion`` and ``kind``.

    Raises:
        KeyError: The emulator does not serve that kind.
    """
    return _BY_KIND[(api_version, kind)]


def groups() -> dict[str, list[ResourceType]]:
    """Served resources grouped by ``api_version`` (``"v1"``, ``"apps/v1"`` ...), in table order."""
    out: dict[str, list[ResourceType]] = {}
    for rt in RESOURCES:
        out.setdefault(rt.api_version, []).append(rt)
    return out
