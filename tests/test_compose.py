"""docker-compose.yml agrees with the CLI: variables, ports, health checks, the NATS URL.

No Docker engine is needed: the file is read with yaml and checked against
events_audit.config (the settings table the CLI uses).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from events_audit.config import ENV_PREFIX, OPTIONS, resolve
from events_audit.http import parse_listen_address

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
SERVICE = "events-audit"
NATS = "nats"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # ["KEY=value", ...]
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _published(service: dict) -> list[tuple[int | None, int]]:
    """(host port, container port) of each `ports` entry, short or long syntax."""
    result = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            published = entry.get("published")
            result.append((int(published) if published else None, int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        host = int(parts[-2]) if len(parts) >= 2 else None
        result.append((host, int(parts[-1])))
    return result


def _healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def _nats_command(compose: dict) -> list[str]:
    command = compose["services"][NATS]["command"]
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def _flag(command: list[str], *names: str) -> str | None:
    for i, arg in enumerate(command):
        if arg in names and i + 1 < len(command):
            return command[i + 1]
    return None


def test_services(compose: dict) -> None:
    assert {SERVICE, NATS} <= set(compose["services"])


def test_env_vars_are_cli_settings(compose: dict) -> None:
    env = _environment(compose["services"][SERVICE])
    known = {option.env for option in OPTIONS}
    assert env, "the service is configured through AUDIT_LISTNER_* variables"
    for key in env:
        assert key.startswith(ENV_PREFIX), f"{key}: only {ENV_PREFIX}* variables configure it"
        assert key in known, f"{key} is not a setting of the CLI (events_audit.config.OPTIONS)"
    settings = resolve({}, environ=env)  # raises ConfigError on a bad value
    assert settings.audit == "nats"
    assert settings.audit_nats_addr
    assert set(settings.sources) == {
        key[len(ENV_PREFIX) :].lower().replace("_", "-") for key in env
    }


def test_health_port_matches_healthcheck_and_ports(compose: dict) -> None:
    service = compose["services"][SERVICE]
    settings = resolve({}, environ=_environment(service))
    host, port = parse_listen_address(settings.health_addr)
    assert host in (None, "", "0.0.0.0", "::"), (
        "inside a container it must listen on all interfaces"
    )
    urls = re.findall(r"https?://[^\s'\"]+", _healthcheck_text(service))
    assert urls, "the service health check calls the health endpoint"
    for url in urls:
        parts = urlsplit(url)
        assert parts.hostname in ("127.0.0.1", "localhost")
        assert parts.port == port
        assert parts.path == "/health"
    container_ports = {target for _, target in _published(service)}
    container_ports |= {int(str(p).split("/")[0]) for p in service.get("expose", [])}
    assert port in container_ports, f"health port {port} is neither published nor exposed"
    dockerfile = ROOT / service["build"]["context"] / service["build"]["dockerfile"]
    assert re.search(rf"^EXPOSE\s+{port}\b", dockerfile.read_text(), re.M), dockerfile


def test_depends_on_the_nats_healthcheck(compose: dict) -> None:
    service = compose["services"][SERVICE]
    assert service["depends_on"][NATS]["condition"] == "service_healthy"
    nats = compose["services"][NATS]
    monitor_port = int(_flag(_nats_command(compose), "-m", "--http_port"))
    urls = re.findall(r"https?://[^\s'\"]+", _healthcheck_text(nats))
    assert [urlsplit(u)._replace(query="").geturl() for u in urls] == [
        f"http://localhost:{monitor_port}/healthz"
    ]
    assert monitor_port in {target for _, target in _published(nats)}
    assert service.get("restart") in ("always", "unless-stopped", "on-failure")


def test_nats_server_has_jetstream_and_a_volume(compose: dict) -> None:
    nats = compose["services"][NATS]
    command = _nats_command(compose)
    assert "-js" in command or "--jetstream" in command
    store = _flag(command, "-sd", "--store_dir")
    volumes = [str(v) for v in nats.get("volumes", [])]
    named = [v.split(":")[0] for v in volumes if v.split(":")[1] == store]
    assert named and named[0] in (compose.get("volumes") or {}), "the store is a named volume"
    image, _, tag = nats["image"].partition(":")
    assert image == "nats"
    major, minor = (int(x) for x in re.match(r"(\d+)\.(\d+)", tag).groups())
    assert (major, minor) >= (2, 11), "priority groups (--audit-ha=pinned) need 2.11"


def test_nats_url_points_at_the_nats_service(compose: dict) -> None:
    settings = resolve({}, environ=_environment(compose["services"][SERVICE]))
    client_port = int(_flag(_nats_command(compose), "-p", "--port") or 4222)
    for url in settings.audit_nats_addr.split(","):
        parts = urlsplit(url.strip())
        assert parts.scheme in ("nats", "tls")
        assert parts.hostname == NATS
        assert (parts.port or 4222) == client_port


def test_the_pinned_variant(compose: dict) -> None:
    """Two instances with --audit-ha=pinned behind a profile, on one durable of
    their own (the default service's consumer has no priority group)."""
    services = compose["services"]
    pinned = {name: s for name, s in services.items() if "pinned" in s.get("profiles", [])}
    assert len(pinned) == 2
    plain = resolve({}, environ=_environment(services[SERVICE]))
    durables, host_ports = set(), set()
    for name, service in pinned.items():
        settings = resolve({}, environ=_environment(service))
        assert settings.audit_ha == "pinned", name
        assert settings.audit_engine in ("auto", "fast")
        durables.add(settings.audit_durable_name)
        assert settings.audit_stream_name == plain.audit_stream_name
        host_ports |= {host for host, _ in _published(service)}
        assert _healthcheck_text(service) == _healthcheck_text(services[SERVICE])
        assert service["depends_on"][NATS]["condition"] == "service_healthy"
        assert service.get("stop_grace_period"), "SIGTERM: the last batch, then the unpin"
    assert len(durables) == 1 and plain.audit_durable_name not in durables
    assert len(host_ports) == 2 and not host_ports & {h for h, _ in _published(services[SERVICE])}
