"""The steps a platform engineer runs: ``deploy`` a gateway and ``verify`` it.

Each step is orchestration over the two clients
(:class:`~apim_selfhosted.management.ManagementClient` for Azure,
:class:`~apim_selfhosted.kube.KubernetesApplier` for the cluster) and returns a typed result.
Long steps report progress as :class:`~apim_selfhosted.results.ProgressEvent` objects to an
``on_event`` callback and to this module's logger (INFO), never with a secret in them.

The helpers that rotation builds on are public here too: :func:`read_cluster_state` (the live
Deployment and the token it runs with) and :func:`roll_back` (restore the previous pod template
and wait).

Example:
    >>> from apim_selfhosted.steps import config_endpoint_host
    >>> config_endpoint_host("https://contoso.configuration.azure-api.net/")
    'contoso.configuration.azure-api.net'
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from apim_selfhosted.errors import (
    ApimSelfhostedError,
    AuthorizationError,
    FieldConflictError,
    GatewayNotFoundError,
    KubernetesError,
    SpecError,
    TokenError,
)
from apim_selfhosted.kube import DEFAULT_FIELD_MANAGER, applied_configuration
from apim_selfhosted.models import (
    DeploymentSpec,
    ExistingSecretAuth,
    GatewayTokenAuth,
    KeyType,
    Token,
)
from apim_selfhosted.results import (
    Check,
    DeployResult,
    GatewayStatus,
    ObjectRef,
    Plan,
    ProgressEvent,
    RolloutStatus,
    VerifyReport,
)

if TYPE_CHECKING:
    from pydantic import SecretStr

    from apim_selfhosted.kube import KubernetesApplier
    from apim_selfhosted.management import ManagementClient
    from apim_selfhosted.profile import ProductionProfile

logger = logging.getLogger(__name__)

__all__ = [
    "ANNOTATION_KEY_FINGERPRINT",
    "LOG_FAILURE_PATTERNS",
    "TOKEN_HISTORY",
    "ClusterState",
    "config_endpoint_host",
    "deploy",
    "issuing_key_fingerprint",
    "key_fingerprint",
    "read_cluster_state",
    "roll_back",
    "status",
    "verify",
    "with_key_fingerprint",
]

EventCallback = Callable[[ProgressEvent], None]

#: Default validity of a token ``deploy`` issues (API Management allows at most 30 days).
DEFAULT_TOKEN_TTL = timedelta(days=29)

_ENDPOINT_KEY = "config.service.endpoint"

#: Signature of the stand-in token a dry run plans with (never sent anywhere but the dry run).
_DRY_RUN_SIGNATURE = "ZHJ5LXJ1bg"

#: Earlier token Secrets a re-deploy keeps (besides those in use), as ``rotate``'s default
#: ``keep_history``: the Secrets ``kubectl rollout undo`` to an earlier revision needs.
TOKEN_HISTORY = 2

#: (check name, pattern, what it means, advice): gateway log lines that mean it cannot work.
LOG_FAILURE_PATTERNS: tuple[tuple[str, re.Pattern[str], str, str], ...] = (
    (
        "config-api-v2",
        re.compile(r"ConfigurationApiV2NotAvailable", re.IGNORECASE),
        "the configuration endpoint does not offer the v2 configuration API",
        "use the v2 endpoint <service>.configuration.azure-api.net and a supported image",
    ),
    (
        "token-expired",
        re.compile(r"token[^\n]{0,80}expired|expired[^\n]{0,80}token", re.IGNORECASE),
        "the gateway token has expired",
        "rotate the token (`apim-selfhosted rotate SPEC`)",
    ),
    (
        "unauthorized",
        re.compile(
            r"(configuration|config|sync|heartbeat)[^\n]{0,120}\b(401|unauthori[sz]ed)\b"
            r"|\b(401|unauthori[sz]ed)\b[^\n]{0,120}(configuration|config|sync|heartbeat)",
            re.IGNORECASE,
        ),
        "the configuration endpoint refused the gateway's credentials (401)",
        "issue a new token (`apim-selfhosted rotate SPEC`) or check the auth settings",
    ),
    (
        "forbidden",
        re.compile(
            r"(configuration|config|sync|heartbeat)[^\n]{0,120}\b(403|forbidden)\b"
            r"|\b(403|forbidden)\b[^\n]{0,120}(configuration|config|sync|heartbeat)",
            re.IGNORECASE,
        ),
        "the configuration endpoint refused access (403): token for another gateway or key "
        "regenerated",
        "check the gateway name and issue a new token from the current key",
    ),
)


def _emit(on_event: EventCallback | None, step: str, message: str, **data: Any) -> None:
    logger.info("%s: %s", step, message)
    if on_event is not None:
        on_event(ProgressEvent(step=step, message=message, data=data))


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    return now


def config_endpoint_host(value: str) -> str:
    """The host (and port) of a configuration endpoint, for comparing endpoints.

    Args:
        value: A host name or an ``https://`` URL.

    Returns:
        The lower-cased host without scheme, path or trailing slash.

    Example:
        >>> config_endpoint_host("Contoso.configuration.azure-api.net")
        'contoso.configuration.azure-api.net'
    """
    text = value.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    return text.split("/", 1)[0]


# ------------------------------------------------------------------------------ issuing key

#: Annotation on a token Secret: :func:`key_fingerprint` of the gateway key that issued the token.
ANNOTATION_KEY_FINGERPRINT = "apim-selfhosted.io/key-fingerprint"


def key_fingerprint(key: SecretStr | str) -> str:
    """A short, non-reversible fingerprint of a gateway key: the first 16 hex digits of SHA-256.

    It tells whether a key is still the one that issued a token (API Management offers no
    operation that validates a token, and how tokens are signed is not documented, so the
    library never computes signatures). Safe to store next to the token: a gateway key is a long
    random value, so 64 bits of its SHA-256 reveal nothing that helps to find it (SHA-256 is
    preimage resistant and the key space cannot be searched), and the fingerprint cannot sign
    anything. Whoever can read the annotation can read the token in the same Secret anyway.

    Args:
        key: The key (as returned by ``ManagementClient.list_keys``).

    Returns:
        16 lowercase hex digits.

    Example:
        >>> key_fingerprint("not-a-real-key")
        'fa77d7bdb2ae64fb'
    """
    value = key if isinstance(key, str) else key.get_secret_value()
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def issuing_key_fingerprint(
    management: ManagementClient, gateway: Any, key_type: KeyType | str
) -> str | None:
    """The fingerprint of the gateway's current ``key_type`` key, or ``None`` if not allowed.

    Call it right after issuing a token from that key and record the result on the token's
    Secret with :func:`with_key_fingerprint`; :func:`verify` (with ``management``) then tells
    whether the key was regenerated since (which makes the token invalid). Reading keys needs
    ``Microsoft.ApiManagement/service/gateways/listKeys/action``; credentials without it (such
    as the least-privilege rotator role) get ``None`` and the token simply carries no
    fingerprint.

    Args:
        management: The Azure client.
        gateway: The gateway (a :class:`~apim_selfhosted.models.Gateway`).
        key_type: The key the token was issued from.

    Returns:
        The fingerprint, or ``None`` when the credentials may not list the keys.

    Raises:
        ManagementError: Azure failed otherwise (after retries).

    Example:
        >>> issuing_key_fingerprint(mgmt, spec.gateway, "primary")  # doctest: +SKIP
        '5d0c2e1f9a8b7c6d'
    """
    try:
        keys = management.list_keys(gateway)
    except AuthorizationError:
        logger.info("no permission to list the keys of %s: no key fingerprint recorded", gateway)
        return None
    return key_fingerprint(keys.get(key_type))


def with_key_fingerprint(secret: Mapping[str, Any], fingerprint: str | None) -> dict[str, Any]:
    """A copy of a token Secret manifest annotated with the issuing key's fingerprint.

    Args:
        secret: The Secret (e.g. from :func:`~apim_selfhosted.rendering.token_secret`).
        fingerprint: From :func:`issuing_key_fingerprint`; ``None`` returns an unchanged copy.

    Returns:
        The annotated copy (the input is not changed).

    Example:
        >>> s = with_key_fingerprint({"metadata": {"name": "t"}}, "0123456789abcdef")
        >>> s["metadata"]["annotations"]
        {'apim-selfhosted.io/key-fingerprint': '0123456789abcdef'}
    """
    out = copy.deepcopy(dict(secret))
    if fingerprint is not None:
        metadata = out.setdefault("metadata", {})
        metadata["annotations"] = {
            **(metadata.get("annotations") or {}),
            ANNOTATION_KEY_FINGERPRINT: fingerprint,
        }
    return out


# ------------------------------------------------------------------------------ cluster state


@dataclass(frozen=True)
class ClusterState:
    """What runs in the cluster for a gateway: the live Deployment and its token.

    Attributes:
        deployment: The live Deployment (``None`` when there is none).
        secret_name: The Secret the Deployment reads ``config.service.auth`` from, if any.
        secret_key: The key in that Secret.
        token: The token in that Secret, parsed (``None`` when missing or unreadable).
        token_problem: Why ``token`` is ``None`` although a Secret is referenced.
        secret: The token Secret as read (never shown in ``repr``), if it exists.

    Example:
        >>> ClusterState(deployment=None).token is None
        True
    """

    deployment: dict[str, Any] | None
    secret_name: str | None = None
    secret_key: str | None = None
    token: Token | None = None
    token_problem: str | None = None
    secret: dict[str, Any] | None = field(default=None, repr=False)


def read_cluster_state(
    spec: DeploymentSpec,
    *,
    kube: KubernetesApplier,
    known: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> ClusterState:
    """Reads the gateway's live Deployment and the token its pods are configured with.

    Works for Deployments made by this library, the portal's YAML (Secret ``<gw>-token``, key
    ``value``) and the Helm chart (key ``gateway-key``): the Secret is found through the
    ``config.service.auth`` environment variable of the pod template. Two requests at most.

    Args:
        spec: The gateway's spec (namespace and base name).
        kube: The cluster client.
        known: Objects just read or applied, by ``(kind, name)``; the Deployment and Secret
            found there are not read again.

    Returns:
        The :class:`ClusterState`. The token's key type is read from the Secret's
        ``apim-selfhosted.io/key-type`` label (primary when absent).

    Raises:
        AuthorizationError: The credentials may not read the Deployment or the Secret.
        KubernetesError: Any other API failure.

    Example:
        >>> read_cluster_state(spec, kube=kube).token  # doctest: +SKIP
    """
    seen = (known or {}).get(("Deployment", spec.base_name))
    deployment = (
        dict(seen)
        if seen is not None
        else kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    )
    if deployment is None:
        return ClusterState(deployment=None)
    from apim_selfhosted.rendering import token_reference

    ref = token_reference(deployment)
    if ref is None:
        return ClusterState(deployment=deployment)
    name, key = ref.secret, ref.key
    found = (known or {}).get(("Secret", name))
    secret = dict(found) if found is not None else kube.get("v1", "Secret", name, spec.namespace)
    if secret is None:
        return ClusterState(
            deployment=deployment,
            secret_name=name,
            secret_key=key,
            token_problem=f"Secret {spec.namespace}/{name} does not exist",
        )
    raw = (secret.get("data") or {}).get(key)
    if not isinstance(raw, str):
        return ClusterState(
            deployment=deployment,
            secret_name=name,
            secret_key=key,
            token_problem=f"Secret {spec.namespace}/{name} has no key {key!r}",
            secret=secret,
        )
    labels = (secret.get("metadata") or {}).get("labels") or {}
    key_type = labels.get("apim-selfhosted.io/key-type", KeyType.PRIMARY.value)
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8")
        token = Token.parse(
            text,
            key_type=key_type if key_type in {k.value for k in KeyType} else KeyType.PRIMARY,
        )
    except (binascii.Error, UnicodeDecodeError, TokenError) as exc:
        problem = str(exc) if isinstance(exc, TokenError) else "the value is not valid base64"
        return ClusterState(
            deployment=deployment,
            secret_name=name,
            secret_key=key,
            token_problem=f"Secret {spec.namespace}/{name} key {key!r}: {problem}",
            secret=secret,
        )
    return ClusterState(
        deployment=deployment, secret_name=name, secret_key=key, token=token, secret=secret
    )


def roll_back(
    kube: KubernetesApplier,
    manifest: Mapping[str, Any],
    previous: Mapping[str, Any],
    *,
    timeout: float = 300.0,
    on_event: EventCallback | None = None,
) -> RolloutStatus:
    """Restores a Deployment's previous pod template and waits for that rollout.

    ``kubectl rollout undo`` semantics with server-side apply: ``manifest`` (the Deployment that
    was applied) is re-applied with ``previous``'s pod template, so the controller scales the
    old ReplicaSet back up. Rotation uses it to return to the previous token.

    Args:
        kube: The cluster client.
        manifest: The Deployment manifest that was applied.
        previous: The live Deployment read before that apply.
        timeout: Seconds to wait for the rollback's rollout.
        on_event: Progress callback.

    Returns:
        The rollback's rollout status.

    Raises:
        KubernetesError: The rollback could not be applied.

    Example:
        >>> roll_back(kube, new_deployment, previous_live, timeout=60).ok  # doctest: +SKIP
        True
    """
    kube.restore_template(manifest, previous, on_event=on_event)
    meta = manifest.get("metadata") or {}
    return kube.wait_for_rollout(
        str(meta["name"]), str(meta["namespace"]), timeout=timeout, on_event=on_event
    )


@dataclass(frozen=True)
class _Rollback:
    status: RolloutStatus | None
    restored: tuple[ObjectRef, ...]
    removed: tuple[ObjectRef, ...]
    kept: tuple[str, ...]  # objects that could not be restored, with the reason


def _obj_ref(manifest: Mapping[str, Any]) -> ObjectRef:
    meta = manifest["metadata"]
    return ObjectRef(
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        name=meta["name"],
        namespace=meta.get("namespace"),
    )


def _roll_back_all(
    kube: KubernetesApplier,
    manifests: Sequence[Mapping[str, Any]],
    before: Mapping[ObjectRef, Mapping[str, Any] | None],
    *,
    timeout: float,
    on_event: EventCallback | None,
) -> _Rollback:
    """Returns every object a failed deploy applied to its state before that deploy.

    An object this library had applied before is applied again with what it applied then (read
    back from the object's ``managedFields`` as it was before the failed apply: see
    :func:`~apim_selfhosted.kube.applied_configuration`), with ``force``; an object the failed
    deploy created is deleted once the previous pods are back; a Deployment another tool made
    gets its previous pod template back (``kubectl rollout undo``). Objects the failed deploy
    did not reach were not changed; a namespace it created is not deleted.
    """
    restored: list[ObjectRef] = []
    created: list[ObjectRef] = []
    kept: list[str] = []
    deployment: ObjectRef | None = None
    for manifest in manifests:
        ref = _obj_ref(manifest)
        if ref not in before:
            continue
        previous = before[ref]
        if ref.kind == "Deployment":
            deployment = ref
        if previous is None:
            if ref.kind != "Namespace":  # never deleted: it may hold anything by now
                created.append(ref)
            continue
        config = applied_configuration(previous, field_manager=DEFAULT_FIELD_MANAGER)
        if config is None:
            if ref.kind == "Deployment":
                kube.restore_template(manifest, previous, on_event=on_event)
                restored.append(ref)
            else:
                kept.append(f"{ref} (not applied by this library before the failed deploy)")
            continue
        _emit(on_event, "rollback", f"{ref}: restoring what the previous deploy applied")
        kube.apply([config], field_manager=DEFAULT_FIELD_MANAGER, force=True)
        restored.append(ref)
    status = None
    if deployment is not None and deployment.namespace is not None:
        status = kube.wait_for_rollout(
            deployment.name, deployment.namespace, timeout=timeout, on_event=on_event
        )
    removed: list[ObjectRef] = []
    for ref in created:
        live = kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        labels = ((live or {}).get("metadata") or {}).get("labels") or {}
        if live is None or labels.get("app.kubernetes.io/managed-by") != "apim-selfhosted":
            continue
        if kube.delete(ref.api_version, ref.kind, ref.name, ref.namespace):
            removed.append(ref)
            _emit(on_event, "rollback", f"{ref}: deleted (created by the failed deploy)")
    return _Rollback(
        status=status, restored=tuple(restored), removed=tuple(removed), kept=tuple(kept)
    )


# ------------------------------------------------------------------------------ deploy


def _lint_or_refuse(
    spec: DeploymentSpec, profile: ProductionProfile, *, allow_lint_errors: bool
) -> None:
    from apim_selfhosted.profile import lint

    errors = [f for f in lint(spec, profile) if f.severity == "error"]
    if errors and not allow_lint_errors:
        problems = [(f.path, f"{f.rule}: {f.message}") for f in errors]
        raise SpecError(
            f"the spec has {len(errors)} lint error(s); fix them or pass "
            "allow_lint_errors=True (CLI: --allow-lint-errors): "
            + "; ".join(f"{p}: {m}" for p, m in problems),
            problems=problems,
        )


def _deployment_manifest(manifests: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    for manifest in manifests:
        if manifest.get("kind") == "Deployment":
            return dict(manifest)
    return None


#: Field managers of this library other than deploy's own: deploy takes fields back from them.
_OWN_MANAGERS = frozenset({"apim-selfhosted-rotator"})

#: Annotation on the Deployment listing every object a deploy applied (``apiVersion:Kind:name``
#: joined with ``,``): the next deploy deletes what it lists and the new rendering lacks, without
#: listing every kind (the idea of kubectl's ApplySets).
RECORD_ANNOTATION = "apim-selfhosted.io/applied-objects"


def _record_entry(manifest: Mapping[str, Any]) -> str:
    return f"{manifest['apiVersion']}:{manifest['kind']}:{manifest['metadata']['name']}"


def _with_record(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    record = ",".join(_record_entry(m) for m in manifests if m["kind"] != "Namespace")
    out = []
    for manifest in manifests:
        if manifest.get("kind") == "Deployment":
            manifest = dict(manifest)
            metadata = dict(manifest["metadata"])
            metadata["annotations"] = {
                **(metadata.get("annotations") or {}),
                RECORD_ANNOTATION: record,
            }
            manifest["metadata"] = metadata
        out.append(manifest)
    return out


def _with_placeholder_secret(
    spec: DeploymentSpec, placeholder: Token, manifests: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A dry run's rendering with a stand-in token: its Secret renamed ``<base>-token-issued``."""
    import json

    from apim_selfhosted.rendering import token_secret_name

    name = token_secret_name(spec, placeholder)
    text = json.dumps(manifests).replace(f'"{name}"', f'"{spec.base_name}-token-issued"')
    out: list[dict[str, Any]] = json.loads(text)
    return out


