"""Authentication and RBAC authorization of the emulator.

Bearer tokens map to users. The admin user (the one the emulator's kubeconfig uses) is in the
``system:masters`` group and may do anything. Other users are allowed what their rules say:
rules given to :meth:`Authorizer.add_user` (cluster-wide or for one namespace) and the rules of
every ``Role`` bound to them by a ``RoleBinding`` stored in the emulator, as RBAC evaluates them
(``verbs``, ``apiGroups``, ``resources`` including ``pods/log`` style subresources,
``resourceNames``, ``*`` wildcards).

Example:
    >>> auth = Authorizer(store=None)
    >>> user = auth.add_user("ci", token="t-1", rules=[
    ...     {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
    ...     namespace="apps")
    >>> auth.authenticate("t-1").name
    'ci'
    >>> auth.allowed(user, "get", "", "configmaps", "apps", "x")
    True
    >>> auth.allowed(user, "delete", "", "configmaps", "apps", "x")
    False
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apim_selfhosted.testing.kube.errors import ApiError

if TYPE_CHECKING:
    from apim_selfhosted.testing.kube.store import Store

ADMIN = "kubernetes-admin"


@dataclass
class User:
    """A user the emulator knows by its bearer token.

    Attributes:
        name: The user name RBAC sees (``subjects[].name`` of kind ``User``).
        groups: Group names (``system:masters`` may do anything).
        rules: ``(namespace or None for cluster-wide, rule)`` pairs given directly.
    """

    name: str
    groups: tuple[str, ...] = ()
    rules: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"User(name={self.name!r}, groups={self.groups!r})"


def _rule_allows(rule: Mapping[str, Any], verb: str, group: str, resource: str, name: str) -> bool:
    verbs = rule.get("verbs") or []
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    names = rule.get("resourceNames") or []
    if "*" not in verbs and verb not in verbs:
        return False
    if "*" not in groups and group not in groups:
        return False
    base, _, sub = resource.partition("/")
    resource_ok = (
        "*" in resources
        or resource in resources
        or (sub and f"{base}/*" in resources)
        or (sub and f"*/{sub}" in resources)
    )
    if not resource_ok:
        return False
    return not names or (bool(name) and name in names)


class Authorizer:
    """Maps tokens to users and decides RBAC.

    Args:
        store: The object store, for ``Role``/``RoleBinding`` objects (None: only direct rules).
    """

    def __init__(self, store: Store | None) -> None:
        self._store = store
        self._tokens: dict[str, User] = {}
        self._lock = threading.Lock()

    def add_user(
        self,
        name: str,
        *,
        token: str | None = None,
        rules: Sequence[Mapping[str, Any]] = (),
        namespace: str | None = None,
        groups: Sequence[str] = (),
    ) -> User:
        """Registers (or extends) a user with a bearer token.

        Args:
            name: User name.
            token: Its bearer token (random when omitted; kept if the user exists).
            rules: RBAC ``PolicyRule`` dicts granted directly.
            namespace: Where ``rules`` apply; None for every namespace and cluster scope.
            groups: Group names.

        Returns:
            The user.

        Raises:
            ValueError: A rule has no ``verbs`` or the token belongs to another user.
        """
        for rule in rules:
            if not rule.get("verbs"):
                raise ValueError(f"rule {dict(rule)!r}: 'verbs' is required")
        with self._lock:
            user = next((u for u in self._tokens.values() if u.name == name), None)
            if token is not None and token in self._tokens and self._tokens[token].name != name:
                raise ValueError("token is already used by another user")
            if user is None:
                user = User(name, tuple(groups))
            user.rules.extend((namespace, dict(rule)) for rule in rules)
            if token is None:
                existing = [t for t, u in self._tokens.items() if u is user]
                token = existing[0] if existing else secrets.token_urlsafe(24)
            self._tokens[token] = user
            return user

    def token_of(self, name: str) -> str:
        """The bearer token of user ``name``.

        Raises:
            KeyError: Unknown user.
        """
        with self._lock:
            for token, user in self._tokens.items():
                if user.name == name:
                    return token
        raise KeyError(name)

    def authenticate(self, token: str | None) -> User | None:
        """The user of a bearer token, or None."""
        if not token:
            return None
        with self._lock:
            return self._tokens.get(token)

    def allowed(
        self, user: User, verb: str, group: str, resource: str, namespace: str | None, name: str
    ) -> bool:
        """Whether ``user`` may ``verb`` the ``resource`` (``plural`` or ``plural/sub``)."""
        if "system:masters" in user.groups:
            return True
        for scope, rule in user.rules:
            if (scope is None or scope == namespace) and _rule_allows(
                rule, verb, group, resource, name
            ):
                return True
        if namespace and self._store is not None:
            from apim_selfhosted.testing.kube.resources import by_key

            bindings, _ = self._store.list(
                by_key("rolebindings.rbac.authorization.k8s.io"), namespace
            )
            for binding in bindings:
                if not _binds(binding, user):
                    continue
                ref = binding.get("roleRef") or {}
                if ref.get("kind") != "Role":
                    continue
                try:
                    role = self._store.get(
                        by_key("roles.rbac.authorization.k8s.io"), namespace, str(ref.get("name"))
                    )
                except ApiError:
                    continue
                for rule in role.get("rules") or []:
                    if _rule_allows(rule, verb, group, resource, name):
                        return True
        return False


def _binds(binding: Mapping[str, Any], user: User) -> bool:
    for subject in binding.get("subjects") or []:
        kind = subject.get("kind")
        if kind == "User" and subject.get("name") == user.name:
            return True
        if kind == "Group" and subject.get("name") in user.groups:
            return True
        if kind == "ServiceAccount":
            sa = f"system:serviceaccount:{subject.get('namespace')}:{subject.get('name')}"
            if sa == user.name:
                return True
    return False


def forbidden(
    user: str, verb: str, group: str, resource: str, namespace: str | None, name: str
) -> ApiError:
    """The 403 RBAC answers with, worded like kube-apiserver.

    Example:
        >>> print(forbidden("ci", "get", "", "pods/log", "apps", "p").message)
        pods "p" is forbidden: User "ci" cannot get resource "pods/log" in API group "" in the
        namespace "apps"
    """
    base = resource.partition("/")[0]
    subject = f'{base} "{name}"' if name else base
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{group}"{scope}'
    )
    details: dict[str, Any] = {"kind": base}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return ApiError(403, "Forbidden", message, details=details)
