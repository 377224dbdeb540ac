"""The ``apim-selfhosted`` command: a thin layer over the public API.

Each subcommand is one function taking the parsed arguments and returning the exit code, plus
one function adding its arguments. Both are registered with :func:`command`, so a new
subcommand is a new pair of functions (in this module or another one listed in
:data:`COMMAND_MODULES`) and never an edit of someone else's code. Registering a name again
replaces the earlier command (that is how the full ``demo`` replaces the interim one).

Exit codes: 0 success, 1 the command ran and found problems (e.g. lint errors), 2 ``verify``
found warnings only, 3 a failure talking to Azure or Kubernetes, 64 bad input or usage (a spec
or token that is not valid, a missing file, an unknown option: ``EX_USAGE`` of ``sysexits.h``,
so that scripts can tell a mistyped command from a gateway with warnings), 130 interrupted.

Example:
    >>> main(["lint", "--help"])  # doctest: +ELLIPSIS
    usage: apim-selfhosted lint ...
    0
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

from apim_selfhosted.errors import ApimSelfhostedError, SpecError, TokenError

logger = logging.getLogger(__name__)

__all__ = ["COMMAND_MODULES", "Command", "command", "commands", "main"]

#: Modules whose import registers further subcommands (they call :func:`command`). A module
#: missing from the installation is skipped, so optional commands cannot break the others.
COMMAND_MODULES: tuple[str, ...] = (
    "apim_selfhosted.cli_ops",
    "apim_selfhosted.cli_rotate",
    "apim_selfhosted.cli_import",
)

EXIT_OK = 0
EXIT_FINDINGS = 1
#: ``verify``: warnings only (issue 5's contract); no other command uses it.
EXIT_WARNINGS = 2
EXIT_FAILURE = 3
#: Bad input or usage, for every subcommand and argparse's own errors (``EX_USAGE``).
EXIT_BAD_INPUT = 64

#: The exit codes, shown at the end of ``--help``.
EXIT_CODES_HELP = """exit codes:
  0    success (verify: healthy)
  1    the command ran and found problems (lint errors, failed checks, rollout failed)
  2    verify: warnings only
  3    a failure talking to Azure or Kubernetes
  64   bad input or usage: invalid spec or token, missing file, unknown option
  130  interrupted"""


class _Parser(argparse.ArgumentParser):
    """``argparse`` with usage errors exiting with :data:`EXIT_BAD_INPUT` instead of 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


Run = Callable[[argparse.Namespace], int]
Configure = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """A registered subcommand.

    Attributes:
        name: The subcommand, e.g. ``"lint"``.
        help: One line for the command list.
        configure: Adds the subcommand's arguments to its parser.
        run: Runs it; returns the exit code.

    Example:
        >>> commands()["lint"].help
        'check a spec against the production profile (exit 1 on errors)'
    """

    name: str
    help: str
    configure: Configure
    run: Run


_COMMANDS: dict[str, Command] = {}


def command(name: str, *, help: str, configure: Configure) -> Callable[[Run], Run]:
    """Registers a subcommand (decorator for its run function).

    Args:
        name: The subcommand name.
        help: One line describing it.
        configure: Function adding its arguments to an ``argparse`` parser.

    Returns:
        A decorator returning the run function unchanged.

    Example:
        >>> @command("hello", help="say hello", configure=lambda p: None)
        ... def hello(args: argparse.Namespace) -> int:
        ...     print("hello")
        ...     return 0
        >>> main(["hello"])
        hello
        0
        >>> del _COMMANDS["hello"]
    """

    def register(run: Run) -> Run:
        _COMMANDS[name] = Command(name=name, help=help, configure=configure, run=run)
        return run

    return register


def commands() -> dict[str, Command]:
    """The registered subcommands, after importing :data:`COMMAND_MODULES`.

    Returns:
        Name to :class:`Command`, in registration order.

    Example:
        >>> {"render", "lint", "schema", "demo"} <= set(commands())
        True
    """
    for module in COMMAND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return dict(_COMMANDS)


# ---------------------------------------------------------------------------------------------
# Helpers shared by subcommands.
# ---------------------------------------------------------------------------------------------


def load_spec(path: str, *, production_defaults: bool = False) -> Any:
    """Loads a spec file for a subcommand (optionally with the production profile's defaults).

    Args:
        path: The spec file.
        production_defaults: Fill the production profile's defaults into unset fields.

    Returns:
        The :class:`~apim_selfhosted.models.DeploymentSpec`.

    Raises:
        SpecError: The file is missing or not a valid spec.

    Example:
        >>> load_spec("missing.yaml")
        Traceback (most recent call last):
        ...
        apim_selfhosted.errors.SpecError: missing.yaml: cannot read: No such file or directory
    """
    from apim_selfhosted.models import DeploymentSpec
    from apim_selfhosted.profile import ProductionProfile

    spec = DeploymentSpec.from_file(path)
    return ProductionProfile().apply(spec) if production_defaults else spec


