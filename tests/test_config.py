"""Configuration: flags, env vars and YAML like the original, and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from events_audit import cli
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


@pytest.mark.parametrize("text", ["7d", "30", "1x", "", "s", "-5s", "1h-5m", "1..5s"])
def test_bad_durations(text) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


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
    (["--audit-ack-wait=7d"], {}, ["--audit-ack-wait", "'7d'", "168h"]),
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
