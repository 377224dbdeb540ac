"""The rotation subcommands of ``apim-selfhosted``: ``rotate`` and ``rotator``.

``rotate SPEC`` renews the gateway token when it expires within ``--if-expiring-within``
(default: the production profile's horizon), without downtime; it is safe to run every hour.
``rotator SPEC --image IMG --client-id ID`` prints the manifests of an in-cluster CronJob that
runs ``rotate`` with workload identity and a least-privilege Role (``--azure-role`` prints the
Azure custom role definition instead).

Exit codes of ``rotate``: 0 rotated, not needed, or yielded to a rotation already running;
1 rolled back or failed (the reason is printed); 2 bad input; 3 Azure or Kubernetes refused.

Example:
    >>> from apim_selfhosted.cli import main
    >>> main(["rotate", "--help"])  # doctest: +ELLIPSIS
    usage: apim-selfhosted rotate ...
    0
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from apim_selfhosted.cli import EXIT_FINDINGS, EXIT_OK, _add_spec, _write, command, load_spec
from apim_selfhosted.cli_ops import _add_azure, _add_cluster, _kube, _management, _progress, _when
from apim_selfhosted.errors import SpecError

__all__ = ["rotate_command", "rotator_command"]


def _duration(flag: str, text: str | None) -> Any:
    if text is None:
        return None
    from apim_selfhosted.rotation import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise SpecError(f"{flag}: {exc}", problems=[(flag, "e.g. 7d, 36h, 90m")]) from exc


def _configure_rotate(parser: argparse.ArgumentParser) -> None:
    _add_spec(parser)
    parser.add_argument(
        "--if-expiring-within",
        metavar="DURATION",
        help="rotate only when the token expires within this (e.g. 7d, 36h; default: the "
        "production profile's horizon)",
    )
    parser.add_argument(
        "--force", action="store_true", help="rotate even if the token is valid long enough"
    )
    parser.add_argument(
        "--regenerate-old-key",
        action="store_true",
        help="after success, regenerate the old token's key once no pod uses it",
    )
    parser.add_argument(
        "--keep-history",
        type=int,
        default=2,
        metavar="N",
        help="previous token Secrets to keep (default 2)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, metavar="SECONDS", help="rollout timeout"
    )
    parser.add_argument(
        "--at", metavar="TIME", help="judge the token as of this ISO 8601 time (default: now)"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    _add_cluster(parser)
    _add_azure(parser)


@command(
    "rotate",
    help="renew the gateway token without downtime when it nears expiry (exit 1 on rollback)",
    configure=_configure_rotate,
)
def rotate_command(args: argparse.Namespace) -> int:
    """Runs ``apim-selfhosted rotate``.

    Args:
        args: The parsed arguments.

    Returns:
        0 rotated, not needed or yielded; 1 rolled back or failed.

    Example:
        >>> rotate_command  # doctest: +ELLIPSIS
        <function rotate_command at ...>
    """
    from apim_selfhosted.rotation import rotate

    spec = load_spec(args.spec, production_defaults=args.production_defaults)
    horizon = _duration("--if-expiring-within", args.if_expiring_within)
    now = _when(args.at)
    if args.keep_history < 0:
        raise SpecError(
            "--keep-history: must be 0 or more", problems=[("--keep-history", "an integer >= 0")]
        )
    with _kube(args) as kube, _management(args, spec) as management:
        result = rotate(
            spec,
            management=management,
            kube=kube,
            only_if_expiring_within=horizon,
            force=args.force,
            now=now,
            regenerate_old_key=args.regenerate_old_key,
            keep_history=args.keep_history,
            timeout=args.timeout,
            on_event=None if args.quiet else _progress,
        )
    if args.format == "json":
        print(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        print(result)
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _configure_rotator(parser: argparse.ArgumentParser) -> None:
    _add_spec(parser)
    parser.add_argument("--image", required=True, help="an image with apim-selfhosted installed")
    parser.add_argument(
        "--client-id", required=True, help="client id of the workload identity (managed identity)"
    )
    parser.add_argument("--tenant-id", help="tenant of the identity, if not the webhook's")
    parser.add_argument(
        "--schedule", default="0 3 * * *", help="cron schedule (default daily 03:00)"
    )
    parser.add_argument("--time-zone", default="Etc/UTC", help="the CronJob's time zone")
    parser.add_argument("--if-expiring-within", metavar="DURATION", help="e.g. 7d")
    parser.add_argument("--regenerate-old-key", action="store_true")
    parser.add_argument("--keep-history", type=int, default=2, metavar="N")
    parser.add_argument(
        "--azure-role",
        action="store_true",
        help="print the Azure custom role definition (JSON) instead of the manifests",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


@command(
    "rotator",
    help="print the in-cluster rotator: CronJob, ServiceAccount, Role, RoleBinding (YAML)",
    configure=_configure_rotator,
)
def rotator_command(args: argparse.Namespace) -> int:
    """Runs ``apim-selfhosted rotator``.

    Args:
        args: The parsed arguments.

    Returns:
        0.

    Example:
        >>> rotator_command  # doctest: +ELLIPSIS
        <function rotator_command at ...>
    """
    from apim_selfhosted.models import WorkloadIdentityAuth
    from apim_selfhosted.rendering import to_yaml
    from apim_selfhosted.rotation import azure_rotator_role, render_rotator

    spec = load_spec(args.spec, production_defaults=args.production_defaults)
    if args.azure_role:
        role = azure_rotator_role(spec, regenerate_old_key=args.regenerate_old_key)
        _write(json.dumps(role, indent=2) + "\n", args.output, sys.stdout)
        return EXIT_OK
    if not args.client_id.strip():
        raise SpecError(
            "--client-id: must be the client id (a GUID) of the workload identity",
            problems=[("--client-id", "the managed identity's client id, a GUID")],
        )
    manifests = render_rotator(
        spec,
        image=args.image,
        identity=WorkloadIdentityAuth(
            client_id=args.client_id.strip(), tenant_id=(args.tenant_id or "").strip() or None
        ),
        schedule=args.schedule,
        time_zone=args.time_zone,
        if_expiring_within=_duration("--if-expiring-within", args.if_expiring_within),
        regenerate_old_key=args.regenerate_old_key,
        keep_history=args.keep_history,
    )
    _write(to_yaml(manifests), args.output, sys.stdout)
    return EXIT_OK
