"""What the wheel ships: version, py.typed, stubs that match the compiled modules.

With ``EVENTS_AUDIT_TESTINSTALLED=1`` (``make testinstalled``) the suite runs
against a wheel installed in a fresh venv, and these tests also check that
``events_audit`` really comes from that install, never from the repository's
``src/``, with both compiled modules loaded.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import events_audit

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(events_audit.__file__).resolve().parent
TESTINSTALLED = os.environ.get("EVENTS_AUDIT_TESTINSTALLED") == "1"
NO_EXTENSIONS = bool(os.environ.get("EVENTS_AUDIT_NO_EXTENSIONS"))
COMPILED = ("_formatting", "_datapath")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}


def test_version_everywhere() -> None:
    assert importlib.metadata.version("events-audit") == events_audit.__version__
    out = subprocess.run(
        [sys.executable, "-m", "events_audit", "--version"],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"events-audit {events_audit.__version__}"


@pytest.fixture(scope="session")
def wheel_path(tmp_path_factory) -> Path:
    """The wheel under test.

    With EVENTS_AUDIT_TESTINSTALLED=1: dist/'s wheel, the one installed.
    Otherwise one built now (``pip wheel``, no isolation) from a copy of
    this tree's build inputs.  The copy's setuptools build directory is
    seeded with the in-place extensions (``make build``) and the generated C
    keeps its time, so build_ext skips what is up to date instead of
    compiling for a minute; whatever changed since is built anew.
    """
    if TESTINSTALLED:
        wheels = sorted((ROOT / "dist").glob("events_audit-*.whl"))
        assert len(wheels) == 1, wheels
        return wheels[0]
    tree = tmp_path_factory.mktemp("wheel-src")
    for name in ("setup.py", "pyproject.toml", "MANIFEST.in", "LICENSE", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    shutil.copytree(ROOT / "ext", tree / "ext", ignore=shutil.ignore_patterns("*.html"))
    shutil.copytree(
        ROOT / "src",
        tree / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info"),
    )
    build_lib = tree / "build" / f"lib.{sysconfig.get_platform()}-{sys.implementation.cache_tag}"
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for name in COMPILED:
        built = ROOT / "src" / "events_audit" / f"{name}{suffix}"
        if built.is_file():
            (build_lib / "events_audit").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(built, build_lib / "events_audit" / built.name)  # mtime: now
    out = tree / "wheelhouse"
    env = _clean_env()
    env.pop("EVENTS_AUDIT_DEBUG", None)
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--disable-pip-version-check", "-q", "-w", str(out), str(tree)),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("events_audit-*.whl")
    return wheel


@pytest.mark.parametrize("name", ["py.typed", "_formatting.pyi", "_datapath.pyi"])
def test_typing_files_next_to_the_package(name: str, wheel_path: Path) -> None:
    """The wheel ships them inside the package, next to its modules."""
    with zipfile.ZipFile(wheel_path) as wheel:
        names = set(wheel.namelist())
    assert "events_audit/__init__.py" in names
    assert f"events_audit/{name}" in names, sorted(names)


def _stub(name: str) -> ast.Module:
    return ast.parse((PACKAGE_DIR / f"{name}.pyi").read_text(encoding="utf-8"))


def _stub_all(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    raise AssertionError("stub without __all__")


def _stub_top_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _parameters(function: ast.FunctionDef) -> list[str]:
    args = function.args
    return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]


def _runtime_parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


@pytest.mark.skipif(NO_EXTENSIONS, reason="EVENTS_AUDIT_NO_EXTENSIONS is set")
@pytest.mark.parametrize("name", COMPILED)
def test_stub_declares_the_compiled_module(name: str) -> None:
    module = importlib.import_module(f"events_audit.{name}")
    tree = _stub(name)
    assert _stub_all(tree) == set(module.__all__)
    assert _stub_top_names(tree) - {"__all__"} == set(module.__all__)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            assert _parameters(node) == _runtime_parameters(getattr(module, node.name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            assert ast.literal_eval(node.value) == getattr(module, node.target.id)


@pytest.mark.skipif(NO_EXTENSIONS, reason="EVENTS_AUDIT_NO_EXTENSIONS is set")
def test_datapath_stub_members_and_signatures() -> None:
    from events_audit._datapath import DataPath, ProtocolViolation

    assert issubclass(ProtocolViolation, ValueError)
    tree = _stub("_datapath")
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "DataPath")
    members = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    public = {n for n in dir(DataPath) if not n.startswith("_")}
    assert set(members) - {"__new__"} == public
    for name, node in members.items():
        is_property = any(
            isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list
        )
        if is_property:
            assert inspect.isdatadescriptor(getattr(DataPath, name)), name
        elif name != "__new__":
            assert _parameters(node) == _runtime_parameters(getattr(DataPath, name)), name
    # __new__ is Cython's __cinit__ (no runtime signature): check it by calling it.
    assert _parameters(members["__new__"]) == [
        "cls",
        "sid",
        "layout",
        "events",
        "debug",
        "max_deliver",
    ]
    path = DataPath(sid=7, layout=0, events=True, debug=True, max_deliver=3)
    assert (path.sid, path.debug) == (7, True)


@pytest.mark.skipif(not TESTINSTALLED, reason="only with EVENTS_AUDIT_TESTINSTALLED=1")
def test_imported_from_the_installed_wheel() -> None:
    assert not PACKAGE_DIR.is_relative_to(ROOT / "src"), PACKAGE_DIR
    assert PACKAGE_DIR.is_relative_to(Path(sysconfig.get_paths()["purelib"]).resolve())
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for name in COMPILED:
        module = importlib.import_module(f"events_audit.{name}")
        assert Path(module.__file__).parent.resolve() == PACKAGE_DIR
        assert module.__file__.endswith(suffix), module.__file__
    import events_audit.datapath
    import events_audit.formatting

    assert events_audit.formatting.USING_EXTENSION
    assert events_audit.datapath.USING_EXTENSION
    assert not list(PACKAGE_DIR.glob("*.c")) and not list(PACKAGE_DIR.glob("*.pyx"))


@pytest.mark.skipif(not TESTINSTALLED, reason="only with EVENTS_AUDIT_TESTINSTALLED=1")
def test_subprocess_from_repo_root_imports_the_installed_package() -> None:
    # The service tests run `python -m events_audit` with cwd = the repository root.
    code = (
        "import events_audit, events_audit.formatting as f, events_audit.datapath as d;"
        "print(events_audit.__file__, f.USING_EXTENSION, d.USING_EXTENSION)"
    )
    env = _clean_env()
    env.pop("EVENTS_AUDIT_NO_EXTENSIONS", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    path, formatting_compiled, datapath_compiled = out.stdout.split()
    assert Path(path).resolve().parent == PACKAGE_DIR
    assert (formatting_compiled, datapath_compiled) == ("True", "True")