def _known_live(
    spec: DeploymentSpec, state: ClusterState
) -> dict[ObjectRef, Mapping[str, Any] | None]:
    """The objects ``read_cluster_state`` already read, so that apply need not read them again."""
    known: dict[ObjectRef, Mapping[str, Any] | None] = {
        ObjectRef(
            api_version="apps/v1", kind="Deployment", name=spec.base_name, namespace=spec.namespace
        ): state.deployment
    }
    if state.secret_name is not None:
        known[
            ObjectRef(
                api_version="v1", kind="Secret", name=state.secret_name, namespace=spec.namespace
            )
        ] = state.secret
    return known


def _prune(
    spec: DeploymentSpec,
    kube: KubernetesApplier,
    manifests: Sequence[Mapping[str, Any]],
    state: ClusterState,
    on_event: EventCallback | None,
) -> list[ObjectRef]:
    """Deletes what the previous deploy recorded and this rendering lacks.

    Without a record (no earlier deploy reached the Deployment) only token Secrets can be left
    over. Token Secrets follow rotation's rule (:func:`apim_selfhosted.rotation` cleanup, one
    shared helper): those the Deployment or a ReplicaSet with pods reads stay, and so do the
    newest :data:`TOKEN_HISTORY` others, the history ``kubectl rollout undo`` needs.
    :meth:`KubernetesApplier.prune` is the exhaustive variant (every kind, by label).
    """
    from apim_selfhosted.rendering import token_reference, token_secret_selector
    from apim_selfhosted.rotation import _clean_up

    previous = ((state.deployment or {}).get("metadata") or {}).get("annotations") or {}
    record = previous.get(RECORD_ANNOTATION)
    current = {_record_entry(m) for m in manifests}
    gone = (
        [entry for entry in record.split(",") if entry and entry not in current]
        if isinstance(record, str)
        else []
    )
    deleted: list[ObjectRef] = []
    deployment = _deployment_manifest(manifests)
    in_use = token_reference(deployment) if deployment is not None else None
    token_secrets: set[str] = set()
    if deployment is not None and in_use is not None:
        token_secrets = {
            f"v1:Secret:{secret['metadata']['name']}"
            for secret in kube.list_objects(
                "v1", "Secret", spec.namespace, label_selector=token_secret_selector(spec)
            )
        }
        for name in _clean_up(
            kube, spec, deployment, current=in_use.secret, keep_history=TOKEN_HISTORY
        ):
            ref = ObjectRef(api_version="v1", kind="Secret", name=name, namespace=spec.namespace)
            deleted.append(ref)
            _emit(on_event, "prune", f"{ref}: deleted", kind="Secret", name=name)
    protected: set[str] | None = None
    for entry in gone:
        if entry in token_secrets:
            continue  # decided above, by rotation's rule
        api_version, kind, name = entry.rsplit(":", 2)
        if kind == "Secret":
            if protected is None:
                # Secrets still read by the Deployment or a ReplicaSet with pods stay.
                protected = kube._secrets_in_use(spec.namespace, deployment)
            if name in protected:
                continue
        live = kube.get(api_version, kind, name, spec.namespace)
        labels = ((live or {}).get("metadata") or {}).get("labels") or {}
        if live is None or labels.get("app.kubernetes.io/managed-by") != "apim-selfhosted":
            continue  # gone already, or no longer ours: never delete anything else
        if kube.delete(api_version, kind, name, spec.namespace):
            ref = ObjectRef(api_version=api_version, kind=kind, name=name, namespace=spec.namespace)
            deleted.append(ref)
            _emit(on_event, "prune", f"{ref}: deleted", kind=kind, name=name)
    return deleted


