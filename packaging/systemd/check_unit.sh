#!/bin/sh
# make lint: `systemd-analyze verify` of the unit, and its exposure score at
# most 2.0 in `systemd-analyze security` (skipped where systemd is not installed).
#   packaging/systemd/check_unit.sh path/to/venv/bin/events-audit
set -u
unit=packaging/systemd/events-audit.service
command -v systemd-analyze >/dev/null || { echo "  (no systemd-analyze: skipped)"; exit 0; }
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
# verify checks that ExecStart exists: point it at this checkout's console script
sed "s|^ExecStart=/usr/local/bin/events-audit\$|ExecStart=$1|" "$unit" >"$dir/events-audit.service"
out=$(systemd-analyze verify "$dir/events-audit.service" 2>&1)
rc=$?
# verify exits 0 on warnings too (an unknown key, a bad value): any output fails
if [ $rc -ne 0 ] || [ -n "$out" ]; then echo "$out"; exit 1; fi
systemd-analyze security --offline=true --threshold=20 "$unit" >/dev/null || {
    systemd-analyze security --offline=true "$unit" | tail -3; exit 1; }
