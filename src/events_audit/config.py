"""Settings: the original's flags, their env vars and defaults, YAML files.

Every setting has a flag name (``audit-ack-wait``), an env var
(``AUDIT_LISTNER_`` + the name upper-cased, ``-`` as ``_``; the original's
spelling is kept) and a default.  Sources, strongest first: command line,
environment, the YAML file given by ``--config``, defaults.  A bad value is a
``ConfigError`` naming the setting, the value and where it came from; values
nats-server or nats-py would refuse (names, subjects, server URLs, limits) are
bad values here, so they stop the service at start instead of failing later.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .nats_urls import redact_nats_addr, server_urls

ENV_PREFIX = "AUDIT_LISTNER_"

LOG_LEVELS = ("panic", "fatal", "error", "warning", "info", "debug", "trace")


class ConfigError(Exception):
    """A setting has a value the service cannot use."""


# --------------------------------------------------------------------------
# Value parsers (each raises ValueError with a reason)
# --------------------------------------------------------------------------

_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,  # not a Go unit: 24h
    "w": 604_800_000_000_000,  # not a Go unit: 7d, 168h
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([a-zµμ]*)")
# A Go time.Duration is an int64 of nanoseconds (about 292 years); Go refuses
# a longer duration, and nats-server reads the durations it is sent as one.
_MAX_DURATION_NS = (1 << 63) - 1


def _whole_ns(number: str, unit: int) -> int:
    """number * unit in whole nanoseconds, as Go adds them up (a fraction of a
    nanosecond is dropped); only compared with _MAX_DURATION_NS."""
    whole, _, fraction = number.partition(".")
    whole = whole.lstrip("0")
    if len(whole) > 20:  # more than any int64 (and int() of a huge string is slow)
        return _MAX_DURATION_NS + 1
    fraction = fraction[:20]  # digits beyond a nanosecond of the longest unit
    ns = int(whole or "0") * unit
    if fraction:
        ns += int(fraction) * unit // 10 ** len(fraction)
    return ns


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds ("90s", "1h30m", "1.5h", "300ms"),
    with days and weeks as well: ``d`` is 24h and ``w`` is 7d (168h), so
    "7d", "2w", "1.5d" and "1w2d3h" are accepted.

    Every duration Go accepts means what it means in Go (same units, any
    order, repeats add up, fractions, "0" without a unit), except that a
    negative one is refused; so is one longer than Go's maximum (2562047h).
    Durations are shown the Go way (format_duration: 7d is "168h0m0s").
    """
    s = text.strip()
    if s in ("0", "+0", "-0"):
        return 0.0
    if not s:
        raise ValueError("empty duration")
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
        if not s:  # a sign alone
            raise ValueError(f"invalid duration {text!r}")
    total_ns = 0.0
    whole_ns = 0
    pos = 0
    while pos < len(s):
        match = _DURATION_PART.match(s, pos)
        number, unit = match.group(1), match.group(2)
        if not number or number == ".":
            raise ValueError(f"invalid duration {text!r}")
        if not unit:
            raise ValueError(f"missing unit in duration {text!r} (use ns, us, ms, s, m, h, d or w)")
        if unit not in _DURATION_UNITS:
            raise ValueError(
                f"unknown unit {unit!r} in duration {text!r} (use ns, us, ms, s, m, h, d or w)"
            )
        total_ns += float(number) * _DURATION_UNITS[unit]
        whole_ns += _whole_ns(number, _DURATION_UNITS[unit])
        pos = match.end()
    if sign < 0 and total_ns:
        raise ValueError(f"negative duration {text!r}")
    if whole_ns > _MAX_DURATION_NS:
        raise ValueError(
            f"duration {text!r} is too long (at most 2562047h47m16.854775807s, about 292 years)"
        )
    return total_ns / 1e9