def deploy(
    spec: DeploymentSpec,
    *,
    management: ManagementClient | None,
    kube: KubernetesApplier,
    token: Token | None = None,
    dry_run: bool = False,
    diff: bool = False,
    wait: bool = True,
    timeout: float = 600.0,
    profile: ProductionProfile | None = None,
    allow_lint_errors: bool = False,
    location: str = "on-premises",
    description: str | None = None,
    token_ttl: timedelta = DEFAULT_TOKEN_TTL,
    rollback_on_failure: bool = True,
    prune: bool = True,
    run_verify: bool = True,
    force: bool = False,
    now: datetime | None = None,
    on_event: EventCallback | None = None,
) -> DeployResult:
    """Deploys (or updates) a gateway: APIM resource, token, manifests, rollout, verification.

    In order: validate and lint the spec (refused on lint errors unless allowed); make sure the
    gateway exists in API Management; read its configuration endpoint; pick the token (the one
    given, the one in the cluster while it is valid beyond the profile's horizon, or a new one
    from the key the current token does not use); render; server-side apply; wait for the
    rollout; prune objects the rendering no longer has; verify. Nothing is written anywhere
    before the input is known to be good.

    Re-running with the same spec changes nothing and says so (``result.changed`` is false). A
    run that failed half-way is repaired by the next one. When the new pod template never gets
    ready, the old pods keep serving (the rollout never removes them first) and, with
    ``rollback_on_failure``, the previous template is restored; the result names the reason.

    Args:
        spec: The gateway's spec.
        management: The Azure client; ``None`` is allowed when ``token`` is given (or the spec
            does not use library-managed tokens): the gateway is then not checked in APIM.
        kube: The cluster client.
        token: A token to use instead of reading or issuing one.
        dry_run: Validate everything against the API server without persisting (no token is
            issued; a missing gateway is reported, not created).
        diff: Also compute the :class:`~apim_selfhosted.results.Plan` (``result.plan``).
        wait: Wait for the rollout (and verify); otherwise return after applying.
        timeout: Seconds to wait for the rollout.
        profile: The production profile (default ``ProductionProfile()``): lint rules and the
            token horizon.
        allow_lint_errors: Deploy even when lint reports errors.
        location: The gateway's location in APIM when it is created (an existing gateway is
            not changed).
        description: The gateway's description in APIM when it is created.
        token_ttl: Validity of a newly issued token (at most 30 days).
        rollback_on_failure: When the rollout fails, return every object this deploy applied to
            its state before (the pod template, ConfigMap, Services, labels ...) and delete
            the objects it created, so that the cluster is as the last good deploy left it.
        prune: Delete objects of this gateway the rendering no longer contains.
        run_verify: Run :func:`verify` after a successful rollout.
        force: Take over fields another field manager owns (server-side apply ``force``).
        now: The current time (default: the clock), for the token horizon.
        on_event: Progress callback.

    Returns:
        The :class:`~apim_selfhosted.results.DeployResult` (``result.ok``,
        ``result.raise_for_failure()``).

    Raises:
        SpecError: The spec is invalid, has lint errors, or needs a token and no way to get one.
        TokenError: The given token belongs to another gateway.
        AuthorizationError, AuthenticationError: Azure or Kubernetes refused a call.
        GatewayNotFoundError: The API Management service does not exist.
        ManagementError: Azure failed (after retries).
        KubernetesError: The cluster refused a manifest or failed otherwise.

    Example:
        >>> result = deploy(spec, management=mgmt, kube=kube, timeout=300)  # doctest: +SKIP
        >>> result.ok, result.changed  # doctest: +SKIP
        (True, True)
    """
    started = time.monotonic()
    current_time = _now(now)
    if not isinstance(spec, DeploymentSpec):
        raise SpecError(
            f"spec must be a DeploymentSpec, got {type(spec).__name__}",
            problems=[("spec", "a DeploymentSpec (DeploymentSpec.from_file(path))")],
        )
    from apim_selfhosted.profile import ProductionProfile
    from apim_selfhosted.rendering import render

    profile = profile or ProductionProfile()
    _emit(on_event, "validate", f"linting the spec of {spec.gateway}")
    _lint_or_refuse(spec, profile, allow_lint_errors=allow_lint_errors)
    uses_token = isinstance(spec.auth, GatewayTokenAuth)
    if token is not None:
        if not uses_token:
            raise SpecError(
                f"a token was given but auth.kind is {spec.auth.kind!r}; tokens are used with "
                "auth.kind 'gateway-token'",
                problems=[("auth.kind", "'gateway-token' to use a token")],
            )
        if token.gateway_id.lower() != spec.gateway.name.lower():
            raise TokenError(
                f"the token belongs to gateway {token.gateway_id!r}, not {spec.gateway.name!r}"
            )
        if token.remaining(current_time) <= timedelta(0):
            raise TokenError(f"the given token expired on {token.expires_on.isoformat()}")
    # Reads only, before anything is written.
    state = read_cluster_state(spec, kube=kube)
    if uses_token and token is None:
        current = state.token
        if (
            current is not None
            and current.gateway_id.lower() == spec.gateway.name.lower()
            and not current.expires_within(profile.min_token_validity, current_time)
        ):
            token = current
            _emit(
                on_event,
                "token",
                f"reusing the token in the cluster ({current.key_type.value} key, expires "
                f"{current.expires_on:%Y-%m-%d %H:%M} UTC)",
                fingerprint=current.fingerprint,
            )
        elif management is None:
            why = (
                "the cluster has no token for this gateway"
                if current is None
                else "the token in the cluster expires within the profile's horizon"
            )
            raise SpecError(
                f"{why}: pass management= (Azure access) or token= (CLI: --token-file)",
                problems=[("token", "a token, or Azure access to issue one")],
            )
    gateway = spec.gateway
    if management is not None:
        if dry_run:
            _emit(on_event, "gateway", f"checking gateway {gateway} in API Management")
            try:
                management.get_gateway(gateway)
            except GatewayNotFoundError as exc:
                if exc.missing != "gateway":
                    raise
                _emit(on_event, "gateway", f"dry run: gateway {gateway} would be created")
        else:
            # An existing gateway is left as it is (its location and description may have been
            # set in the portal); a missing one is created.
            try:
                management.get_gateway(gateway)
                _emit(on_event, "gateway", f"gateway {gateway} exists in API Management")
            except GatewayNotFoundError as exc:
                if exc.missing != "gateway":
                    raise
                _emit(on_event, "gateway", f"creating gateway {gateway} in API Management")
                management.ensure_gateway(
                    gateway,
                    location=location,
                    description=description or f"Self-hosted gateway {gateway.name}",
                )
        endpoint = management.config_endpoint(gateway)
        if config_endpoint_host(endpoint) != config_endpoint_host(gateway.config_endpoint_url):
            _emit(on_event, "gateway", f"configuration endpoint from APIM: {endpoint}")
            gateway = gateway.model_copy(update={"config_endpoint": endpoint})
            spec = spec.model_copy(update={"gateway": gateway})
    token_issued = False
    placeholder: Token | None = None
    if uses_token and token is None:
        assert management is not None  # checked above
        key_type = state.token.key_type.other if state.token is not None else KeyType.PRIMARY
        if dry_run:
            _emit(on_event, "token", "dry run: a new token would be issued")
            # The plan shows the Secret the deploy would create, holding a stand-in token under
            # a stand-in name (the real name follows the token, unknown before it is issued).
            placeholder = Token.parse(
                f"{gateway.name}&{current_time + token_ttl:%Y%m%d%H%M}&{_DRY_RUN_SIGNATURE}",
                key_type=key_type,
            )
        else:
            _emit(on_event, "token", f"issuing a token from the {key_type.value} key")
            token = management.issue_token(gateway, key_type=key_type, ttl=token_ttl)
            token_issued = True

    manifests = render(spec, token) if token is not None else render(spec)
    if placeholder is not None:
        manifests = _with_placeholder_secret(spec, placeholder, render(spec, placeholder))
    if token is not None:
        # The issuing key's fingerprint: measured for a new token, kept for a reused one (the
        # live Secret of the same token has it; not applying it again would remove it).
        from apim_selfhosted.rendering import token_secret_name

        secret_name = token_secret_name(spec, token)
        fingerprint: str | None = None
        if token_issued:
            assert management is not None
            fingerprint = issuing_key_fingerprint(management, gateway, token.key_type)
        elif state.secret is not None and state.secret_name == secret_name:
            annotations = (state.secret.get("metadata") or {}).get("annotations") or {}
            fingerprint = annotations.get(ANNOTATION_KEY_FINGERPRINT)
        manifests = [
            with_key_fingerprint(m, fingerprint)
            if m["kind"] == "Secret" and m["metadata"]["name"] == secret_name
            else m
            for m in manifests
        ]
    manifests = _with_record(manifests)
    plan: Plan | None = kube.diff(manifests, force=force) if diff else None
    name, namespace = spec.base_name, spec.namespace
    common = {
        "gateway": str(spec.gateway),
        "namespace": namespace,
        "name": name,
        "token": token,
        "token_issued": token_issued,
        "plan": plan,
    }
    if dry_run:
        applied = kube.apply(manifests, dry_run=True, force=force, on_event=on_event)
        return DeployResult(
            dry_run=True,
            applied=tuple(applied),
            elapsed_seconds=round(time.monotonic() - started, 3),
            **common,
        )

    _emit(on_event, "apply", f"applying {len(manifests)} objects to {namespace}")
    # Every object as it was before this deploy touched it: what a rollback returns to.
    before: dict[ObjectRef, Mapping[str, Any] | None] = {}
    try:
        pairs = kube._apply_all(
            manifests,
            field_manager=DEFAULT_FIELD_MANAGER,
            force=force,
            dry_run=False,
            live=_known_live(spec, state),
            on_event=on_event,
            seen=before,
        )
    except FieldConflictError as exc:
        if force or not exc.managers or not set(exc.managers) <= _OWN_MANAGERS:
            raise
        # Only this library's rotator owns the fields (a rotation whose hand-back did not
        # happen): taking them back is what this deploy means to do anyway.
        _emit(
            on_event,
            "apply",
            f"taking fields back from {', '.join(exc.managers)}: {', '.join(exc.fields)}",
        )
        pairs = kube._apply_all(
            manifests,
            field_manager=DEFAULT_FIELD_MANAGER,
            force=True,
            dry_run=False,
            live={**_known_live(spec, state), **before},
            on_event=on_event,
            seen=before,
        )
    applied = [a for a, _ in pairs]
    answered = {(a.kind, a.name): obj for a, obj in pairs if obj is not None}
    if not wait:
        return DeployResult(
            applied=tuple(applied), elapsed_seconds=round(time.monotonic() - started, 3), **common
        )

    rollout, last_seen = kube._wait(
        name,
        namespace,
        timeout=timeout,
        deployment=answered.get(("Deployment", name)),
        on_event=on_event,
    )
    if not rollout.ok:
        error = f"the rollout did not complete: {rollout.message or rollout.outcome}"
        rolled_back = False
        restored: tuple[ObjectRef, ...] = ()
        removed: tuple[ObjectRef, ...] = ()
        if rollback_on_failure and state.deployment is not None:
            _emit(on_event, "rollback", f"restoring the state before this deploy in {namespace}")
            try:
                back = _roll_back_all(kube, manifests, before, timeout=timeout, on_event=on_event)
                rolled_back = True
                restored, removed = back.restored, back.removed
                if back.status is not None and not back.status.ok:
                    error += f"; the rollback did not complete either: {back.status.message}"
                else:
                    error += (
                        "; rolled back to the previous pod template and objects "
                        f"({len(restored)} restored, {len(removed)} removed)"
                    )
                if back.kept:
                    error += "; not restored: " + ", ".join(back.kept)
            except ApimSelfhostedError as exc:
                error += f"; the rollback failed: {exc}"
        _emit(on_event, "deploy", error)
        return DeployResult(
            applied=tuple(applied),
            rollout=rollout,
            rolled_back=rolled_back,
            restored=restored,
            removed=removed,
            error=error,
            elapsed_seconds=round(time.monotonic() - started, 3),
            **common,
        )
    pruned: tuple[ObjectRef, ...] = ()
    fresh_namespace = any(
        a.kind == "Namespace" and a.name == namespace and a.action == "created" for a in applied
    )
    if prune and not fresh_namespace:  # nothing can be left over in a namespace just made
        pruned = tuple(_prune(spec, kube, manifests, state, on_event))
    report = None
    if run_verify:
        # Objects whose state the rollout does not change are as the apply answered; the
        # Deployment and the live-traffic Service (load balancer address) are read again.
        fresh = {("Deployment", name), ("Service", spec.live_service_name)}
        known = {k: v for k, v in answered.items() if k not in fresh}
        if last_seen is not None and not pruned:
            known[("Deployment", name)] = last_seen  # as the completed rollout left it
        report = _verify(
            spec,
            kube=kube,
            management=management,
            now=now,
            profile=profile,
            on_event=on_event,
            known=known,
        )
    result = DeployResult(
        applied=tuple(applied),
        rollout=rollout,
        pruned=pruned,
        verify=report,
        elapsed_seconds=round(time.monotonic() - started, 3),
        **common,
    )
    _emit(
        on_event,
        "deploy",
        f"{spec.gateway}: {'changed' if result.changed else 'no change'}"
        f"{'' if result.ok else ' (verification failed)'}",
    )
    return result


