"""``events_audit.formatting`` picks the compiled twin unless told otherwise."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from types import ModuleType

import pytest

import events_audit.formatting as formatting

NO_EXTENSIONS = bool(os.environ.get("EVENTS_AUDIT_NO_EXTENSIONS"))

COMPILED = "events_audit._formatting"
PURE = "events_audit._formatting_py"
API = {"format_batch", "LAYOUT_JSON", "LAYOUT_TEXT", "LAYOUT_COLOR"}


def _public_names(module: ModuleType) -> set[str]:
    """Names a module defines for its users (imports and dunders left out)."""
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return set(declared)
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, ModuleType):
            continue
        if type(value).__module__ == "__future__":  # from __future__ import annotations
            continue
        if (callable(value) or isinstance(value, type)) and getattr(
            value, "__module__", module.__name__
        ) != module.__name__:
            continue  # imported helper, e.g. from typing / collections.abc
        names.add(name)
    return names


def _selected_in_subprocess(env_value: str | None) -> str:
    env = dict(os.environ)
    env.pop("EVENTS_AUDIT_NO_EXTENSIONS", None)
    if env_value is not None:
        env["EVENTS_AUDIT_NO_EXTENSIONS"] = env_value
    code = textwrap.dedent(
        """
        import events_audit.formatting as f
        print(f.format_batch.__module__, f.USING_EXTENSION)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.mark.skipif(NO_EXTENSIONS, reason="EVENTS_AUDIT_NO_EXTENSIONS is set")
def test_compiled_twin_selected_by_default() -> None:
    # Fails, rather than skips, when the extension silently did not load.
    assert formatting.format_batch.__module__ == COMPILED, (
        "events_audit.formatting fell back to the pure twin: the compiled "
        "extension did not load (run `make build`)"
    )
    assert formatting.USING_EXTENSION is True
    compiled = importlib.import_module(COMPILED)
    assert formatting.format_batch is compiled.format_batch


@pytest.mark.skipif(not NO_EXTENSIONS, reason="EVENTS_AUDIT_NO_EXTENSIONS is not set")
def test_pure_twin_selected_in_process_when_disabled() -> None:
    assert formatting.format_batch.__module__ == PURE
    assert formatting.USING_EXTENSION is False


@pytest.mark.parametrize("value", ["1", "yes"])
def test_env_var_selects_pure_twin(value: str) -> None:
    assert _selected_in_subprocess(value) == f"{PURE} False"


@pytest.mark.parametrize("name", [COMPILED, PURE])
def test_layout_constants(name: str) -> None:
    if name == COMPILED and NO_EXTENSIONS:
        pytest.skip("EVENTS_AUDIT_NO_EXTENSIONS is set: compiled formatter not tested")
    module = importlib.import_module(name)
    assert (module.LAYOUT_JSON, module.LAYOUT_TEXT, module.LAYOUT_COLOR) == (0, 1, 2)
    assert (formatting.LAYOUT_JSON, formatting.LAYOUT_TEXT, formatting.LAYOUT_COLOR) == (0, 1, 2)


def test_twins_expose_the_same_public_names() -> None:
    if NO_EXTENSIONS:
        pytest.skip("EVENTS_AUDIT_NO_EXTENSIONS is set: compiled formatter not tested")
    compiled = importlib.import_module(COMPILED)
    pure = importlib.import_module(PURE)
    assert API <= _public_names(pure)
    assert _public_names(compiled) == _public_names(pure)
    assert set(formatting.__all__) == API | {"USING_EXTENSION"}
