"""Check what `make wheel` put in dist/: one sdist and one manylinux wheel.

    python packaging/check_dist.py [DIST_DIR]

The wheel must hold both compiled modules, py.typed and the .pyi stubs, and
no generated C, Cython sources or annotation reports; its metadata must carry
the version of ``events_audit.__version__``, the license file, the classifiers
and the ``events-audit`` entry point.  The sdist must hold what rebuilding the
extension needs (.pyx/.pxi, setup.py, pyproject.toml, LICENSE) and no
generated C or compiled objects.  Exits 1 listing every problem.
"""

from __future__ import annotations

import ast
import email.parser
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSIONS = ("_formatting", "_datapath")
STUBS = ("_formatting.pyi", "_datapath.pyi")
FORBIDDEN_SUFFIXES = (".c", ".pyx", ".pxi", ".pxd", ".html")


def source_version() -> str:
    tree = ast.parse((ROOT / "src/events_audit/__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise SystemExit("check_dist: no __version__ in src/events_audit/__init__.py")


def check_wheel(path: Path, version: str, problems: list[str]) -> list[str]:
    tags = path.name[: -len(".whl")].split("-")[-1]
    if "manylinux" not in tags:
        problems.append(f"{path.name}: not a manylinux wheel (platform tag {tags!r})")
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        dist_info = f"events_audit-{version}.dist-info"
        for ext in EXTENSIONS:
            found = [n for n in names if n.startswith(f"events_audit/{ext}.") and n.endswith(".so")]
            if len(found) != 1:
                problems.append(
                    f"{path.name}: compiled module events_audit.{ext}: {found or 'missing'}"
                )
        for name in ("py.typed", *STUBS, "__main__.py", "cli.py"):
            if f"events_audit/{name}" not in names:
                problems.append(f"{path.name}: events_audit/{name} missing")
        for name in names:
            if name.endswith(FORBIDDEN_SUFFIXES):
                problems.append(f"{path.name}: must not ship {name}")
        vendored = [n for n in names if n.startswith("events_audit.libs/")]
        if vendored:  # the extensions only need libc: nothing should be grafted
            problems.append(f"{path.name}: auditwheel vendored libraries {vendored}")
        if f"{dist_info}/licenses/LICENSE" not in names:
            problems.append(f"{path.name}: {dist_info}/licenses/LICENSE missing")
        metadata = email.parser.Parser().parsestr(
            wheel.read(f"{dist_info}/METADATA").decode("utf-8")
        )
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode("utf-8")
    if metadata["Version"] != version:
        problems.append(f"{path.name}: Version {metadata['Version']!r}, source says {version!r}")
    if metadata["License-Expression"] != "Apache-2.0":
        problems.append(f"{path.name}: License-Expression {metadata['License-Expression']!r}")
    if "LICENSE" not in (metadata.get_all("License-File") or []):
        problems.append(f"{path.name}: no License-File: LICENSE")
    classifiers = metadata.get_all("Classifier") or []
    for wanted in ("Typing :: Typed", "Programming Language :: Cython"):
        if wanted not in classifiers:
            problems.append(f"{path.name}: classifier {wanted!r} missing")
    if "events-audit = events_audit.cli:main" not in entry_points:
        problems.append(f"{path.name}: console script events-audit missing")
    extras = metadata.get_all("Provides-Extra") or []
    if "test" not in extras:
        problems.append(f"{path.name}: no 'test' extra")
    return [
        f"wheel  {path.name}  ({path.stat().st_size / 1e6:.2f} MB, {len(names)} files)",
        f"       Version {metadata['Version']}, License-Expression "
        f"{metadata['License-Expression']}, {len(classifiers)} classifiers, extras {extras}",
        "       "
        + ", ".join(
            n.split("/")[-1]
            for n in names
            if n.endswith((".so", ".pyi", "py.typed")) or n.endswith("/LICENSE")
        ),
    ]


def check_sdist(path: Path, version: str, problems: list[str]) -> list[str]:
    prefix = f"events_audit-{version}/"
    with tarfile.open(path) as sdist:
        names = [m.name for m in sdist.getmembers() if m.isfile()]
    relative = {n[len(prefix) :] for n in names if n.startswith(prefix)}
    if len(relative) != len(names):
        problems.append(f"{path.name}: files outside {prefix}")
    needed = [
        "setup.py",
        "pyproject.toml",
        "MANIFEST.in",
        "LICENSE",
        "README.md",
        "ext/_core.pxi",
        "ext/_formatting.pyx",
        "ext/_datapath.pyx",
        "src/events_audit/py.typed",
        *(f"src/events_audit/{stub}" for stub in STUBS),
    ]
    for name in needed:
        if name not in relative:
            problems.append(f"{path.name}: {name} missing")
    for name in relative:
        if name.endswith((".c", ".so", ".html", ".pyc")) or name.startswith("tests/"):
            problems.append(f"{path.name}: must not ship {name}")
    return [f"sdist  {path.name}  ({path.stat().st_size / 1e6:.2f} MB, {len(names)} files)"]


def main(argv: list[str]) -> int:
    dist = Path(argv[1]) if len(argv) > 1 else ROOT / "dist"
    version = source_version()
    problems: list[str] = []
    wheels = sorted(dist.glob("events_audit-*.whl"))
    sdists = sorted(dist.glob("events_audit-*.tar.gz"))
    report: list[str] = []
    if len(wheels) != 1:
        problems.append(f"{dist}: want exactly one wheel, found {[w.name for w in wheels]}")
    else:
        report += check_wheel(wheels[0], version, problems)
    if len(sdists) != 1:
        problems.append(f"{dist}: want exactly one sdist, found {[s.name for s in sdists]}")
    else:
        report += check_sdist(sdists[0], version, problems)
    print("\n".join(report))
    if problems:
        print("check_dist: FAILED", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print("check_dist: ok (both compiled modules, py.typed, .pyi stubs, license; no .c/.pyx)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
