"""``apim-selfhosted import`` and ``helm-values``: adopt what users already run, from the shell.

``import`` writes the spec that reproduces a gateway deployed with the Helm chart (its values
file), the portal's YAML (or any ``kubectl get -o yaml`` output) or a live cluster, and prints the
report of what did not map one-to-one on stderr. ``helm-values`` goes the other way for teams that
keep the chart. Exit codes: 0 done, 1 done but the report has errors (placeholders to fill in,
Secrets to create), 2 bad input, 3 a cluster failure.

Example:
    >>> from apim_selfhosted.cli import main
    >>> main(["import", "--help"])  # doctest: +ELLIPSIS
    usage: apim-selfhosted import ...
    0
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from apim_selfhosted.cli import EXIT_FINDINGS, EXIT_OK, command, load_spec
from apim_selfhosted.errors import SpecError

logger = logging.getLogger(__name__)

__all__ = ["helm_values_command", "import_command"]


def _read(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}", source=path) from exc


def _configure_import(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--helm-values",
        metavar="FILE",
        help="values file of the azure-api-management-gateway chart",
    )
    source.add_argument(
        "--manifests", metavar="FILE", help="Kubernetes YAML: the portal's, or kubectl get -o yaml"
    )
    source.add_argument(
        "--from-cluster", metavar="NS/NAME", help="a live gateway Deployment in the cluster"
    )
    parser.add_argument(
        "-o", "--output", metavar="SPEC", default="-", help="spec file to write (default: stdout)"
    )
    parser.add_argument("--release", metavar="NAME", help="Helm release name (--helm-values)")
    parser.add_argument(
        "--namespace",
        metavar="NS",
        help="namespace (required with --helm-values; manifests: "
        "default the objects' own, else 'default')",
    )
    parser.add_argument("--subscription-id", metavar="ID", help="the APIM service's subscription")
    parser.add_argument("--resource-group", metavar="RG", help="the APIM service's resource group")
    parser.add_argument("--gateway-name", metavar="NAME", help="the gateway's name in APIM")
    parser.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (--from-cluster)")
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context (--from-cluster)")
    parser.add_argument(
        "--report-format", choices=("text", "json"), default="text", help="report on stderr"
    )


def _write_spec(spec: Any, output: str) -> None:
    import yaml

    if output == "-":
        sys.stdout.write(yaml.safe_dump(spec.to_dict(), sort_keys=False, default_flow_style=False))
    else:
        spec.to_file(output)


@command(
    "import",
    help="write the spec of a gateway deployed with the Helm chart, the portal's YAML or found "
    "in a cluster",
    configure=_configure_import,
)
def import_command(args: argparse.Namespace) -> int:
    """``apim-selfhosted import``: a spec from Helm values, manifests or a live cluster."""
    ids = {
        "subscription_id": args.subscription_id,
        "resource_group": args.resource_group,
        "gateway_name": args.gateway_name,
    }
    extra: dict[str, Any] = {}
    text_extra = ""
    if args.helm_values:
        import yaml

        from apim_selfhosted.helm import spec_from_helm_values

        if not args.release or not args.namespace:
            raise SpecError(
                "--helm-values needs --release (the Helm release name, it names the objects) "
                "and --namespace",
                problems=[("--release", "required"), ("--namespace", "required")],
            )
        try:
            values = yaml.safe_load(_read(args.helm_values)) or {}
        except yaml.YAMLError as exc:
            raise SpecError(f"{args.helm_values}: not valid YAML: {exc}") from exc
        spec, report = spec_from_helm_values(
            values, release_name=args.release, namespace=args.namespace, **ids
        )
    elif args.manifests:
        from apim_selfhosted.adoption import spec_from_manifests

        spec, report = spec_from_manifests(
            _read(args.manifests), namespace=args.namespace, source=args.manifests, **ids
        )
    else:
        from apim_selfhosted.adoption import adopt
        from apim_selfhosted.kube import KubernetesApplier

        namespace, _, name = str(args.from_cluster).partition("/")
        if not namespace or not name:
            raise SpecError(
                f"--from-cluster must be NAMESPACE/NAME, got {args.from_cluster!r}",
                problems=[("--from-cluster", "NAMESPACE/NAME")],
            )
        with KubernetesApplier.from_kubeconfig(args.kubeconfig, context=args.context) as kube:
            result = adopt(kube, namespace=namespace, name=name, **ids)
        spec, report = result.spec, result.report
        extra = {
            "takeover": [t.model_dump(mode="json") for t in result.takeover],
            "needs_force": result.needs_force,
            "restarts_pods": result.restarts_pods,
            "restart_reasons": list(result.restart_reasons),
            "findings": [f.model_dump(mode="json") for f in result.findings],
        }
        text_extra = str(result).split("\n", 2)[2] if args.report_format == "text" else ""
    _write_spec(spec, args.output)
    if args.report_format == "json":
        data = {
            "source": report.source,
            "ok": report.ok,
            "issues": [i.model_dump(mode="json") for i in report.issues],
            "token_found": report.token is not None,
            **extra,
        }
        print(json.dumps(data, indent=2), file=sys.stderr)
    else:
        print(str(report), file=sys.stderr)
        if extra:
            print(text_extra, file=sys.stderr)
        if report.token is not None:
            print(
                "note: a gateway token was found in the input; it is not written anywhere "
                "(deploy issues its own, or give it with --token-file)",
                file=sys.stderr,
            )
    return EXIT_OK if report.ok else EXIT_FINDINGS


def _configure_helm_values(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="deployment spec file (YAML or JSON)")
    parser.add_argument(
        "-o", "--output", metavar="FILE", default="-", help="values file (default: stdout)"
    )


@command(
    "helm-values",
    help="write values for the official Helm chart 1.15.1 that deploy a spec's gateway",
    configure=_configure_helm_values,
)
def helm_values_command(args: argparse.Namespace) -> int:
    """``apim-selfhosted helm-values``: chart values for a spec, with what the chart cannot do."""
    import yaml

    from apim_selfhosted.helm import spec_to_helm_values

    spec = load_spec(args.spec)
    values, report = spec_to_helm_values(spec)
    text = yaml.safe_dump(values, sort_keys=False, default_flow_style=False)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"{args.output}: cannot write: {exc.strerror}") from exc
    print(str(report), file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FINDINGS
