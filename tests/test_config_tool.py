"""`events-audit config`: the settings the service resolves, and where each came from."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from events_audit import cli, settings_report
from events_audit.config import OPTIONS, format_duration, resolve

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-pa55"
TOKEN = "t0ken-5ecret"


def run_config(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {"PATH": "/usr/bin:/bin", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "events_audit", "config", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=environ,
    )


def table(stdout: str) -> dict[str, tuple[str, str]]:
    """setting -> (value, source) of the table."""
    lines = stdout.rstrip("\n").split("\n")
    assert re.split(r"\s{2,}", lines[0].strip()) == ["SETTING", "VALUE", "SOURCE"]
    rows = {}
    for line in lines[1:]:
        name, value, source = re.split(r"\s{2,}", line.strip())
        rows[name] = (value, source)
    return rows


def test_sources_of_a_flag_an_env_var_a_yaml_key_and_a_default(tmp_path) -> None:
    config = tmp_path / "audit.yaml"
    config.write_text(
        "audit-stream-name: FROM_YAML\n"
        "audit-durable-name: yaml-durable\n"  # the env var below wins
        "audit-stream-max-bytes: 10GB\n"
    )
    env = {
        "AUDIT_LISTNER_AUDIT_TOPIC": "events.>",
        "AUDIT_LISTNER_AUDIT_DURABLE_NAME": "env-durable",
        "AUDIT_LISTNER_LOG_FORMAT": "",  # set but empty: unset, as for the service
    }
    result = run_config(f"--config={config}", "--audit-ack-wait", "7d", "-log-level=info", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = table(result.stdout)
    assert list(rows) == [option.name for option in OPTIONS]  # one line per setting
    assert rows["audit-ack-wait"] == ("168h0m0s", "command line")
    assert rows["log-level"] == ("info", "command line")
    assert rows["config"] == (str(config), "command line")
    assert rows["audit-topic"] == ("events.>", "env AUDIT_LISTNER_AUDIT_TOPIC")
    assert rows["audit-durable-name"] == ("env-durable", "env AUDIT_LISTNER_AUDIT_DURABLE_NAME")
    assert rows["audit-stream-name"] == ("FROM_YAML", f"config file {config}")
    assert rows["audit-stream-max-bytes"] == ("10737418240 (10GiB)", f"config file {config}")
    assert rows["log-format"] == ("text", "default")
    assert rows["audit-stream-max-age"] == ("24h0m0s", "default")
    assert rows["audit-create-stream"] == ("true", "default")
    assert rows["audit-nats-addr"] == ('""', "default")


def test_the_table_is_aligned() -> None:
    result = run_config("--audit-topic=events.>")
    columns = set()
    for line in result.stdout.rstrip("\n").split("\n"):
        match = re.fullmatch(r"(\S+ {2,})(\S+(?: \S+)*) {2,}(\S.*)", line)
        assert match, line
        columns.add((match.start(2), match.start(3)))
    assert len(columns) == 1, result.stdout


def test_config_file_from_env_names_the_file_for_its_keys(tmp_path) -> None:
    config = tmp_path / "audit.yaml"
    config.write_text("audit-pull-timeout: 1w\n")
    result = run_config("--format=json", env={"AUDIT_LISTNER_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["config"]["source"] == "env AUDIT_LISTNER_CONFIG"
    assert report["audit-pull-timeout"] == {
        "value": "168h0m0s",
        "source": f"config file {config}",
        "env": "AUDIT_LISTNER_AUDIT_PULL_TIMEOUT",
        "seconds": 7 * 86400,
    }


@pytest.mark.parametrize("output", ["table", "json"])
def test_passwords_and_tokens_are_redacted(output) -> None:
    addr = f"nats://auditor:{SECRET}@127.0.0.1:4222,{TOKEN}@10.0.0.2:4223"
    env = {"AUDIT_LISTNER_AUDIT_NATS_ADDR": addr, "AUDIT_LISTNER_AUDIT": "nats"}
    result = run_config(f"--format={output}", env=env)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert TOKEN not in result.stdout + result.stderr
    shown = "nats://auditor:***@127.0.0.1:4222,nats://***@10.0.0.2:4223"
    if output == "json":
        entry = json.loads(result.stdout)["audit-nats-addr"]
        assert entry["value"] == shown
        assert entry["source"] == "env AUDIT_LISTNER_AUDIT_NATS_ADDR"
    else:
        assert table(result.stdout)["audit-nats-addr"] == (
            shown,
            "env AUDIT_LISTNER_AUDIT_NATS_ADDR",
        )


def test_json_is_every_setting_with_its_value_and_source() -> None:
    result = run_config(
        "--format",
        "json",
        "--audit-stream-max-bytes=10GB",
        "--audit-create-stream=false",
        "--audit-stream-max-age=2w",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report) == [option.name for option in OPTIONS]
    assert report["audit-stream-max-bytes"]["value"] == 10 << 30
    assert report["audit-create-stream"]["value"] is False
    assert report["audit-stream-max-age"]["value"] == "336h0m0s"
    assert report["audit-stream-max-age"]["seconds"] == 14 * 86400
    assert report["audit-pull-max-messages"] == {
        "value": 10,
        "source": "default",
        "env": "AUDIT_LISTNER_AUDIT_PULL_MAX_MESSAGES",
    }
    for option in OPTIONS:
        assert report[option.name]["env"] == option.env


def test_every_service_flag_is_accepted() -> None:
    args = []
    for option in OPTIONS:
        if option.kind == "bool":
            args.append(option.flag)  # a bool flag alone is true
        elif option.kind == "duration":
            args += [option.flag, format_duration(option.default)]
        else:
            args.append(f"-{option.name}={option.default}")
    result = run_config("--format=json", *args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {entry["source"] for entry in report.values()} == {"command line"}


def test_resolves_as_the_service_does(monkeypatch, tmp_path, capsys) -> None:
    config = tmp_path / "audit.yaml"
    config.write_text("log-level: warn\naudit-max-deliver: 7\n")
    env = {"AUDIT_LISTNER_AUDIT_MAX_DELIVER": "8", "AUDIT_LISTNER_CONFIG": str(config)}
    argv = ["--audit-pull-timeout=1.5d", "--audit-topic", "*.x"]
    for key in list(os.environ):
        if key.startswith("AUDIT_LISTNER_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = resolve(cli.parse_args(argv), environ=env)
    assert cli.main(["config", "--format=json", *argv]) == 0
    report = json.loads(capsys.readouterr().out)
    for option in OPTIONS:
        value = getattr(settings, option.attr)
        assert report[option.name]["value"] == settings_report.config_value(option, value), (
            option.name
        )
        assert report[option.name]["source"] == settings.sources.get(option.name, "default")
    assert report["log-level"]["value"] == "warning"
    assert report["audit-max-deliver"]["value"] == 8
    assert report["audit-pull-timeout"]["value"] == "36h0m0s"


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["--audit-stream-name=a.b"],
            {},
            "invalid value 'a.b' for --audit-stream-name (from command line): ",
        ),
        (
            [],
            {"AUDIT_LISTNER_AUDIT_TOPIC": "a..b"},
            "invalid value 'a..b' for --audit-topic (from env AUDIT_LISTNER_AUDIT_TOPIC): ",
        ),
        (
            [f"--audit-nats-addr=http://auditor:{SECRET}@127.0.0.1:4222"],
            {},
            "invalid value 'http://auditor:***@127.0.0.1:4222' for --audit-nats-addr "
            "(from command line): ",
        ),
        (["--audit-ack-wait=7y"], {}, "invalid value '7y' for --audit-ack-wait"),
        (["--audit=nats"], {}, "--audit=nats needs --audit-nats-addr"),
        (["--format=xml"], {}, "invalid --format 'xml' (table or json)"),
        (["--format"], {}, "flag needs an argument: --format"),
        (["--no-such-flag"], {}, "flag provided but not defined: --no-such-flag"),
        (["stray"], {}, "unexpected argument 'stray'"),
    ],
)
def test_a_bad_value_is_exit_2_and_one_line(args, env, expected) -> None:
    result = run_config(*args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().split("\n")
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"events-audit config: {expected}"), lines[0]
    assert SECRET not in result.stderr


def test_format_is_the_tools_own_flag() -> None:
    with pytest.raises(cli.UsageError, match="flag provided but not defined: --format"):
        cli.parse_args(["--format=json"])


def test_help() -> None:
    result = run_config("--help")
    assert result.returncode == 0 and "--format table|json" in result.stdout
    service = subprocess.run(
        [sys.executable, "-m", "events_audit", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert "events-audit config [options]" in service.stdout
