"""The cluster subcommands of ``apim-selfhosted``: ``deploy``, ``verify`` and ``status``.

They are registered with :func:`apim_selfhosted.cli.command` when the CLI loads this module.
Azure credentials come from ``DefaultAzureCredential`` (environment, workload identity,
managed identity, Azure CLI ...); ``deploy --token-file`` works without Azure access. The
cluster comes from ``--kubeconfig``/``--context`` (default: ``$KUBECONFIG`` or
``~/.kube/config``) or ``--in-cluster``.

Exit codes: ``deploy`` 0 ok, 1 failed (rollout or verification), 2 bad input, 3 Azure or
Kubernetes refused; ``verify`` 0 healthy, 1 a check failed, 2 warnings only (as the issue
asks), 3 could not talk to the cluster; ``status`` 0 deployed, 1 not deployed.

Example:
    >>> from apim_selfhosted.cli import main
    >>> main(["verify", "--help"])  # doctest: +ELLIPSIS
    usage: apim-selfhosted verify ...
    0
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from typing import Any

from apim_selfhosted.cli import (
    EXIT_FINDINGS,
    EXIT_OK,
    _add_spec,
    command,
    load_spec,
    read_token,
)
from apim_selfhosted.errors import SpecError
from apim_selfhosted.results import ProgressEvent

__all__ = ["deploy_command", "status_command", "verify_command"]


def _add_cluster(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster")
    group.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default: $KUBECONFIG)")
    group.add_argument("--context", metavar="NAME", help="kubeconfig context (default: current)")
    group.add_argument(
        "--in-cluster", action="store_true", help="use the pod's service account instead"
    )


def _add_azure(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("azure")
    group.add_argument(
        "--arm-endpoint",
        metavar="URL",
        help="Azure Resource Manager endpoint (default: the spec's cloud)",
    )
    group.add_argument(
        "--ca-file", metavar="FILE", help="CA bundle to trust for the ARM endpoint (tests, proxies)"
    )


def _kube(args: argparse.Namespace) -> Any:
    from apim_selfhosted.kube import KubernetesApplier

    if args.in_cluster:
        return KubernetesApplier.in_cluster()
    return KubernetesApplier.from_kubeconfig(args.kubeconfig, context=args.context)


def _credential_options(spec: Any) -> dict[str, Any]:
    """``DefaultAzureCredential`` options: sign in at the spec's cloud (China, US Gov ...).

    ``AZURE_AUTHORITY_HOST`` wins when it is set (the workload identity webhook sets it in
    pods, and the demo points it at its stand-in); an explicit ``authority`` would override it.
    """
    if os.environ.get("AZURE_AUTHORITY_HOST"):
        return {}
    return {"authority": spec.gateway.cloud.authority_host}


def _management(args: argparse.Namespace, spec: Any) -> Any:
    from azure.identity import DefaultAzureCredential

    from apim_selfhosted.management import ManagementClient

    options: dict[str, Any] = {}
    if args.ca_file:
        options["connection_verify"] = args.ca_file
    return ManagementClient(
        DefaultAzureCredential(**_credential_options(spec)),
        cloud=spec.gateway.cloud,
        base_url=args.arm_endpoint,
        **options,
    )


def _progress(event: ProgressEvent) -> None:
    print(f"  {event}", file=sys.stderr, flush=True)


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SpecError(
            f"--at: {text!r} is not an ISO 8601 time such as 2026-12-24T08:00Z",
            problems=[("--at", "an ISO 8601 time with a time zone")],
        ) from exc
    if value.tzinfo is None:
        raise SpecError(
            f"--at: {text!r} has no time zone; add Z or +00:00",
            problems=[("--at", "an ISO 8601 time with a time zone")],
        )
    return value


# ---------------------------------------------------------------------------------------------
# deploy
# ---------------------------------------------------------------------------------------------


def _configure_deploy(parser: argparse.ArgumentParser) -> None:
    _add_spec(parser)
    _add_cluster(parser)
    _add_azure(parser)
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help="use this token ('-' for stdin) instead of issuing one; no Azure access needed",
    )
    parser.add_argument(
        "--key-type",
        choices=("primary", "secondary"),
        default="primary",
        help="the key that signed --token-file's token (default: primary)",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate on the server only")
    parser.add_argument("--diff", action="store_true", help="print what would change first")
    parser.add_argument(
        "--timeout", type=float, default=600.0, metavar="SECONDS", help="rollout timeout"
    )
    parser.add_argument("--no-wait", action="store_true", help="return after applying")
    parser.add_argument(
        "--allow-lint-errors", action="store_true", help="deploy even with lint errors"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="take over fields other field managers own, e.g. after `import --from-cluster`",
    )
    parser.add_argument(
        "--no-rollback",
        action="store_true",
        help="leave a failed rollout as it is (the old pods keep serving)",
    )
    parser.add_argument(
        "--location",
        default="on-premises",
        help="the gateway's location in APIM when it is created (default: on-premises)",
    )


@command(
    "deploy",
    help="deploy or update a gateway: APIM resource, token, manifests, rollout, verify",
    configure=_configure_deploy,
)
def deploy_command(args: argparse.Namespace) -> int:
    """``apim-selfhosted deploy``: exit 0 when deployed and verified, 1 when it failed."""
    from apim_selfhosted.steps import deploy

    spec = load_spec(args.spec, production_defaults=args.production_defaults)
    token = None
    if args.token_file:
        token = read_token(args.token_file, gateway=spec.gateway, key_type=args.key_type)
    with _kube(args) as kube:
        management = None if token is not None else _management(args, spec)
        try:
            result = deploy(
                spec,
                management=management,
                kube=kube,
                token=token,
                dry_run=args.dry_run,
                diff=args.diff,
                wait=not args.no_wait,
                timeout=args.timeout,
                allow_lint_errors=args.allow_lint_errors,
                force=args.force,
                rollback_on_failure=not args.no_rollback,
                location=args.location,
                on_event=_progress,
            )
        finally:
            if management is not None:
                management.close()
    if result.plan is not None:
        print(result.plan)
    print(result)
    return EXIT_OK if result.ok else EXIT_FINDINGS


# ---------------------------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------------------------


def _configure_verify(parser: argparse.ArgumentParser) -> None:
    _add_spec(parser)
    _add_cluster(parser)
    _add_azure(parser)
    parser.add_argument(
        "--azure",
        action="store_true",
        help="also compare with API Management (configuration endpoint, and whether the key "
        "that issued the token was regenerated: needs listKeys); uses Azure credentials",
    )
    parser.add_argument(
        "--at",
        metavar="TIME",
        help="judge the token as of this ISO 8601 time (default: now), e.g. before a holiday",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default: text)"
    )


@command(
    "verify",
    help="check a running gateway (exit 0 healthy, 1 failed, 2 warnings only)",
    configure=_configure_verify,
)
def verify_command(args: argparse.Namespace) -> int:
    """``apim-selfhosted verify``: the report; exit 0 healthy, 1 failed, 2 warnings only."""
    from apim_selfhosted.steps import verify

    spec = load_spec(args.spec, production_defaults=args.production_defaults)
    now = _when(args.at)
    with _kube(args) as kube:
        management = _management(args, spec) if args.azure else None
        try:
            report = verify(spec, kube=kube, management=management, now=now)
        finally:
            if management is not None:
                management.close()
    if args.format == "json":
        print(report.model_dump_json(indent=2))
    else:
        print(report)
    return report.exit_code


# ---------------------------------------------------------------------------------------------
# status
# ---------------------------------------------------------------------------------------------


def _configure_status(parser: argparse.ArgumentParser) -> None:
    _add_spec(parser)
    _add_cluster(parser)


@command(
    "status",
    help="one-screen summary: replicas, image, token expiry, last rollout",
    configure=_configure_status,
)
def status_command(args: argparse.Namespace) -> int:
    """``apim-selfhosted status``: exit 0 when the gateway is deployed, 1 when it is not."""
    from apim_selfhosted.steps import status

    spec = load_spec(args.spec, production_defaults=args.production_defaults)
    with _kube(args) as kube:
        summary = status(spec, kube=kube)
    print(summary)
    return EXIT_OK if summary.exists else EXIT_FINDINGS