# ------------------------------------------------------------------------------ verify

_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$")
_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def _quantity(value: str) -> Decimal | None:
    match = _QUANTITY_RE.match(value)
    if not match:
        return None
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        return None
    suffix = match.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * _SUFFIX[suffix]


def _same_leaf(desired: Any, live: Any) -> bool:
    if desired == live:
        return True
    if isinstance(desired, str) and isinstance(live, str):
        a, b = _quantity(desired), _quantity(live)
        return a is not None and a == b
    if isinstance(desired, int | float) and isinstance(live, str):
        return _quantity(live) == Decimal(str(desired))
    return False


def _drift(desired: Any, live: Any, path: str, out: list[str]) -> None:
    """Appends the paths where ``live`` does not carry what ``desired`` asks for."""
    if isinstance(desired, Mapping):
        if not desired and live in (None, {}):
            return
        if not isinstance(live, Mapping):
            out.append(path or "(object)")
            return
        for key, value in desired.items():
            _drift(value, live.get(key), f"{path}.{key}" if path else str(key), out)
        return
    if isinstance(desired, list):
        if not desired and live in (None, []):
            return
        if not isinstance(live, list) or len(live) != len(desired):
            out.append(path)
            return
        for index, (d, v) in enumerate(zip(desired, live, strict=True)):
            _drift(d, v, f"{path}[{index}]", out)
        return
    if not _same_leaf(desired, live):
        out.append(path)