def read_token(path: str, *, gateway: Any, key_type: str = "primary") -> Any:
    """Reads a token file for a subcommand and checks it against the gateway and the clock.

    Args:
        path: File holding the token (either form); ``-`` reads standard input.
        gateway: The spec's :class:`~apim_selfhosted.models.Gateway`.
        key_type: ``primary`` or ``secondary``.

    Returns:
        The :class:`~apim_selfhosted.models.Token`.

    Raises:
        TokenError: The file cannot be read or holds no valid token for the gateway.

    Example:
        >>> read_token("missing.txt", gateway="gw1")
        Traceback (most recent call last):
        ...
        apim_selfhosted.errors.TokenError: missing.txt: cannot read the token file: No such ...
    """
    from apim_selfhosted.models import Token

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenError(f"{path}: cannot read the token file: {exc.strerror}") from exc
    try:
        return Token.parse(text, key_type=key_type, gateway=gateway, now=datetime.now(UTC))
    except TokenError as exc:
        raise TokenError(f"{'<stdin>' if path == '-' else path}: {exc}") from exc


def _write(text: str, output: str | None, stdout: TextIO) -> None:
    if output is None or output == "-":
        stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{output}: cannot write: {exc.strerror}", source=output) from exc


def _add_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="deployment spec file (YAML or JSON)")
    parser.add_argument(
        "--production-defaults",
        action="store_true",
        help="fill the production profile's defaults into fields the spec leaves unset",
    )


# ---------------------------------------------------------------------------------------------
# render
# ---------------------------------------------------------------------------------------------


def _configure_render(parser: argparse.ArgumentParser) -> None:
    _add_spec(parser)
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help="gateway token ('GatewayKey ...' or the bare form; '-' for stdin): renders the "
        "immutable token Secret and points the Deployment at it",
    )
    parser.add_argument(
        "--key-type",
        choices=("primary", "secondary"),
        default="primary",
        help="the key that signed the token (default: primary)",
    )
    parser.add_argument(
        "--reveal-secrets",
        action="store_true",
        help="write the token into the Secret (by default it reads <redacted>)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")


@command("render", help="print the Kubernetes manifests for a spec", configure=_configure_render)
def render_command(args: argparse.Namespace) -> int:
    """``apim-selfhosted render``: manifests as multi-document YAML.

    Args:
        args: The parsed arguments.

    Returns:
        0 (bad input raises).

    Raises:
        SpecError: The spec file is missing or invalid, or the output cannot be written.
        TokenError: ``--token-file`` holds no valid token for the spec's gateway.

    Example:
        >>> main(["render", "missing.yaml"])
        64
    """
    from apim_selfhosted.rendering import render, to_yaml

    spec = load_spec(args.spec, production_defaults=args.production_defaults)
    token = None
    if args.token_file:
        token = read_token(args.token_file, gateway=spec.gateway, key_type=args.key_type)
    manifests = render(spec, token)
    _write(to_yaml(manifests, reveal_secrets=args.reveal_secrets), args.output, sys.stdout)
    if token is not None and token.remaining(datetime.now(UTC)).total_seconds() <= 0:
        print(
            f"warning: the token expired on {token.expires_on:%Y-%m-%d %H:%M} UTC: a gateway "
            "started with it cannot load its configuration; issue a new one",
            file=sys.stderr,
        )
    if token is not None and not args.reveal_secrets:
        print(
            "note: the token Secret's value reads <redacted>; pass --reveal-secrets to write it",
            file=sys.stderr,
        )
    if token is None and spec.auth.kind == "gateway-token":
        print(
            f"note: no --token-file: the Deployment reads Secret '{spec.untokened_secret_name}' "
            "(key 'value'), which you create with the portal's kubectl command",
            file=sys.stderr,
        )
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# lint
# ---------------------------------------------------------------------------------------------


def _configure_lint(parser: argparse.ArgumentParser) -> None:
    _add_spec(parser)
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    parser.add_argument(
        "--token-file", metavar="FILE", help="also check this token's remaining validity"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="production profile (YAML/JSON with ProductionProfile fields) instead of the default",
    )
    parser.add_argument(
        "--min-replicas", type=int, metavar="N", help="override the profile's minimum replicas"
    )


