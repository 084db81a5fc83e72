"""Shared fixtures: every formatter test runs against both twins."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

#: Set (to any non-empty value) to test the pure Python twin only.
NO_EXTENSIONS = bool(os.environ.get("EVENTS_AUDIT_NO_EXTENSIONS"))

COMPILED = "events_audit._formatting"
PURE = "events_audit._formatting_py"


@pytest.fixture(scope="session", params=[COMPILED, PURE], ids=["compiled", "python"])
def formatter(request: pytest.FixtureRequest) -> ModuleType:
    """The formatting module under test: the compiled extension, then the pure twin.

    The compiled param is skipped only when EVENTS_AUDIT_NO_EXTENSIONS is set;
    otherwise a missing or broken extension fails the test (run ``make build``).
    """
    name: str = request.param
    if name == COMPILED:
        if NO_EXTENSIONS:
            pytest.skip("EVENTS_AUDIT_NO_EXTENSIONS is set: compiled formatter not tested")
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            pytest.fail(
                f"cannot import the compiled extension {name} ({exc}); "
                "build it with `make build` or set EVENTS_AUDIT_NO_EXTENSIONS=1",
                pytrace=False,
            )
    return importlib.import_module(name)


@pytest.fixture
def nats_server(tmp_path):
    """A fresh single nats-server with JetStream on a free loopback port."""
    from servers import NatsServer

    server = NatsServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture(params=["fast", "python"])
def engine(request: pytest.FixtureRequest) -> str:
    """The data path under test: both engines pass the same integration tests."""
    return request.param