def _check_objects(
    manifests: Sequence[Mapping[str, Any]],
    kube: KubernetesApplier,
    known: Mapping[tuple[str, str], Mapping[str, Any]],
) -> tuple[Check, dict[tuple[str, str], dict[str, Any]]]:
    live_objects: dict[tuple[str, str], dict[str, Any]] = {}
    missing: list[str] = []
    drifted: list[str] = []
    unchecked: list[str] = []
    evidence: list[str] = []
    for manifest in manifests:
        meta = manifest.get("metadata") or {}
        kind, name = str(manifest["kind"]), str(meta["name"])
        namespace = meta.get("namespace")
        label = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
        try:
            found = known.get((kind, name))
            live = (
                dict(found)
                if found is not None
                else kube.get(str(manifest["apiVersion"]), kind, name, meta.get("namespace"))
            )
        except AuthorizationError as exc:
            unchecked.append(f"{label} (needs {exc.permission})")
            continue
        if live is None:
            missing.append(label)
            continue
        live_objects[(kind, name)] = live
        paths: list[str] = []
        _drift({k: v for k, v in manifest.items() if k != "status"}, live, "", paths)
        if paths:
            drifted.append(label)
            shown = paths if kind != "Secret" else [p.split(".", 1)[0] for p in paths]
            evidence.append(f"{label}: differs at {', '.join(sorted(set(shown))[:8])}")
        else:
            evidence.append(f"{label}: present and as specified")
    if missing or drifted:
        parts = []
        if missing:
            parts.append(f"missing: {', '.join(missing)}")
        if drifted:
            parts.append(f"not as specified: {', '.join(drifted)}")
        return (
            Check(
                name="objects",
                status="failed",
                summary="; ".join(parts),
                evidence=tuple(f"{m}: missing" for m in missing) + tuple(evidence),
                advice="run `apim-selfhosted deploy SPEC` to restore them",
            ),
            live_objects,
        )
    if unchecked:
        return (
            Check(
                name="objects",
                status="warning",
                summary=f"{len(manifests) - len(unchecked)} objects present and as specified; "
                f"not permitted to check {', '.join(unchecked)}",
                evidence=tuple(evidence),
                advice="grant read access to those objects to check them too",
            ),
            live_objects,
        )
    return (
        Check(
            name="objects",
            status="ok",
            summary=f"all {len(manifests)} objects present and as specified",
            evidence=tuple(evidence),
        ),
        live_objects,
    )