@command(
    "lint",
    help="check a spec against the production profile (exit 1 on errors)",
    configure=_configure_lint,
)
def lint_command(args: argparse.Namespace) -> int:
    """``apim-selfhosted lint``: findings as text or JSON; exit 1 when any is an error.

    Args:
        args: The parsed arguments.

    Returns:
        1 when a finding is an error, else 0.

    Raises:
        SpecError: The spec or profile file is missing or invalid, or ``--min-replicas`` < 1.
        TokenError: ``--token-file`` holds no valid token for the spec's gateway.

    Example:
        >>> main(["lint", "missing.yaml"])
        64
    """
    from apim_selfhosted.profile import ProductionProfile, lint

    spec = load_spec(args.spec, production_defaults=args.production_defaults)
    profile = ProductionProfile.from_file(args.profile) if args.profile else ProductionProfile()
    if args.min_replicas is not None:
        if args.min_replicas < 1:  # model_copy(update=) would not validate it
            raise SpecError(
                f"--min-replicas: must be 1 or more, got {args.min_replicas}",
                problems=[("--min-replicas", "an integer >= 1")],
            )
        profile = profile.model_copy(update={"min_replicas": args.min_replicas})
    token = read_token(args.token_file, gateway=spec.gateway) if args.token_file else None
    findings = lint(spec, profile, token=token, now=datetime.now(UTC) if token else None)
    errors = sum(f.severity == "error" for f in findings)
    if args.format == "json":
        payload = [f.model_dump(mode="json") for f in findings]
        print(json.dumps(payload, indent=2))
    else:
        for finding in findings:
            print(finding)
        warnings = sum(f.severity == "warning" for f in findings)
        infos = len(findings) - errors - warnings
        print(f"{args.spec}: {errors} error(s), {warnings} warning(s), {infos} info(s)")
    return EXIT_FINDINGS if errors else EXIT_OK


# ---------------------------------------------------------------------------------------------
# schema
# ---------------------------------------------------------------------------------------------


def _configure_schema(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")


@command("schema", help="print the JSON schema of a deployment spec", configure=_configure_schema)
def schema_command(args: argparse.Namespace) -> int:
    """``apim-selfhosted schema``: the DeploymentSpec JSON schema.

    Args:
        args: The parsed arguments.

    Returns:
        0.

    Raises:
        SpecError: The output file cannot be written.

    Example:
        >>> import io, contextlib
        >>> out = io.StringIO()
        >>> with contextlib.redirect_stdout(out):
        ...     code = main(["schema"])
        >>> code, '"DeploymentSpec"' in out.getvalue()
        (0, True)
    """
    from apim_selfhosted.models import DeploymentSpec

    schema = DeploymentSpec.model_json_schema()
    _write(json.dumps(schema, indent=2, sort_keys=True) + "\n", args.output, sys.stdout)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# demo: the whole flow against the local stand-ins (apim_selfhosted.demo)
# ---------------------------------------------------------------------------------------------


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spec",
        metavar="SPEC",
        help="spec to use (default: examples/production.yaml of the source tree)",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the demo, keep FakeApim and KubeEmulator up and print how to reach them "
        "with kubectl and scripts, until Ctrl-C",
    )


@command(
    "demo",
    help="deploy, verify and rotate against local stand-ins (no cloud account needed)",
    configure=_configure_demo,
)
def demo_command(args: argparse.Namespace) -> int:
    """``apim-selfhosted demo``: :func:`apim_selfhosted.demo.run_demo`; exit 1 if a step failed.

    Args:
        args: The parsed arguments.

    Returns:
        0 when every step ended as expected, else 1.

    Example:
        >>> commands()["demo"].run is demo_command
        True
    """
    from apim_selfhosted.demo import run_demo

    return run_demo(spec_path=args.spec, keep_running=args.keep_running).exit_code


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand.

    Returns:
        The parser.

    Example:
        >>> build_parser().prog
        'apim-selfhosted'
    """
    from apim_selfhosted import __version__

    parser = _Parser(
        prog="apim-selfhosted",
        description="Deploy, verify and rotate tokens of the Azure API Management self-hosted "
        "gateway on Kubernetes.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log progress (-vv: debug) to stderr"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in commands().values():
        child = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.help,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.configure(child)
        child.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``apim-selfhosted`` command.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 ok, 1 findings, 2 ``verify`` warnings only, 3 Azure/Kubernetes
        failure, 64 bad input or usage (also argparse's errors), 130 interrupted.

    Example:
        >>> main(["--version"])  # doctest: +ELLIPSIS
        apim-selfhosted ...
        0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    run: Run = args._run
    try:
        return run(args)
    except (SpecError, TokenError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ApimSelfhostedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
