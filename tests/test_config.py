"""Configuration: flags, env vars and YAML like the original, and clear errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events_audit import cli, config
from events_audit.config import (
    OPTIONS,
    ConfigError,
    format_duration,
    parse_duration,
    parse_size,
    resolve,
)

ROOT = Path(__file__).resolve().parent.parent

ORIGINAL_DEFAULTS = {
    "log-level": ("AUDIT_LISTNER_LOG_LEVEL", "debug"),
    "log-format": ("AUDIT_LISTNER_LOG_FORMAT", "text"),
    "health-addr": ("AUDIT_LISTNER_HEALTH_ADDR", ":3000"),
    "audit": ("AUDIT_LISTNER_AUDIT", "nope"),
    "audit-topic": ("AUDIT_LISTNER_AUDIT_TOPIC", "accountats"),
    "audit-nats-addr": ("AUDIT_LISTNER_AUDIT_NATS_ADDR", ""),
    "audit-stream-name": ("AUDIT_LISTNER_AUDIT_STREAM_NAME", "EVENTS"),
    "audit-consumer-name": ("AUDIT_LISTNER_AUDIT_CONSUMER_NAME", "events-audit-consumer"),
    "audit-durable-name": ("AUDIT_LISTNER_AUDIT_DURABLE_NAME", "events-audit-durable"),
    "audit-create-stream": ("AUDIT_LISTNER_AUDIT_CREATE_STREAM", True),
    "audit-max-deliver": ("AUDIT_LISTNER_AUDIT_MAX_DELIVER", 3),
    "audit-ack-wait": ("AUDIT_LISTNER_AUDIT_ACK_WAIT", 30.0),
    "audit-pull-max-messages": ("AUDIT_LISTNER_AUDIT_PULL_MAX_MESSAGES", 10),
    "audit-pull-timeout": ("AUDIT_LISTNER_AUDIT_PULL_TIMEOUT", 5.0),
    "audit-stream-max-age": ("AUDIT_LISTNER_AUDIT_STREAM_MAX_AGE", 86400.0),
    "audit-stream-max-bytes": ("AUDIT_LISTNER_AUDIT_STREAM_MAX_BYTES", 1073741824),
    "audit-stream-max-msgs": ("AUDIT_LISTNER_AUDIT_STREAM_MAX_MSGS", 1000000),
    "audit-stream-replicas": ("AUDIT_LISTNER_AUDIT_STREAM_REPLICAS", 1),
}


def test_every_original_flag_with_its_env_var_and_default() -> None:
    options = {option.name: option for option in OPTIONS}
    defaults = resolve({}, environ={})
    for name, (env, default) in ORIGINAL_DEFAULTS.items():
        assert options[name].env == env
        assert getattr(defaults, name.replace("-", "_")) == default, name
    assert format_duration(defaults.audit_stream_max_age) == "24h0m0s"


def test_flag_forms() -> None:
    parsed = cli.parse_args(
        [
            "--audit",
            "nats",
            "--log-format=json",
            "-log-level",
            "info",
            "--audit-create-stream",
            "--audit-pull-timeout=90s",
        ]
    )
    settings = resolve(parsed, environ={})
    assert (settings.audit, settings.log_format, settings.log_level) == ("nats", "json", "info")
    assert settings.audit_create_stream is True and settings.audit_pull_timeout == 90.0
    assert resolve(cli.parse_args(["--audit-create-stream=false"]), {}).audit_create_stream is False


def test_precedence_cli_over_env_over_yaml_over_defaults(tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "log-format: json\nlog-level: error\naudit-max-deliver: 7\naudit-stream-replicas: 3\n"
    )
    env = {
        "AUDIT_LISTNER_CONFIG": str(config),
        "AUDIT_LISTNER_LOG_LEVEL": "warn",
        "AUDIT_LISTNER_AUDIT_MAX_DELIVER": "8",
        "AUDIT_LISTNER_AUDIT_TOPIC": "",
    }
    settings = resolve(cli.parse_args(["--audit-max-deliver=9"]), environ=env)
    assert settings.log_format == "json"  # YAML over default
    assert settings.log_level == "warning"  # env over YAML
    assert settings.audit_max_deliver == 9  # command line over env
    assert settings.audit_stream_replicas == 3
    assert settings.audit_topic == "accountats"  # an empty env var counts as unset
    assert settings.sources["audit-max-deliver"] == "command line"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("300ms", 0.3),
        ("24h0m0s", 86400),
        ("0", 0),
        ("2h45m30.5s", 9930.5),
        ("1us", 1e-6),
        ("1µs", 1e-6),
    ],
)
def test_go_durations(text, seconds) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["7y", "1D", "1W", "d", "1dd", "30", "1x", "", "s", "-5s", "-1d", "1h-5m", "1..5s", "+"],
)
def test_bad_durations(text) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


DAY = 86400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 7 * DAY),
        ("2w", 14 * DAY),
        ("1.5d", 1.5 * DAY),
        ("1w2d3h", 9 * DAY + 3 * 3600),
        ("3h2d1w", 9 * DAY + 3 * 3600),  # any order, as Go takes its units
        ("1d1d", 2 * DAY),  # repeats add up
        (".5w", 3.5 * DAY),
        ("1w0.5d12h30m15s", 8 * DAY + 30 * 60 + 15),
        ("+1d", DAY),
        ("106751d23h47m16.854775807s", 9223372036.854775807),  # Go's longest
    ],
)
def test_days_and_weeks(text, seconds) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-15)


def test_days_and_weeks_are_shown_the_go_way() -> None:
    assert format_duration(parse_duration("7d")) == "168h0m0s"
    assert format_duration(parse_duration("1w2d3h")) == "219h0m0s"
    settings = resolve({"audit-stream-max-age": "2w", "audit-ack-wait": "1d"}, environ={})
    assert settings.audit_stream_max_age == 14 * DAY and settings.audit_ack_wait == DAY


NS, US, MS, S, M, H = 1, 1_000, 1_000_000, 10**9, 60 * 10**9, 3600 * 10**9
MAX_NS = (1 << 63) - 1

# Go's own table (src/time/time_test.go, parseDurationTests), every entry
# but the negative ones: a negative duration is refused here (as before).
GO_PARSE_DURATION_TESTS = [
    ("0", 0),
    ("5s", 5 * S),
    ("30s", 30 * S),
    ("1478s", 1478 * S),
    ("+5s", 5 * S),
    ("-0", 0),
    ("+0", 0),
    ("5.0s", 5 * S),
    ("5.6s", 5 * S + 600 * MS),
    ("5.s", 5 * S),
    (".5s", 500 * MS),
    ("1.0s", 1 * S),
    ("1.00s", 1 * S),
    ("1.004s", 1 * S + 4 * MS),
    ("1.0040s", 1 * S + 4 * MS),
    ("100.00100s", 100 * S + 1 * MS),
    ("10ns", 10 * NS),
    ("11us", 11 * US),
    ("12µs", 12 * US),  # U+00B5
    ("12μs", 12 * US),  # U+03BC
    ("13ms", 13 * MS),
    ("14s", 14 * S),
    ("15m", 15 * M),
    ("16h", 16 * H),
    ("3h30m", 3 * H + 30 * M),
    ("10.5s4m", 4 * M + 10 * S + 500 * MS),
    ("1h2m3s4ms5us6ns", 1 * H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS),
    ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
    ("52763797000ns", 52763797000 * NS),
    ("0.3333333333333333333h", 20 * M),
    ("9007199254740993ns", (1 << 53) + 1),
    ("9223372036854775807ns", MAX_NS),
    ("9223372036854775.807us", MAX_NS),
    ("9223372036s854ms775us807ns", MAX_NS),
    ("0.100000000000000000000h", 6 * M),
    ("0.830103483285477580700h", 49 * M + 48 * S + 372539827 * NS),
]


@pytest.mark.parametrize(("text", "ns"), GO_PARSE_DURATION_TESTS)
def test_go_own_durations(text, ns) -> None:
    # within a nanosecond: Go drops what is left of one, parse_duration keeps it
    assert parse_duration(text) == pytest.approx(ns / 1e9, rel=1e-15, abs=1e-9)


# Go's parseDurationErrorTests but "1d" (a day here) and the negative one
@pytest.mark.parametrize(
    "text",
    [
        "",
        "3",
        "-",
        "s",
        ".",
        "-.",
        ".s",
        "+.s",
        "\x85\x85",
        "\xffff",
        "hello \xffff world",
        "\ufffd",
        "\ufffd hello \ufffd world",
        "9223372036854775810ns",
        "9223372036854775808ns",
        "9223372036854776us",
        "3000000h",
        "9223372036854775.808us",
        "9223372036854ms775us808ns",
        "106752d",  # and the same with the new units
        "15251w",
    ],
)
def test_go_refusals_still_refused(text) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


_UNITS_BEFORE = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_duration_before(text: str) -> float:
    """parse_duration as it was before d and w (the parts that compute a value)."""
    s = text.strip()
    if s in ("0", "+0", "-0"):
        return 0.0
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    total_ns = 0.0
    pos = 0
    while pos < len(s):
        match = re.compile(r"([0-9]*(?:\.[0-9]*)?)([a-zµμ]*)").match(s, pos)
        number, unit = match.group(1), match.group(2)
        assert number and number != "." and unit in _UNITS_BEFORE, text
        total_ns += float(number) * _UNITS_BEFORE[unit]
        pos = match.end()
    assert sign > 0 or not total_ns
    return total_ns / 1e9


_GO_NUMBER = st.one_of(
    st.integers(0, 10**5).map(str),
    st.tuples(st.integers(0, 10**4), st.text("0123456789", max_size=12)).map(
        "{0[0]}.{0[1]}".format
    ),
    st.text("0123456789", min_size=1, max_size=12).map(".{}".format),
)
GO_DURATIONS = st.one_of(
    st.sampled_from(["0", "+0", "-0"]),
    st.tuples(
        st.sampled_from(["", "+"]),
        st.lists(
            st.tuples(_GO_NUMBER, st.sampled_from(sorted(_UNITS_BEFORE))).map("".join),
            min_size=1,
            max_size=6,
        ),
    ).map(lambda t: t[0] + "".join(t[1])),
)


@settings(max_examples=400, deadline=None)
@given(GO_DURATIONS)
def test_every_go_duration_parses_as_before(text) -> None:
    assert parse_duration(text) == parse_duration_before(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1073741824", 1073741824),
        ("10GB", 10 << 30),
        ("512MiB", 512 << 20),
        ("1k", 1024),
        ("2 TB", 2 << 40),
        ("7b", 7),
    ],
)
def test_byte_sizes(text, size) -> None:
    assert parse_size(text) == size


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {"PATH": "/usr/bin:/bin", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "events_audit", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=environ,
    )


BAD_CONFIGS = [
    (["--log-level=loud"], {}, ["--log-level", "'loud'", "command line"]),
    (["--log-format=xml"], {}, ["--log-format", "'xml'", "command line"]),
    (["--audit-ack-wait=7y"], {}, ["--audit-ack-wait", "'7y'", "unknown unit 'y'", "d or w"]),
    (
        [],
        {"AUDIT_LISTNER_AUDIT_PULL_TIMEOUT": "soon"},
        ["--audit-pull-timeout", "'soon'", "env AUDIT_LISTNER_AUDIT_PULL_TIMEOUT"],
    ),
    (
        [],
        {"AUDIT_LISTNER_AUDIT_MAX_DELIVER": "three"},
        ["--audit-max-deliver", "'three'", "env AUDIT_LISTNER_AUDIT_MAX_DELIVER"],
    ),
    ([], {"AUDIT_LISTNER_AUDIT_CREATE_STREAM": "yes"}, ["--audit-create-stream", "'yes'"]),
    (["--audit-stream-replicas=0"], {}, ["--audit-stream-replicas", "'0'"]),
    (["--audit=kafka"], {}, ["--audit", "'kafka'"]),
    (["--no-such-flag"], {}, ["--no-such-flag"]),
    (["--audit-topic"], {}, ["--audit-topic", "argument"]),
    (["stray"], {}, ["'stray'"]),
    (["--audit=nats"], {}, ["--audit-nats-addr"]),
    (["--log-output=/nonexistent/dir/x.log"], {}, ["/nonexistent/dir/x.log"]),
]


@pytest.mark.parametrize(("args", "env", "expected"), BAD_CONFIGS)
def test_bad_config_exits_2_with_one_clear_line(args, env, expected) -> None:
    result = run_cli(*args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().split("\n")
    assert len(lines) == 1, result.stderr
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("audit-ack-wait: 30\n", ["--audit-ack-wait", "30", "needs a unit"]),
        ("audit-max-deliver: three\n", ["--audit-max-deliver", "'three'", "config file"]),
        ("log-level: [debug]\n", ["--log-level", "got list"]),
        ("audit-create-stream: maybe\n", ["--audit-create-stream", "'maybe'"]),
        ("audit-nats-adr: nats://x\n", ["unknown key 'audit-nats-adr'"]),
        ("- a\n- b\n", ["must be a mapping"]),
        ("log-level: [\n", ["not valid YAML"]),
    ],
)
def test_bad_yaml_exits_2(tmp_path, yaml_text, expected) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    result = run_cli(f"--config={config}")
    assert result.returncode == 2
    assert len(result.stderr.strip().split("\n")) == 1, result.stderr
    for fragment in expected:
        assert fragment in result.stderr


def test_missing_config_file(tmp_path) -> None:
    result = run_cli("--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2 and "cannot read config file" in result.stderr


def test_help_groups_flags_and_names_env_vars() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    out = result.stdout
    for category in ("Audit", "Logging", "JetStream stream", "JetStream consumer", "Pull"):
        assert f"\n   {category}\n" in out
    for option in OPTIONS:
        assert option.flag in out and f"[${option.env}]" in out
    assert "(default: 24h0m0s)" in out


def test_version() -> None:
    from events_audit import __version__

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"events-audit {__version__}"


def test_sample_yaml_config_is_valid() -> None:
    settings = resolve({"config": str(ROOT / "examples" / "config.yaml")}, environ={})
    assert settings.audit == "nats" and settings.log_format == "json"
    assert settings.audit_stream_max_age == 168 * 3600
    assert settings.audit_stream_max_bytes == 10 << 30


def test_env_example_is_valid() -> None:
    env = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    known = {option.env for option in OPTIONS}
    assert set(env) <= known, set(env) - known
    settings = resolve({}, environ=env)
    assert settings.audit == "nats" and settings.audit_durable_name == "events-audit-durable"
    assert {name for name in settings.sources} == {
        option.name for option in OPTIONS if option.env in env
    }


def test_config_error_message_from_yaml_names_the_file(tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("audit-pull-timeout: 5x\n")
    with pytest.raises(ConfigError, match=r"--audit-pull-timeout \(from config file .*c\.yaml\)"):
        resolve({"config": str(config)}, environ={})


# -- what nats-server or nats-py would refuse is refused at start ----------------

# (setting, value, where it is given, what the one line names besides the
# flag and the source); the value is shown as repr() unless given here
SECRET = "s3cr3t-pa55"
REFUSED = [
    ("audit-stream-name", "audit.events", "flag", ["cannot contain '.'"]),
    ("audit-stream-name", "audit events", "env", ["cannot contain a space"]),
    ("audit-stream-name", "x" * 256, "yaml", ["at most 255 bytes"]),
    ("audit-stream-name", "", "flag", ["a stream name is required"]),
    ("audit-durable-name", "events.audit", "flag", ["cannot contain '.'"]),
    ("audit-durable-name", "events audit", "yaml", ["cannot contain a space"]),
    ("audit-durable-name", "a/b", "env", ["cannot contain '/'"]),
    ("audit-topic", "", "flag", ["a subject is required"]),
    ("audit-topic", "", "yaml", ["a subject is required"]),
    ("audit-topic", "a..b", "flag", ["empty tokens"]),
    ("audit-topic", "events.", "env", ["empty tokens"]),
    ("audit-topic", "a.>.b", "flag", ["'>' can only be the last token"]),
    ("audit-topic", "a*", "env", ["'*' can only be a whole token"]),
    ("audit-topic", "a.b>", "yaml", ["'>' can only be a whole token"]),
    ("audit-topic", "events .x", "flag", ["cannot contain a space"]),
    ("audit-nats-addr", f"http://auditor:{SECRET}@127.0.0.1:4222", "flag", ["scheme 'http'"]),
    ("audit-nats-addr", f"https://{SECRET}@nats.example:443", "env", ["scheme 'https'"]),
    ("audit-nats-addr", "nats://:4222", "flag", ["no host"]),
    ("audit-nats-addr", f"nats://auditor:{SECRET}@", "yaml", ["no host"]),
    ("audit-nats-addr", "nats://127.0.0.1:4222,nats://:4223", "flag", ["'nats://:4223': no host"]),
    ("audit-nats-addr", "nats://127.0.0.1:http", "flag", ["the port is not a number"]),
    ("audit-nats-addr", "nats://127.0.0.1:65536", "env", ["the port is not a number"]),
    ("audit-nats-addr", "127.0.0.1:", "flag", ["an empty port"]),
    ("audit-nats-addr", "NATS://127.0.0.1:4222", "flag", ["scheme 'NATS'"]),
    ("audit-nats-addr", ",", "flag", ["no URL"]),
    ("audit-nats-addr", "nats://[::1:4222", "flag", ["IPv6"]),
    ("audit-nats-addr", "nats://a:4222,ws://b:8080", "flag", ["cannot be mixed"]),
    ("audit-stream-max-age", "50ms", "flag", ["at least 100ms"]),
    ("audit-stream-replicas", "6", "env", ["at most 5"]),
    ("audit-stream-max-bytes", "9000000TB", "flag", ["too large"]),
    ("audit-ack-wait", "3000000h", "flag", ["too long"]),
]


def _given(tmp_path: Path, name: str, value: str, where: str):
    """(cli values, env, source text) giving the setting one way."""
    option = config.OPTIONS_BY_NAME[name]
    if where == "flag":
        return {name: value}, {}, "command line"
    if where == "env":
        return {}, {option.env: value}, f"env {option.env}"
    path = tmp_path / "settings.yaml"
    path.write_text(f"{name}: {value!r}\n" if value else f'{name}: ""\n')
    return {"config": str(path)}, {}, f"config file {path}"


def _shown(name: str, value: str) -> str:
    return repr(config.redact_nats_addr(value) if name == "audit-nats-addr" else value)


@pytest.mark.parametrize(("name", "value", "where", "reason"), REFUSED)
def test_refused_at_resolve(tmp_path, name, value, where, reason) -> None:
    values, env, source = _given(tmp_path, name, value, where)
    with pytest.raises(ConfigError) as caught:
        resolve(values, environ=env)
    message = str(caught.value)
    assert "\n" not in message
    expected = f"invalid value {_shown(name, value)} for --{name} (from {source}): "
    assert message.startswith(expected), message
    for fragment in reason:
        assert fragment in message
    assert SECRET not in message


def _as_args(values: dict[str, str]) -> list[str]:
    return [f"--{name}={value}" for name, value in values.items()]


@pytest.mark.parametrize(("name", "value", "where", "reason"), REFUSED)
def test_refused_at_start_exit_2_one_line(tmp_path, name, value, where, reason) -> None:
    values, env, source = _given(tmp_path, name, value, where)
    base = ["--audit=nats", "--health-addr=", "--audit-nats-addr=nats://127.0.0.1:1"]
    if name == "audit-nats-addr":
        base = base[:2]
    result = run_cli(*base, *_as_args(values), env=env)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().split("\n")
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"events-audit: invalid value {_shown(name, value)} for --{name} (from {source}): "
    ), lines[0]
    for fragment in reason:
        assert fragment in lines[0]
    assert SECRET not in result.stderr


def test_websocket_needs_aiohttp(monkeypatch) -> None:
    """nats-py's ws:// and wss:// transport is aiohttp's, which nats-py does not require."""
    monkeypatch.setattr(config, "_websocket_transport_available", lambda: False)
    with pytest.raises(ConfigError, match=r"'ws://h:8080' .*need the aiohttp package"):
        resolve({"audit-nats-addr": "ws://h:8080"}, environ={})
    monkeypatch.setattr(config, "_websocket_transport_available", lambda: True)
    assert resolve({"audit-nats-addr": "ws://h:8080"}, environ={}).audit_nats_addr == "ws://h:8080"


ACCEPTED = [
    ("audit-stream-name", "audit-events_2"),
    ("audit-stream-name", "É" * 127),  # 254 bytes
    ("audit-durable-name", "events-audit_durable-1"),
    ("audit-durable-name", "x" * 255),
    ("audit-topic", "events.>"),
    ("audit-topic", "*.x"),
    ("audit-topic", ">"),
    ("audit-topic", "a.*.b"),
    ("audit-topic", "$SYS.ACCOUNT.>"),
    ("audit-topic", "events-v2.user_action"),
    ("audit-nats-addr", "nats://a:4222,nats://b:4223,tls://c:4224"),
    ("audit-nats-addr", " a:4222 , b ,"),  # spaces and an empty part, as server_urls takes them
    ("audit-nats-addr", "127.0.0.1"),
    ("audit-nats-addr", "tls://auditor:pa55@nats.example:4443"),
    ("audit-nats-addr", "nats://t0ken@127.0.0.1:4222"),
    ("audit-nats-addr", "[::1]:4222"),
    ("audit-nats-addr", "nats://127.0.0.1:65535"),
    ("audit-nats-addr", "ws://127.0.0.1:8080,wss://nats.example"),
    ("audit-stream-max-age", "0"),
    ("audit-stream-max-age", "100ms"),
    ("audit-stream-replicas", "5"),
]


@pytest.mark.parametrize(("name", "value"), ACCEPTED)
def test_valid_edge_cases_accepted(monkeypatch, name, value) -> None:
    monkeypatch.setattr(config, "_websocket_transport_available", lambda: True)
    settings = resolve({name: value}, environ={})
    assert getattr(settings, name.replace("-", "_")) == config.OPTIONS_BY_NAME[name].parse(value)
    assert settings.sources[name] == "command line"


def test_max_bytes_takes_10GB(tmp_path) -> None:
    assert resolve({"audit-stream-max-bytes": "10GB"}, {}).audit_stream_max_bytes == 10 << 30
    env = {"AUDIT_LISTNER_AUDIT_STREAM_MAX_BYTES": "10GB"}
    assert resolve({}, environ=env).audit_stream_max_bytes == 10 << 30
    path = tmp_path / "c.yaml"
    path.write_text("audit-stream-max-bytes: 10GB\n")
    assert resolve({"config": str(path)}, {}).audit_stream_max_bytes == 10 << 30


def test_a_password_in_a_bad_url_is_not_shown_whatever_the_mistake(tmp_path) -> None:
    for url in (
        f"nats://auditor:{SECRET}@127.0.0.1:x",
        f"nats://auditor:ab/{SECRET}@127.0.0.1:4222",  # a '/' in it: urllib sees port 'ab'
        f"nats://auditor:{SECRET}@[::1",
        f"{SECRET}@127.0.0.1:99999",
        f"-x:{SECRET}@h://x",
    ):
        with pytest.raises(ConfigError) as caught:
            resolve({"audit-nats-addr": url}, environ={})
        assert SECRET not in str(caught.value), caught.value
    path = tmp_path / "c.yaml"
    path.write_text(f"audit-nats-addr: [nats://auditor:{SECRET}@127.0.0.1:4222]\n")
    with pytest.raises(ConfigError, match="expected string, got list") as caught:
        resolve({"config": str(path)}, environ={})
    assert SECRET not in str(caught.value), caught.value