def format_duration(seconds: float) -> str:
    """Go's Duration.String() for whole-nanosecond values (24h0m0s, 30s, 1.5s)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return _trim_fraction(ns, size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _trim_fraction(rest, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return text


def _trim_fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


_SIZE = re.compile(r"^\s*([0-9]+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """A byte count: a plain integer like the original, or 10GB / 512MiB / 1T.

    Suffixes are powers of 1024, as in nats-server's own configuration.
    """
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"invalid byte size {text!r} (an integer, optionally with KB, MB, GB, TB)")
    number, unit = match.groups()
    return int(number) * _SIZE_UNITS[(unit or "").lower()[:1]]


def parse_int(text: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise ValueError(f"invalid integer {text!r}") from None


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool, which urfave/cli uses for flags and env vars."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"invalid boolean {text!r} (use true or false)")


def parse_level(text: str) -> str:
    """logrus.ParseLevel: case-insensitive, "warn" is "warning"."""
    level = text.strip().lower()
    if level == "warn":
        level = "warning"
    if level not in LOG_LEVELS:
        raise ValueError(f"not a valid log level {text!r} (use {', '.join(LOG_LEVELS)})")
    return level


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return text

    return parse


def _positive(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def checked(text: str) -> Any:
        value = parse(text)
        if value <= 0:
            raise ValueError(f"{text!r} must be greater than zero")
        return value

    return checked


def _page_cache(text: str) -> int:
    """--log-page-cache: a byte size, or -1 for no limit."""
    if text.strip() == "-1":
        return -1
    try:
        return parse_size(text)
    except ValueError as exc:
        raise ValueError(f"{exc}; or -1: no limit") from None


def _max_deliver(text: str) -> int:
    value = parse_int(text)
    if value == 0 or value < -1:
        raise ValueError(f"{text!r} must be -1 (unlimited) or greater than zero")
    return value


def _priority_group(text: str) -> str:
    # nats-server's rule for priority group names
    if not re.fullmatch(r"[A-Za-z0-9/_=-]{1,16}", text):
        raise ValueError(f"{text!r} is not a priority group name (1 to 16 of A-Z a-z 0-9 - _ / =)")
    return text


def _ha_timeout(text: str) -> float:
    value = parse_duration(text)
    if value < 1.0:
        raise ValueError(f"{text!r} is too short (at least 1s: pulls expire in half of it)")
    return value


def _non_negative(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def checked(text: str) -> Any:
        value = parse(text)
        if value < 0:
            raise ValueError(f"{text!r} must not be negative")
        return value

    return checked


# nats-server keeps a stream's limits as Go int64s: a larger number is refused
_INT64_MAX = (1 << 63) - 1


def _int64(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def checked(text: str) -> Any:
        value = parse(text)
        if value > _INT64_MAX:
            raise ValueError(f"{text!r} is too large (nats-server takes at most {_INT64_MAX})")
        return value

    return checked


def _max_age(text: str) -> float:
    # nats-server's checkStreamCfg: "max age needs to be >= 100ms"
    value = _non_negative(parse_duration)(text)
    if 0 < value < 0.1:
        raise ValueError(f"{text!r} is too short (0 for no limit, or at least 100ms)")
    return value


# nats-server's StreamMaxReplicas
MAX_REPLICAS = 5


def _replicas(text: str) -> int:
    value = _positive(parse_int)(text)
    if value > MAX_REPLICAS:
        raise ValueError(f"{text!r} is too many (nats-server allows at most {MAX_REPLICAS})")
    return value


# -- JetStream names, subjects and server URLs: what nats-server and nats-py take

# Characters a stream or consumer name cannot hold: nats-server's
# isValidAssetName (2.14+; isValidName before: the same without / and \), and
# nats-py's _INVALID_NAME_CHARS (js/manager.py: ">*. /\\\t\r\n").  The names
# are tokens of the JetStream API subjects and directories of the store.
_NAME_FORBIDDEN = " \t\r\n\f.*>/\\"
# nats-server's JSMaxNameLen, in bytes, for streams and consumers alike
MAX_NAME_BYTES = 255
_CHAR_NAMES = {
    " ": "a space",
    "\t": "a tab",
    "\r": "a carriage return",
    "\n": "a newline",
    "\f": "a form feed",
}


def _char(c: str) -> str:
    return _CHAR_NAMES.get(c, repr(c))


def _js_name(what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not text:
            raise ValueError(f"a {what} name is required")
        bad = [c for c in text if c in _NAME_FORBIDDEN]
        if bad:
            raise ValueError(
                f"a {what} name cannot contain {_char(bad[0])} "
                "(nats-server and nats-py refuse . * > / \\ and white space in names)"
            )
        if len(text.encode()) > MAX_NAME_BYTES:
            raise ValueError(
                f"a {what} name is at most {MAX_NAME_BYTES} bytes "
                f"(this one is {len(text.encode())})"
            )
        return text

    return parse


# White space in a subject: nats-server's isValidSubject refuses " \t\n\f\r",
# nats-py's _validate_subject " \t\r\n".
_SUBJECT_SPACE = " \t\r\n\f"


def parse_subject(text: str) -> str:
    """A subject or subject pattern, as nats-server (isValidSubject) and
    nats-py (the subscribe path's strict _validate_subject) both take it:
    non-empty tokens without white space, ``*`` only as a whole token, ``>``
    only as the whole last token."""
    if not text:
        raise ValueError("a subject is required")
    space = [c for c in text if c in _SUBJECT_SPACE]
    if space:
        raise ValueError(f"a subject cannot contain {_char(space[0])}")
    tokens = text.split(".")
    for index, token in enumerate(tokens):
        if not token:
            raise ValueError("a subject has no empty tokens (no '.' at its start or end, no '..')")
        if token == ">":
            if index != len(tokens) - 1:
                raise ValueError("'>' can only be the last token of a subject")
        elif ">" in token:
            raise ValueError(f"'>' can only be a whole token, not part of {token!r}")
        elif "*" in token and token != "*":
            raise ValueError(f"'*' can only be a whole token, not part of {token!r}")
    return text


# What nats-py 2.16 connects to (aio/client.py _parse_server_uri and
# _connect_to_server): nats:// and tls:// over TCP, ws:// and wss:// over
# WebSocket (with the aiohttp package), never the two kinds mixed.  The scheme
# is matched as written: nats-py looks for "nats://" etc. in the URL, so
# NATS:// or http:// would be read as a host named "NATS" or "http".
NATS_SCHEMES = ("nats", "tls", "ws", "wss")
_WEBSOCKET_SCHEMES = ("ws", "wss")


def _websocket_transport_available() -> bool:
    """nats-py's WebSocket transport needs aiohttp, which it does not require."""
    import importlib.util

    return importlib.util.find_spec("aiohttp") is not None


def _check_nats_url(url: str, several: bool) -> str:
    """The URL's scheme; ValueError if nats-py cannot connect to it.  The
    reason never repeats a part of the URL that might be a password (a port
    that is not one may be the end of a password with a '/' in it)."""

    def refuse(reason: str) -> ValueError:
        return ValueError(f"{redact_nats_addr(url)!r}: {reason}" if several else reason)

    scheme = url.partition("://")[0]
    if scheme not in NATS_SCHEMES:
        named = f" {scheme!r}" if scheme.isalnum() else ""  # not a user:pass@ without one
        raise refuse(f"the scheme{named} is not nats://, tls://, ws:// or wss://")
    try:
        netloc = urlsplit(url).netloc
    except ValueError as exc:  # an unclosed [ of an IPv6 address
        raise refuse(str(exc)) from None
    # urllib's (and so nats-py's) split of user@host:port
    hostinfo = netloc.rpartition("@")[2]
    _, bracket, bracketed = hostinfo.partition("[")
    if bracket:
        host, _, rest = bracketed.partition("]")
        _, colon, port = rest.partition(":")
    else:
        host, colon, port = hostinfo.partition(":")
    if not host:
        raise refuse("no host")
    if host.lower() == "none":  # nats-py: "invalid hostname in connect url"
        raise refuse("nats-py refuses the host name 'none'")
    if any(c.isspace() or not c.isprintable() for c in host):
        raise refuse("the host cannot contain white space")
    if colon:
        if not port:
            raise refuse("an empty port after ':' (a port is 1-65535)")
        if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
            raise refuse("the port is not a number from 1 to 65535")
    return scheme


def parse_nats_addr(text: str) -> str:
    """--audit-nats-addr: every URL one nats-py can connect to (empty: none given)."""
    if not text.strip():
        return text
    urls = server_urls(text)
    if not urls:
        raise ValueError("no URL in it")
    schemes = [_check_nats_url(url, len(urls) > 1) for url in urls]
    websocket = [scheme in _WEBSOCKET_SCHEMES for scheme in schemes]
    if any(websocket) and not all(websocket):
        raise ValueError(
            "ws:// and wss:// URLs cannot be mixed with nats:// and tls:// ones "
            "(nats-py refuses the mix)"
        )
    if any(websocket) and not _websocket_transport_available():
        raise ValueError(
            "ws:// and wss:// need the aiohttp package, which is not installed "
            "(nats-py's WebSocket transport; pip install aiohttp)"
        )
    return text


# --------------------------------------------------------------------------
# The settings
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    name: str  # the flag name, also the YAML key
    default: Any
    parse: Callable[[str], Any]
    category: str
    help: str
    kind: str = "string"  # how --help shows the value: string, int, bool, duration, size
    attr: str = ""  # the Settings attribute
    # how a value is shown in messages and by `events-audit config` (secrets hidden)
    display: Callable[[str], str] | None = None

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper().replace("-", "_")

    @property
    def flag(self) -> str:
        return "--" + self.name


def _opt(name, default, parse, category, help, kind="string", display=None) -> Option:
    return Option(name, default, parse, category, help, kind, name.replace("-", "_"), display)


OPTIONS: tuple[Option, ...] = (
    # The original's flags, same names, env vars and defaults.
    _opt(
        "audit",
        "nope",
        _choice("nats", "nsq", "nope"),
        "Audit",
        "audit backend: nats, nsq (not supported) or nope (disabled)",
    ),
    _opt(
        "audit-nats-addr",
        "",
        parse_nats_addr,
        "Audit",
        "NATS server URL(s), comma separated (nats://user:pass@host:4222,...)",
        display=redact_nats_addr,
    ),
    _opt(
        "audit-nats-ping-interval",
        2.0,
        _positive(parse_duration),
        "Audit",
        "ping NATS this often; two unanswered pings close the connection and reconnect",
        "duration",
    ),
    _opt(
        "audit-topic", "accountats", parse_subject, "Audit", "subject (pattern) the stream captures"
    ),
    _opt(
        "log-level",
        "debug",
        parse_level,
        "Logging",
        "log level: trace, debug, info, warning, error, fatal, panic",
    ),
    _opt("log-format", "text", _choice("text", "json"), "Logging", "log format: text or json"),
    _opt(
        "audit-stream-name",
        "EVENTS",
        _js_name("stream"),
        "JetStream stream",
        "JetStream stream name",
    ),
    _opt(
        "audit-create-stream",
        True,
        parse_bool,
        "JetStream stream",
        "create the stream at start; an existing one gets only the limits given "
        "explicitly, and none that would remove events not logged yet",
        "bool",
    ),
    _opt(
        "audit-stream-max-age",
        86400.0,
        _max_age,
        "JetStream stream",
        "maximum age of messages in the stream",
        "duration",
    ),
    _opt(
        "audit-stream-max-bytes",
        1073741824,
        _int64(_positive(parse_size)),
        "JetStream stream",
        "maximum bytes in the stream (accepts 10GB, 512MiB)",
        "size",
    ),
    _opt(
        "audit-stream-max-msgs",
        1000000,
        _int64(_positive(parse_int)),
        "JetStream stream",
        "maximum messages in the stream",
        "int",
    ),
    _opt(
        "audit-stream-replicas",
        1,
        _replicas,
        "JetStream stream",
        "number of stream replicas (1 to 5)",
        "int",
    ),
    _opt(
        "audit-consumer-name",
        "events-audit-consumer",
        str,
        "JetStream consumer",
        "consumer name (kept for compatibility: the durable name is used, see README)",
    ),
    _opt(
        "audit-durable-name",
        "events-audit-durable",
        _js_name("durable consumer"),
        "JetStream consumer",
        "durable consumer name",
    ),
    _opt(
        "audit-max-deliver",
        3,
        _max_deliver,
        "JetStream consumer",
        "deliveries after which a message whose line cannot be written is terminated "
        "(-1: never); the consumer itself never gives a message up",
        "int",
    ),
    _opt(
        "audit-ack-wait",
        30.0,
        _positive(parse_duration),
        "JetStream consumer",
        "time the server waits for an ack",
        "duration",
    ),
    _opt(
        "audit-pull-max-messages",
        10,
        _positive(parse_int),
        "Pull",
        "messages fetched per pull",
        "int",
    ),
    _opt(
        "audit-pull-timeout",
        5.0,
        _positive(parse_duration),
        "Pull",
        "how long a pull waits for messages",
        "duration",
    ),
    # New in events-audit.
    _opt(
        "audit-pull-max-bytes",
        8 << 20,
        _positive(parse_size),
        "Pull",
        "bytes asked for at a time: the fast engine's pull requests together (up to 4"
        " times that, at most 32MiB, while long lines go straight into a local log file),"
        " the python engine's fetch (keep it well below the server's max_pending, 64MB by"
        " default)",
        "size",
    ),
    _opt(
        "health-addr",
        ":3000",
        str,
        "Service",
        "address of the HTTP health endpoint (host:port, :port for all interfaces; empty disables)",
    ),
    # New in events-audit.
    _opt(
        "log-output", "stderr", str, "Logging", "where log lines go: stderr, stdout or a file path"
    ),
    _opt("config", "", str, "Service", "YAML file with settings (keys are the flag names)"),
    _opt(
        "stats-interval",
        30.0,
        _non_negative(parse_duration),
        "Service",
        "an info line with rates, totals and lag this often (0 disables)",
        "duration",
    ),
    _opt(
        "log-fsync",
        "batch",
        _choice("batch", "never"),
        "Logging",
        "with a file --log-output: fsync each batch before acking it (batch) or not (never)",
    ),
    _opt(
        "log-page-cache",
        16 << 20,
        _page_cache,
        "Logging",
        "how much of the log file's end stays in the page cache; lines further back"
        " are dropped from it once on the disk (-1: the kernel keeps them all)",
        "size",
    ),
    _opt(
        "log-shutdown-timeout",
        5.0,
        _positive(parse_duration),
        "Logging",
        "on shutdown, how long a write the log output does not take is waited for; "
        "then its messages are NAKed and the exit code is 4",
        "duration",
    ),
    _opt(
        "audit-nats-creds",
        "",
        str,
        "Connection security",
        "credentials file (.creds: user JWT and NKey seed)",
    ),
    _opt("audit-nats-nkey", "", str, "Connection security", "file with a user NKey seed"),
    _opt(
        "audit-nats-tls-ca",
        "",
        str,
        "Connection security",
        "CA certificate(s) to verify the server with (PEM)",
    ),
    _opt(
        "audit-nats-tls-cert",
        "",
        str,
        "Connection security",
        "client certificate (PEM), with --audit-nats-tls-key",
    ),
    _opt("audit-nats-tls-key", "", str, "Connection security", "client private key (PEM)"),
    _opt(
        "audit-engine",
        "auto",
        _choice("auto", "fast", "python"),
        "Pull",
        "data path: fast (compiled frames), python (nats-py fetch) or auto",
    ),
    _opt(
        "audit-digest",
        "",
        str,
        "Tamper evidence",
        "keep a digest file at this path beside the log file: a chained SHA-256 of every write",
    ),
    _opt(
        "audit-digest-key",
        "",
        str,
        "Tamper evidence",
        "Ed25519 private key (PEM, events-audit keygen) to sign checkpoints of the digest",
    ),
    _opt(
        "audit-digest-interval",
        60.0,
        _positive(parse_duration),
        "Tamper evidence",
        "sign a digest checkpoint this often (and at every reopen and shutdown)",
        "duration",
    ),
    _opt(
        "audit-ha",
        "none",
        _choice("none", "pinned"),
        "High availability",
        "none: every instance consumes (one alone, or several sharing the durable); "
        "pinned: one active instance writes the stream in order, the others stand by "
        "(priority groups, nats-server >= 2.11, fast engine)",
    ),
    _opt(
        "audit-ha-group",
        "audit",
        _priority_group,
        "High availability",
        "with --audit-ha=pinned: the consumer's priority group",
    ),
    _opt(
        "audit-ha-timeout",
        10.0,
        _ha_timeout,
        "High availability",
        "with --audit-ha=pinned: the consumer's priority_timeout; an active instance that "
        "pulls nothing this long (killed, frozen) loses the pin to a standby",
        "duration",
    ),
)

OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """Every setting, resolved; the defaults live in OPTIONS (one place for
    the service and --help)."""

    audit: str
    audit_nats_addr: str
    audit_nats_ping_interval: float
    audit_topic: str
    log_level: str
    log_format: str
    audit_stream_name: str
    audit_create_stream: bool
    audit_stream_max_age: float
    audit_stream_max_bytes: int
    audit_stream_max_msgs: int
    audit_stream_replicas: int
    audit_consumer_name: str
    audit_durable_name: str
    audit_max_deliver: int
    audit_ack_wait: float
    audit_pull_max_messages: int
    audit_pull_timeout: float
    audit_pull_max_bytes: int
    health_addr: str
    log_output: str
    config: str
    stats_interval: float
    log_fsync: str
    log_page_cache: int
    log_shutdown_timeout: float
    audit_nats_creds: str
    audit_nats_nkey: str
    audit_nats_tls_ca: str
    audit_nats_tls_cert: str
    audit_nats_tls_key: str
    audit_engine: str
    audit_digest: str
    audit_digest_key: str
    audit_digest_interval: float
    audit_ha: str
    audit_ha_group: str
    audit_ha_timeout: float
    # where each explicitly given setting came from, for messages
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def is_set(self, name: str) -> bool:
        """True when the setting came from somewhere other than its default."""
        return name in self.sources


assert [f.name for f in dataclasses.fields(Settings)][:-1] == [o.attr for o in OPTIONS]


def _parse(option: Option, raw: Any, source: str) -> Any:
    if isinstance(raw, str):
        text = raw
    elif isinstance(raw, bool) and option.kind == "bool":
        return raw
    elif isinstance(raw, int) and not isinstance(raw, bool) and option.kind in ("int", "size"):
        text = str(raw)
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool) and option.kind == "duration":
        raise ConfigError(
            f"invalid value {raw!r} for {option.flag} (from {source}): "
            "a duration needs a unit, for example 30s or 24h"
        )
    else:
        shown = option.display(repr(raw)) if option.display else repr(raw)
        raise ConfigError(
            f"invalid value {shown} for {option.flag} (from {source}): "
            f"expected {option.kind}, got {type(raw).__name__}"
        )
    try:
        return option.parse(text)
    except ValueError as exc:
        shown = option.display(text) if option.display else text
        raise ConfigError(
            f"invalid value {shown!r} for {option.flag} (from {source}): {exc}"
        ) from None