def _check_rollout(deployment: Mapping[str, Any] | None) -> Check:
    from apim_selfhosted.kube import rollout_state

    if deployment is None:
        return Check(
            name="rollout",
            status="failed",
            summary="the Deployment does not exist",
            advice="run `apim-selfhosted deploy SPEC`",
        )
    state, message = rollout_state(deployment)
    spec = deployment.get("spec") or {}
    st = deployment.get("status") or {}
    desired = 1 if spec.get("replicas") is None else int(spec["replicas"])
    ready = int(st.get("readyReplicas") or 0)
    evidence = (
        f"desired {desired}, updated {st.get('updatedReplicas') or 0}, ready {ready}, "
        f"available {st.get('availableReplicas') or 0}, observedGeneration "
        f"{st.get('observedGeneration')}/{(deployment.get('metadata') or {}).get('generation')}",
    )
    if state == "complete" and ready >= desired:
        return Check(
            name="rollout",
            status="ok",
            summary=f"rollout complete, {ready}/{desired} replicas ready",
            evidence=evidence,
        )
    if state == "progress-deadline-exceeded":
        return Check(
            name="rollout",
            status="failed",
            summary=f"the rollout is stuck: {message}",
            evidence=evidence,
            advice="inspect the new pods (`kubectl describe pod`), fix the spec and deploy again",
        )
    return Check(
        name="rollout",
        status="failed" if ready == 0 else "warning",
        summary=f"rollout not complete: {message} ({ready}/{desired} ready)",
        evidence=evidence,
        advice="wait for the rollout (`kubectl rollout status`) or look at the pods",
    )


def _check_pods(pods: Sequence[Mapping[str, Any]], desired: int) -> Check:
    from apim_selfhosted.kube import pod_problems

    problems = [p for pod in pods for p in pod_problems(pod)]
    restarts: list[str] = []
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name")
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            count = int(cs.get("restartCount") or 0)
            if count:
                restarts.append(f"pod {name} container {cs.get('name')}: {count} restart(s)")
    if problems:
        return Check(
            name="pods",
            status="failed",
            summary=f"{len(problems)} container(s) cannot start",
            evidence=tuple(str(p) for p in problems) + tuple(restarts),
            advice="`kubectl describe pod` shows why; fix the image, Secret or config",
        )
    if not pods and desired > 0:
        return Check(
            name="pods",
            status="failed",
            summary="no gateway pods exist",
            advice="look at the Deployment's events (`kubectl describe deployment`)",
        )
    if restarts:
        return Check(
            name="pods",
            status="warning",
            summary=f"{len(restarts)} container(s) restarted",
            evidence=tuple(restarts),
            advice="read the previous logs (`kubectl logs --previous POD`) for the cause",
        )
    return Check(
        name="pods",
        status="ok",
        summary=f"{len(pods)} pod(s), no restarts",
        evidence=tuple(str((p.get("metadata") or {}).get("name")) for p in pods),
    )


def _check_token(
    spec: DeploymentSpec,
    state: ClusterState,
    profile: ProductionProfile,
    current_time: datetime,
    management: ManagementClient | None,
) -> Check:
    if not isinstance(spec.auth, GatewayTokenAuth | ExistingSecretAuth):
        return Check(
            name="token",
            status="skipped",
            summary=f"auth.kind {spec.auth.kind!r} uses no gateway token",
        )
    if state.deployment is None:
        return Check(name="token", status="skipped", summary="no Deployment to read it from")
    token = state.token
    if token is None:
        return Check(
            name="token",
            status="failed",
            summary=state.token_problem or "the Deployment reads no token from a Secret",
            advice="run `apim-selfhosted deploy SPEC` (or rotate) to put a valid token in place",
        )
    evidence = [
        f"Secret {spec.namespace}/{state.secret_name} key {state.secret_key!r}",
        f"gateway {token.gateway_id}, {token.key_type.value} key, expires "
        f"{token.expires_on:%Y-%m-%d %H:%M} UTC, fingerprint {token.fingerprint}",
    ]
    if token.gateway_id.lower() != spec.gateway.name.lower():
        return Check(
            name="token",
            status="failed",
            summary=f"the token belongs to gateway {token.gateway_id!r}, not {spec.gateway.name!r}",
            evidence=tuple(evidence),
            advice="issue a token for this gateway (`apim-selfhosted rotate SPEC`)",
        )
    remaining = token.remaining(current_time)
    if remaining <= timedelta(0):
        return Check(
            name="token",
            status="failed",
            summary=f"the token expired on {token.expires_on:%Y-%m-%d %H:%M} UTC; the pods may "
            "be Ready but cannot load configuration",
            evidence=tuple(evidence),
            advice="rotate now: `apim-selfhosted rotate SPEC`",
        )
    if management is not None:
        # API Management has no operation that validates a gateway token: the "token-key"
        # check compares the issuing key's fingerprint, the log check catches refusals.
        evidence.append("the issuing key is compared in the token-key check")
    days = remaining.total_seconds() / 86400
    if token.expires_within(profile.min_token_validity, current_time):
        return Check(
            name="token",
            status="warning",
            summary=f"the token expires in {days:.1f} days, within the rotation horizon of "
            f"{profile.min_token_validity.days} days",
            evidence=tuple(evidence),
            advice="rotate soon: `apim-selfhosted rotate SPEC`",
        )
    return Check(
        name="token",
        status="ok",
        summary=f"valid for {days:.1f} more days",
        evidence=tuple(evidence),
    )


