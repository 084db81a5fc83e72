"""Check an installed events-audit (run with the venv's python, outside the source tree).

    VENV/bin/python packaging/check_installed.py [--pip-report pip-report.json]

events_audit must come from that venv's site-packages (never from the
repository's src/), both compiled modules must load, py.typed and the .pyi
stubs must be installed, and `events-audit --version` and
`python -m events_audit --version` must print the package's version, also
when run from the repository root.  With the JSON report of the `pip install`
(--report), the packages installed from an sdist are listed and must not
have installed compiled code (they were built without a compiler).
Exits 1 listing every problem.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def from_sdists(report_path: str, problems: list[str]) -> list[str]:
    """Packages pip built from an sdist; each must be pure Python."""
    report = json.loads(Path(report_path).read_text())
    built = []
    for item in report.get("install", []):
        url = item.get("download_info", {}).get("url", "")
        if url.endswith(".whl"):
            continue
        name = item["metadata"]["name"]
        built.append(f"{name} {item['metadata']['version']}")
        compiled = [
            str(f) for f in importlib.metadata.files(name) or [] if f.suffix in (".so", ".pyd")
        ]
        if compiled:
            problems.append(
                f"{name} was built from an sdist and installed compiled code: {compiled}"
            )
    return built


def main(argv: list[str]) -> int:
    problems: list[str] = []
    sdists = (
        from_sdists(argv[argv.index("--pip-report") + 1], problems)
        if "--pip-report" in argv
        else None
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EVENTS_AUDIT_NO_EXTENSIONS")
    }
    os.environ.pop("EVENTS_AUDIT_NO_EXTENSIONS", None)

    import events_audit
    import events_audit.datapath
    import events_audit.formatting

    package_dir = Path(events_audit.__file__).resolve().parent
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    if package_dir.is_relative_to(ROOT / "src"):
        problems.append(f"events_audit imported from the source tree: {package_dir}")
    if not package_dir.is_relative_to(site):
        problems.append(f"events_audit is not in this venv's site-packages ({site}): {package_dir}")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for name in ("_formatting", "_datapath"):
        module = importlib.import_module(f"events_audit.{name}")
        if not str(module.__file__).endswith(suffix):
            problems.append(f"events_audit.{name} is not compiled: {module.__file__}")
    if not events_audit.formatting.USING_EXTENSION:
        problems.append("events_audit.formatting fell back to the pure twin")
    if not events_audit.datapath.USING_EXTENSION:
        problems.append("events_audit.datapath fell back to the pure twin")
    for name in ("py.typed", "_formatting.pyi", "_datapath.pyi"):
        if not (package_dir / name).is_file():
            problems.append(f"{name} not installed next to the package")
    leftovers = [p.name for p in package_dir.iterdir() if p.suffix in (".c", ".pyx", ".pxi")]
    if leftovers:
        problems.append(f"sources installed with the package: {leftovers}")
    version = importlib.metadata.version("events-audit")
    if version != events_audit.__version__:
        problems.append(f"metadata version {version} != __version__ {events_audit.__version__}")

    want = f"events-audit {events_audit.__version__}"
    script = shutil.which("events-audit", path=str(Path(sys.executable).parent))
    commands = {
        "events-audit --version": [script or "events-audit", "--version"],
        "python -m events_audit --version": [sys.executable, "-m", "events_audit", "--version"],
    }
    if script is None:
        problems.append(f"no events-audit script next to {sys.executable}")
    for cwd in (Path.cwd(), ROOT):
        for label, argv in commands.items():
            out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
            if out.returncode != 0 or out.stdout.strip() != want:
                problems.append(
                    f"{label} (cwd {cwd}): rc {out.returncode}, {out.stdout.strip()!r} "
                    f"{out.stderr.strip()[-300:]!r}"
                )
    probe = subprocess.run(
        [sys.executable, "-c", "import events_audit; print(events_audit.__file__)"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if not Path(probe.stdout.strip()).resolve().is_relative_to(site):
        problems.append(f"from the repository root events_audit is {probe.stdout.strip()!r}")

    print(f"installed events-audit {version} at {package_dir}")
    print(f"compiled: {', '.join(sorted(p.name for p in package_dir.glob('*' + suffix)))}")
    if sdists is not None:
        print(f"installed from sdists (pure Python, no compiler used): {sdists or 'none'}")
    if problems:
        print("check_installed: FAILED", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"check_installed: ok ({want}; console script and python -m, also from the repo root)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