def load_yaml(path: str) -> dict[str, Any]:
    """The settings of a YAML file: a mapping of flag names to values."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path!r} is not valid YAML{where}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path!r} must be a mapping of setting names to values")
    for key in document:
        if key not in OPTIONS_BY_NAME or key == "config":
            known = ", ".join(o.name for o in OPTIONS if o.name != "config")
            raise ConfigError(f"unknown key {key!r} in config file {path!r} (known keys: {known})")
    return document


def resolve(cli_values: Mapping[str, str], environ: Mapping[str, str] | None = None) -> Settings:
    """Combine command line > environment > YAML file > defaults."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {option.attr: option.default for option in OPTIONS}
    sources: dict[str, str] = {}

    def take(option: Option, raw: Any, source: str) -> None:
        values[option.attr] = _parse(option, raw, source)
        sources[option.name] = source

    # The config file is itself a setting (flag or env), so find it first.
    config_option = OPTIONS_BY_NAME["config"]
    if "config" in cli_values:
        take(config_option, cli_values["config"], "command line")
    elif environ.get(config_option.env):
        take(config_option, environ[config_option.env], f"env {config_option.env}")
    config_path = values.get("config", "")
    if config_path:
        for key, raw in load_yaml(config_path).items():
            take(OPTIONS_BY_NAME[key], raw, f"config file {config_path}")
    for option in OPTIONS:
        if option.name == "config":
            continue
        raw_env = environ.get(option.env)
        if raw_env:  # like the original: set and non-empty
            take(option, raw_env, f"env {option.env}")
        if option.name in cli_values:
            take(option, cli_values[option.name], "command line")
    return Settings(**values, sources=sources)
