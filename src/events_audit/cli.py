"""The command line: the original's flags (urfave/cli style), --help, --version;
and the tools beside the service: ``verify``, ``replay``, ``keygen`` and
``config``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .config import (
    OPTIONS,
    OPTIONS_BY_NAME,
    ConfigError,
    Settings,
    format_duration,
    resolve,
)
from .delivery import EXIT_OUTPUT_HUNG
from .logs import LAYOUT_COLOR, LAYOUT_JSON, LAYOUT_TEXT, Logger
from .sink import Sink, SinkError

PROG = "events-audit"
# The service's own lines wait this long for a write of the lines to finish;
# then they go to stderr (a hung output must not hold the event loop).
SERVICE_LINE_WAIT = 0.5
UNFINISHED_CUT = (
    "The log ended inside a line a killed run did not finish; cut it (never acked: its event"
    " comes back)"
)


class UsageError(ConfigError):
    pass


def parse_args(argv: Sequence[str], extra: Sequence[str] = ()) -> dict[str, str] | str:
    """Flag name -> raw value; or "help" / "version" when asked for those.

    Accepts --flag value, --flag=value and -flag; a bool flag alone is true
    (--flag=false turns it off), as urfave/cli does.  ``extra``: the names of
    a tool's own flags (each takes a value) beside the service's.
    """
    values: dict[str, str] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in ("-h", "--help", "-help"):
            return "help"
        if arg in ("-v", "--version", "-version"):
            return "version"
        if not arg.startswith("-") or arg in ("-", "--"):
            raise UsageError(f"unexpected argument {arg!r} (all settings are --flags)")
        name, has_value, value = arg.lstrip("-").partition("=")
        option = OPTIONS_BY_NAME.get(name)
        if option is None and name not in extra:
            raise UsageError(f"flag provided but not defined: {arg.partition('=')[0]}")
        if not has_value:
            if option is not None and option.kind == "bool":
                value = "true"
            elif i < len(args):
                value = args[i]
                i += 1
            else:
                raise UsageError(f"flag needs an argument: {arg}")
        values[name] = value
    return values


def _default_text(option) -> str:
    if option.kind == "duration":
        return format_duration(option.default)
    if option.kind == "bool":
        return "true" if option.default else "false"
    if isinstance(option.default, str):
        return f'"{option.default}"' if option.default else ""
    return str(option.default)


def help_text() -> str:
    lines = [
        "NAME:",
        f"   {PROG} - JetStream events audit server",
        "",
        "USAGE:",
        f"   {PROG} [options]",
        f"   {PROG} verify [options] FILE...   is every event in these log files (and unaltered)?",
        f"   {PROG} replay [options]           write the lines of a window of the stream again",
        f"   {PROG} keygen PREFIX              an Ed25519 key pair for --audit-digest-key",
        f"   {PROG} config [options]           the settings resolved, and where each came from",
        f"   ({PROG} COMMAND --help for each)",
        "",
        "VERSION:",
        f"   {__version__}",
        "",
        "OPTIONS:",
    ]
    categories: dict[str, list] = {}
    for option in OPTIONS:
        categories.setdefault(option.category, []).append(option)
    for category, options in categories.items():
        lines += ["", f"   {category}", ""]
        for option in options:
            head = option.flag + ("" if option.kind == "bool" else f" {option.kind}")
            default = _default_text(option)
            default = f" (default: {default})" if default else ""
            lines.append(f"   {head:<34} {option.help}{default} [${option.env}]")
    lines += [
        "",
        "   --help, -h                         show help",
        "   --version, -v                      print the version",
        "",
    ]
    return "\n".join(lines)


def check_settings(settings: Settings) -> None:
    """What the service refuses of settings together, before it starts."""
    if settings.audit == "nats" and not settings.audit_nats_addr.strip():
        raise ConfigError(
            "--audit=nats needs --audit-nats-addr "
            "(env AUDIT_LISTNER_AUDIT_NATS_ADDR), e.g. nats://127.0.0.1:4222"
        )
    if settings.audit_ha == "pinned" and settings.audit_engine == "python":
        raise ConfigError(
            "--audit-ha=pinned needs the fast engine: the python engine pulls through "
            "nats-py's fetch, which has no priority groups; use --audit-engine=auto or fast"
        )


def layout_for(settings: Settings, sink: Sink) -> int:
    if settings.log_format == "json":
        return LAYOUT_JSON
    return LAYOUT_COLOR if sink.is_terminal else LAYOUT_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in TOOLS:
        return run_tool(args[0], list(args[1:]))
    try:
        parsed = parse_args(args)
        if parsed == "help":
            sys.stdout.write(help_text())
            return 0
        if parsed == "version":
            print(f"{PROG} {__version__}")
            return 0
        settings = resolve(parsed)
        check_settings(settings)
    except ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        from .digest import DigestError, writer_for

        digest = writer_for(settings) if settings.audit == "nats" else None
        sink = Sink.from_settings(settings, digest)
    except (SinkError, DigestError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2

    def write_service_line(line: bytes) -> None:
        # The service's own lines must get out even when the log output fails.
        try:
            sink.write(line, wait=SERVICE_LINE_WAIT)
        except SinkError:
            if sink.target != "stderr":
                try:
                    os.write(2, line)
                except OSError:
                    pass

    log = Logger(write_service_line, settings.log_level, layout_for(settings, sink))
    if sink.unfinished_cut:
        log.warning(UNFINISHED_CUT, path=sink.target, bytes=sink.unfinished_cut)
    try:
        if settings.audit == "nope":
            log.info("Audit is disabled, exiting")
            return 0
        if settings.audit == "nsq":
            log.error("NSQ audit is not supported by events-audit, use --audit=nats")
            return 1
        try:
            import uvloop

        except ImportError:  # pragma: no cover - uvloop is a dependency
            return asyncio.run(_run(settings, log, sink))
        return uvloop.run(_run(settings, log, sink))
    finally:
        sink.close()


async def _run(settings: Settings, log: Logger, sink: Sink) -> int:
    import logging

    from . import server

    # asyncio's own chatter (e.g. about TLS EOF) would bypass the log format.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)

    code = await server.run(settings, log, sink)
    if code == EXIT_OUTPUT_HUNG:
        # A worker thread is still stuck in the write: the loop's shutdown
        # (and Python's exit) would wait for it for ever.
        os._exit(code)
    return code


# -- the tools -----------------------------------------------------------------

# The service's settings each tool takes (flags, env vars and --config as for
# the service): the connection, and for replay where and how lines go.
CONNECTION_SETTINGS = (
    "config",
    "audit-nats-addr",
    "audit-topic",
    "audit-nats-creds",
    "audit-nats-nkey",
    "audit-nats-tls-ca",
    "audit-nats-tls-cert",
    "audit-nats-tls-key",
)
REPLAY_SETTINGS = CONNECTION_SETTINGS + (
    "audit-stream-name",
    "log-output",
    "log-format",
    "log-fsync",
    "log-page-cache",
)


class ToolParser(argparse.ArgumentParser):
    """argparse with a one-line error (exit 2) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def tool_parser(name: str, description: str, settings: Sequence[str] = ()) -> ToolParser:
    parser = ToolParser(prog=f"{PROG} {name}", description=description)
    if settings:
        group = parser.add_argument_group(
            "settings (as for the service; env vars and --config too)"
        )
        for setting in settings:
            option = OPTIONS_BY_NAME[setting]
            group.add_argument(
                option.flag,
                dest=f"setting:{setting}",
                metavar=option.kind.upper(),
                help=option.help,
            )
    return parser


def tool_settings(namespace: argparse.Namespace) -> Settings:
    """The settings a tool was given, resolved like the service's."""
    given = {
        key.partition(":")[2]: value
        for key, value in vars(namespace).items()
        if key.startswith("setting:") and value is not None
    }
    return resolve(given)


def _verify(argv: list[str]) -> int:
    from . import verify

    return verify.main(argv)


def _replay(argv: list[str]) -> int:
    from . import replay

    return replay.main(argv)


def _keygen(argv: list[str]) -> int:
    from . import digest

    return digest.keygen_main(argv)


def _config(argv: list[str]) -> int:
    from . import settings_report

    return settings_report.main(argv)


TOOLS: dict[str, Callable[[list[str]], int]] = {
    "verify": _verify,
    "replay": _replay,
    "keygen": _keygen,
    "config": _config,
}


def run_tool(name: str, argv: list[str]) -> int:
    """A tool's exit code; its bad input is one line on stderr and exit 2."""
    try:
        return TOOLS[name](argv)
    except ConfigError as exc:
        print(f"{PROG} {name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {name}: interrupted", file=sys.stderr)
        return 130