def _check_token_key(
    spec: DeploymentSpec, state: ClusterState, management: ManagementClient
) -> Check:
    """Is the key that issued the token in the cluster still the gateway's current key?"""
    token = state.token
    if not isinstance(spec.auth, GatewayTokenAuth | ExistingSecretAuth) or token is None:
        return Check(name="token-key", status="skipped", summary="no token to check")
    annotations = ((state.secret or {}).get("metadata") or {}).get("annotations") or {}
    recorded = annotations.get(ANNOTATION_KEY_FINGERPRINT)
    where = f"Secret {spec.namespace}/{state.secret_name}"
    if not isinstance(recorded, str) or not recorded:
        return Check(
            name="token-key",
            status="skipped",
            summary=f"{where} records no fingerprint of the key that issued its token (issued "
            "elsewhere, or by credentials without listKeys)",
            evidence=(f"no annotation {ANNOTATION_KEY_FINGERPRINT}",),
            advice="tokens issued by deploy or rotate with listKeys permission are checked",
        )
    try:
        keys = management.list_keys(spec.gateway)
    except AuthorizationError as exc:
        return Check(
            name="token-key",
            status="skipped",
            summary=f"the credentials may not list the gateway's keys ({exc.permission})",
            advice=f"grant {exc.permission} to compare the token with the current key",
        )
    current = key_fingerprint(keys.get(token.key_type))
    evidence = (
        f"{where}: issued from the {token.key_type.value} key with fingerprint {recorded}",
        f"the {token.key_type.value} key in API Management now has fingerprint {current}",
    )
    if current != recorded:
        return Check(
            name="token-key",
            status="failed",
            summary=f"the {token.key_type.value} key was regenerated after the token was "
            "issued: API Management no longer accepts the token, even if the pods are Ready",
            evidence=evidence,
            advice="rotate now: `apim-selfhosted rotate SPEC` (issues a token from the other key)",
        )
    return Check(
        name="token-key",
        status="ok",
        summary=f"issued from the current {token.key_type.value} key",
        evidence=evidence,
    )


def _check_endpoint(
    spec: DeploymentSpec,
    config_map: Mapping[str, Any] | None,
    management: ManagementClient | None,
) -> Check:
    if config_map is None:
        return Check(
            name="config-endpoint",
            status="failed",
            summary=f"ConfigMap {spec.namespace}/{spec.config_map_name} does not exist",
            advice="run `apim-selfhosted deploy SPEC`",
        )
    actual = (config_map.get("data") or {}).get(_ENDPOINT_KEY)
    source = "the spec"
    expected = spec.gateway.config_endpoint_url
    if management is not None:
        expected = management.config_endpoint(spec.gateway)
        source = "API Management"
    if not actual:
        return Check(
            name="config-endpoint",
            status="failed",
            summary=f"the ConfigMap has no {_ENDPOINT_KEY}",
            advice="run `apim-selfhosted deploy SPEC`",
        )
    evidence = (f"ConfigMap: {actual}", f"{source}: {expected}")
    if config_endpoint_host(actual) != config_endpoint_host(expected):
        return Check(
            name="config-endpoint",
            status="failed",
            summary=f"the ConfigMap points at {config_endpoint_host(actual)}, {source} says "
            f"{config_endpoint_host(expected)}",
            evidence=evidence,
            advice="fix gateway.config_endpoint (or remove it) and deploy again",
        )
    return Check(
        name="config-endpoint",
        status="ok",
        summary=f"{config_endpoint_host(actual)} (matches {source})",
        evidence=evidence,
    )


def _check_logs(
    pods: Sequence[Mapping[str, Any]],
    kube: KubernetesApplier,
    namespace: str,
    tail_lines: int,
    max_pods: int,
) -> Check:
    found: dict[str, list[str]] = {}
    evidence: list[str] = []
    read = 0
    for pod in pods:
        if read >= max_pods:
            break
        name = str((pod.get("metadata") or {}).get("name"))
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        if not any((cs.get("state") or {}).get("running") for cs in statuses):
            continue
        container = None
        containers = (pod.get("spec") or {}).get("containers") or []
        if len(containers) > 1:
            container = str(containers[0].get("name"))
        try:
            text = kube.pod_log(name, namespace, container=container, tail_lines=tail_lines)
        except KubernetesError as exc:
            evidence.append(f"pod {name}: log not readable ({exc.reason or exc.code})")
            continue
        read += 1
        for line in text.splitlines():
            for check_id, pattern, _meaning, _advice in LOG_FAILURE_PATTERNS:
                if pattern.search(line):
                    found.setdefault(check_id, []).append(f"pod {name}: {line.strip()[:200]}")
                    break
    if found:
        meanings = {c: (m, a) for c, _p, m, a in LOG_FAILURE_PATTERNS}
        first = next(iter(found))
        lines = [line for hits in found.values() for line in hits[:3]]
        return Check(
            name="logs",
            status="failed",
            summary="; ".join(meanings[c][0] for c in found),
            evidence=tuple(lines),
            advice=meanings[first][1],
        )
    if read == 0:
        return Check(
            name="logs",
            status="skipped",
            summary="no running pod whose log could be read",
            evidence=tuple(evidence),
        )
    return Check(
        name="logs",
        status="ok",
        summary=f"no configuration or authentication failures in {read} pod log(s)",
        evidence=tuple(evidence),
    )


def _check_service(spec: DeploymentSpec, service: Mapping[str, Any] | None) -> Check:
    if service is None:
        return Check(
            name="service",
            status="failed",
            summary=f"Service {spec.namespace}/{spec.live_service_name} does not exist",
            advice="run `apim-selfhosted deploy SPEC`",
        )
    svc_spec = service.get("spec") or {}
    kind = svc_spec.get("type", "ClusterIP")
    if kind == "LoadBalancer":
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        addresses = [str(i.get("ip") or i.get("hostname")) for i in ingress]
        if not addresses:
            return Check(
                name="service",
                status="warning",
                summary="the LoadBalancer has no address yet (pending)",
                evidence=(f"Service {spec.live_service_name} type LoadBalancer",),
                advice="wait a minute; if it stays pending, check the cloud's load balancer "
                "quota and the service annotations",
            )
        return Check(
            name="service",
            status="ok",
            summary=f"LoadBalancer address {', '.join(addresses)}",
            evidence=(f"Service {spec.live_service_name}",),
        )
    return Check(
        name="service",
        status="ok",
        summary=f"{kind} address {svc_spec.get('clusterIP')}",
        evidence=(f"Service {spec.live_service_name}",),
    )


def _guarded(name: str, run: Callable[[], Check]) -> Check:
    try:
        return run()
    except AuthorizationError as exc:
        return Check(
            name=name,
            status="skipped",
            summary=f"not permitted: {exc.permission}"
            + (f" in namespace {exc.namespace}" if exc.namespace else ""),
            advice=f"grant `{exc.permission}` to check this",
        )
    except ApimSelfhostedError as exc:
        return Check(
            name=name,
            status="failed",
            summary=f"could not check: {str(exc).splitlines()[0][:200]}",
            advice="see the error; run verify again once it is fixed",
        )


