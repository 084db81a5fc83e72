"""``events-audit config``: the settings the service would run with, each with
where it came from (command line, env, config file, default), secrets hidden.

It resolves them exactly as the service does (``cli.parse_args``,
``config.resolve``, ``cli.check_settings``) and connects to nothing.
"""

from __future__ import annotations

import json
import sys

from . import __version__
from .cli import PROG, UsageError, check_settings, parse_args
from .config import (
    OPTIONS,
    Option,
    Settings,
    format_duration,
    resolve,
)
from .nats_urls import redact_nats_addr, server_urls

CONFIG_FORMATS = ("table", "json")


def config_help() -> str:
    return "\n".join(
        [
            "NAME:",
            f"   {PROG} config - the settings the service would run with, and where each came from",
            "",
            "USAGE:",
            f"   {PROG} config [options] [--format table|json]",
            "",
            "   Takes every option of the service (see events-audit --help), its env vars",
            "   (AUDIT_LISTNER_*) and --config FILE, resolves them as the service does, and",
            "   prints each setting with its value and its source: command line, env VAR,",
            "   config file PATH or default.  --audit-nats-addr is shown as the URLs the",
            "   service connects to, with passwords and tokens as ***.  A bad value is one",
            "   line on stderr and exit code 2, as for the service; nothing is connected to",
            "   or opened.",
            "",
            "OPTIONS:",
            "   --format table|json   an aligned table (default), or one JSON object:",
            '                         {"setting": {"value": ..., "source": ..., "env": ...}}',
            "   --help, -h            show help",
            "",
        ]
    )


def config_value(option: Option, value: object) -> object:
    """A setting's value as `config --format json` gives it (secrets hidden)."""
    if option.name == "audit-nats-addr":
        return redact_nats_addr(",".join(server_urls(str(value))))
    if option.kind == "duration":
        return format_duration(float(value))  # type: ignore[arg-type]
    return value


def _size_text(value: int) -> str:
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if value >= 1 << shift and value % (1 << shift) == 0:
            return f"{value} ({value >> shift}{unit})"
    return str(value)


def _table_text(option: Option, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if option.kind == "size" and isinstance(value, int):
        return _size_text(value)
    text = str(value)
    if not text or text != text.strip() or not text.isprintable():
        return json.dumps(text, ensure_ascii=False)
    return text


def config_report(settings: Settings) -> list[tuple[Option, object, str]]:
    """(option, value shown, source) of every setting, in --help's order."""
    return [
        (
            option,
            config_value(option, getattr(settings, option.attr)),
            settings.sources.get(option.name, "default"),
        )
        for option in OPTIONS
    ]


def config_table(settings: Settings) -> str:
    rows = [("SETTING", "VALUE", "SOURCE")] + [
        (option.name, _table_text(option, value), source)
        for option, value, source in config_report(settings)
    ]
    name_width = max(len(name) for name, _, _ in rows)
    # a very long value (several URLs, a path) does not push every source out
    value_width = min(max(len(value) for _, value, _ in rows), 48)
    return "".join(
        f"{name:<{name_width}}  {value:<{value_width}}  {source}\n" for name, value, source in rows
    )


def config_json(settings: Settings) -> str:
    document = {}
    for option, value, source in config_report(settings):
        entry = {"value": value, "source": source, "env": option.env}
        if option.kind == "duration":
            entry["seconds"] = getattr(settings, option.attr)
        document[option.name] = entry
    return json.dumps(document, indent=2) + "\n"


def main(argv: list[str]) -> int:
    parsed = parse_args(argv, extra=("format",))
    if parsed == "help":
        sys.stdout.write(config_help())
        return 0
    if parsed == "version":
        print(f"{PROG} {__version__}")
        return 0
    assert isinstance(parsed, dict)
    output_format = parsed.pop("format", "table")
    if output_format not in CONFIG_FORMATS:
        raise UsageError(f"invalid --format {output_format!r} (table or json)")
    settings = resolve(parsed)
    check_settings(settings)
    sys.stdout.write(config_json(settings) if output_format == "json" else config_table(settings))
    return 0
