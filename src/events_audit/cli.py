"""The command line: the original's flags (urfave/cli style), --help, --version."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from . import __version__
from .config import OPTIONS, OPTIONS_BY_NAME, ConfigError, Settings, format_duration, resolve
from .delivery import EXIT_OUTPUT_HUNG
from .logs import LAYOUT_COLOR, LAYOUT_JSON, LAYOUT_TEXT, Logger
from .sink import Sink, SinkError

PROG = "events-audit"
# The service's own lines wait this long for a write of the lines to finish;
# then they go to stderr (a hung output must not hold the event loop).
SERVICE_LINE_WAIT = 0.5


class UsageError(ConfigError):
    pass


def parse_args(argv: Sequence[str]) -> dict[str, str] | str:
    """Flag name -> raw value; or "help" / "version" when asked for those.

    Accepts --flag value, --flag=value and -flag; a bool flag alone is true
    (--flag=false turns it off), as urfave/cli does.
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
        if option is None:
            raise UsageError(f"flag provided but not defined: {arg.partition('=')[0]}")
        if not has_value:
            if option.kind == "bool":
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


def layout_for(settings: Settings, sink: Sink) -> int:
    if settings.log_format == "json":
        return LAYOUT_JSON
    return LAYOUT_COLOR if sink.is_terminal else LAYOUT_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        parsed = parse_args(args)
        if parsed == "help":
            sys.stdout.write(help_text())
            return 0
        if parsed == "version":
            print(f"{PROG} {__version__}")
            return 0
        settings = resolve(parsed)
        if settings.audit == "nats" and not settings.audit_nats_addr.strip():
            raise ConfigError(
                "--audit=nats needs --audit-nats-addr "
                "(env AUDIT_LISTNER_AUDIT_NATS_ADDR), e.g. nats://127.0.0.1:4222"
            )
    except ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        sink = Sink(settings.log_output, fsync=settings.log_fsync == "batch")
    except SinkError as exc:
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