def verify(
    spec: DeploymentSpec,
    *,
    kube: KubernetesApplier,
    management: ManagementClient | None = None,
    now: datetime | None = None,
    timeout: float = 60.0,
    profile: ProductionProfile | None = None,
    log_tail_lines: int = 200,
    log_pods: int = 3,
    on_event: EventCallback | None = None,
) -> VerifyReport:
    """Checks a running gateway and reports, check by check, what is right and what is not.

    Checks: ``objects`` (every rendered object present and as specified), ``rollout``
    (complete, desired replicas ready), ``pods`` (none failing or restarting), ``token`` (the
    token in the cluster parses, belongs to this gateway, is not expired nor within the
    profile's horizon), ``token-key`` (only with ``management``: the key that issued the token,
    recorded as a fingerprint on its Secret, has not been regenerated since; skipped when no
    fingerprint is recorded or listKeys is not allowed), ``config-endpoint`` (the
    ConfigMap's endpoint is APIM's), ``logs`` (no ``ConfigurationApiV2NotAvailable``, 401/403 on
    configuration sync or expired-token lines), ``service`` (has an address; a pending
    LoadBalancer is a warning). A check the credentials may not run is ``skipped``.

    Ready pods do not prove a healthy gateway: with an expired token the pods stay Ready and
    answer with empty 200s. The token and log checks catch that.

    Args:
        spec: The gateway's spec.
        kube: The cluster client.
        management: The Azure client, to compare the endpoint and the token with APIM.
        now: The time to judge the token by (default: the clock).
        timeout: Seconds the checks may take in all; later checks are skipped after that.
        profile: The production profile (its ``min_token_validity``).
        log_tail_lines: How many lines of each pod's log to scan.
        log_pods: How many running pods' logs to read. The failures looked for (endpoint,
            token, key) hit every pod of a gateway alike, so a few pods tell.
        on_event: Progress callback.

    Returns:
        The :class:`~apim_selfhosted.results.VerifyReport`; it never raises for a finding
        (``report.raise_for_failure()`` does).

    Example:
        >>> report = verify(spec, kube=kube)  # doctest: +SKIP
        >>> report.ok  # doctest: +SKIP
        True
    """
    return _verify(
        spec,
        kube=kube,
        management=management,
        now=now,
        timeout=timeout,
        profile=profile,
        log_tail_lines=log_tail_lines,
        log_pods=log_pods,
        on_event=on_event,
        known={},
    )


def _verify(
    spec: DeploymentSpec,
    *,
    kube: KubernetesApplier,
    management: ManagementClient | None,
    now: datetime | None,
    profile: ProductionProfile | None,
    on_event: EventCallback | None,
    known: Mapping[tuple[str, str], Mapping[str, Any]],
    timeout: float = 60.0,
    log_tail_lines: int = 200,
    log_pods: int = 3,
) -> VerifyReport:
    from apim_selfhosted.profile import ProductionProfile
    from apim_selfhosted.rendering import render, selector_labels

    current_time = _now(now)
    profile = profile or ProductionProfile()
    deadline = time.monotonic() + timeout
    checks: list[Check] = []

    def add(name: str, run: Callable[[], Check]) -> None:
        if time.monotonic() > deadline:
            checks.append(
                Check(name=name, status="skipped", summary=f"out of time ({timeout:g} s)")
            )
            return
        check = _guarded(name, run)
        checks.append(check)
        _emit(on_event, "verify", str(check), check=name, status=check.status)

    state_holder: list[ClusterState] = []

    def state() -> ClusterState:
        if not state_holder:
            state_holder.append(read_cluster_state(spec, kube=kube, known=known))
        return state_holder[0]

    live: dict[tuple[str, str], dict[str, Any]] = {}

    def objects() -> Check:
        st = state()
        if isinstance(spec.auth, GatewayTokenAuth) and st.token is not None:
            try:
                manifests = render(spec, st.token)
            except TokenError:
                manifests = render(spec)
        else:
            manifests = render(spec)
        seen = dict(known)
        if st.deployment is not None:
            seen[("Deployment", spec.base_name)] = st.deployment
        check, found = _check_objects(manifests, kube, seen)
        live.update(found)
        return check

    add("objects", objects)
    add("rollout", lambda: _check_rollout(state().deployment))
    pods: list[dict[str, Any]] = []

    def pods_check() -> Check:
        selector = ",".join(f"{k}={v}" for k, v in sorted(selector_labels(spec).items()))
        pods.extend(kube.list_objects("v1", "Pod", spec.namespace, label_selector=selector))
        dep = state().deployment or {}
        replicas = (dep.get("spec") or {}).get("replicas")
        return _check_pods(pods, 1 if replicas is None else int(replicas))

    add("pods", pods_check)
    add("token", lambda: _check_token(spec, state(), profile, current_time, management))
    if management is not None:
        mgmt = management
        add("token-key", lambda: _check_token_key(spec, state(), mgmt))

    def endpoint() -> Check:
        cm = live.get(("ConfigMap", spec.config_map_name))
        if cm is None:
            cm = kube.get("v1", "ConfigMap", spec.config_map_name, spec.namespace)
        return _check_endpoint(spec, cm, management)

    add("config-endpoint", endpoint)
    add("logs", lambda: _check_logs(pods, kube, spec.namespace, log_tail_lines, log_pods))

    def service() -> Check:
        svc = live.get(("Service", spec.live_service_name))
        if svc is None:
            svc = kube.get("v1", "Service", spec.live_service_name, spec.namespace)
        return _check_service(spec, svc)

    add("service", service)
    return VerifyReport(
        gateway=str(spec.gateway),
        namespace=spec.namespace,
        name=spec.base_name,
        checked_at=current_time,
        checks=tuple(checks),
    )


# ------------------------------------------------------------------------------ status


def status(
    spec: DeploymentSpec, *, kube: KubernetesApplier, now: datetime | None = None
) -> GatewayStatus:
    """A one-screen summary of a deployed gateway: replicas, image, token expiry, last rollout.

    Args:
        spec: The gateway's spec.
        kube: The cluster client.
        now: The time to compute the token's remaining validity (default: the clock).

    Returns:
        The :class:`~apim_selfhosted.results.GatewayStatus`.

    Raises:
        AuthorizationError: The credentials may not read the Deployment or its Secret.
        KubernetesError: Any other API failure.

    Example:
        >>> print(status(spec, kube=kube))  # doctest: +SKIP
    """
    from apim_selfhosted.kube import rollout_state

    current_time = _now(now)
    state = read_cluster_state(spec, kube=kube)
    dep = state.deployment
    if dep is None:
        return GatewayStatus(
            gateway=str(spec.gateway), namespace=spec.namespace, name=spec.base_name, exists=False
        )
    meta = dep.get("metadata") or {}
    dspec = dep.get("spec") or {}
    st = dep.get("status") or {}
    containers = (dspec.get("template") or {}).get("spec", {}).get("containers") or [{}]
    rollout, message = rollout_state(dep)
    last_update = None
    for condition in st.get("conditions") or []:
        if condition.get("type") == "Progressing":
            last_update = condition.get("lastUpdateTime") or condition.get("lastTransitionTime")
    token = state.token
    return GatewayStatus(
        gateway=str(spec.gateway),
        namespace=spec.namespace,
        name=spec.base_name,
        exists=True,
        image=str(containers[0].get("image") or ""),
        desired_replicas=1 if dspec.get("replicas") is None else int(dspec["replicas"]),
        ready_replicas=int(st.get("readyReplicas") or 0),
        updated_replicas=int(st.get("updatedReplicas") or 0),
        available_replicas=int(st.get("availableReplicas") or 0),
        revision=(meta.get("annotations") or {}).get("deployment.kubernetes.io/revision"),
        rollout=f"{rollout}: {message}",
        last_rollout=str(last_update) if last_update else None,
        token=token,
        token_remaining_days=(
            round(token.remaining(current_time).total_seconds() / 86400, 2)
            if token is not None
            else None
        ),
        token_problem=state.token_problem,
    )
