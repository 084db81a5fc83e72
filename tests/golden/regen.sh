#!/usr/bin/env bash
# Regenerate the golden vectors with the real Go logrus / encoding/json:
#   src/events_audit/_unicode_tables.py  (printtable: Go's strconv.IsPrint)
#   tests/golden/cases.jsonl             (python3 make_cases.py)
#   tests/golden/golden.jsonl            (golden < cases.jsonl)
#   tests/golden/GO_VERSION              (go version the tools were built with)
#
# Needs Go 1.23.x (default /usr/lib/go-1.23/bin/go, override with GO=...) and
# the Debian GOPATH sources of logrus 1.9 and nats.go 1.22.1 (default
# /usr/share/gocode, override with GOLDEN_SYSTEM_GOPATH=...).
# Builds in GOPATH mode in a throw-away directory; writes nothing else.
set -euo pipefail
# regen.sh --build-only DIR: only build the tools into DIR (used by the
# end-to-end comparison test when Go is installed).
build_only=""
if [ "${1:-}" = "--build-only" ]; then
	build_only="${2:?usage: regen.sh --build-only DIR}"
fi

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
GO="${GO:-/usr/lib/go-1.23/bin/go}"
sys_gopath="${GOLDEN_SYSTEM_GOPATH:-/usr/share/gocode}"

die() { echo "regen.sh: $*" >&2; exit 1; }

if ! command -v "$GO" >/dev/null 2>&1; then
	die "Go not found at '$GO' (install golang-1.23-go or set GO=/path/to/go)"
fi
go_version="$("$GO" env GOVERSION 2>/dev/null || true)"
case "$go_version" in
go1.23 | go1.23.*) ;;
*) die "need Go 1.23.x, but '$GO' is '${go_version:-unknown}' (set GO=/path/to/go1.23/bin/go)" ;;
esac
for pkg in github.com/sirupsen/logrus github.com/nats-io/nats.go; do
	[ -d "$sys_gopath/src/$pkg" ] ||
		die "$pkg not found under $sys_gopath/src (apt-get install" \
			"golang-github-sirupsen-logrus-dev golang-github-nats-io-go-nats-dev," \
			"or set GOLDEN_SYSTEM_GOPATH)"
done
grep -q 'Version *= *"1.22.1"' "$sys_gopath/src/github.com/nats-io/nats.go/nats.go" ||
	echo "regen.sh: warning: nats.go under $sys_gopath is not 1.22.1" >&2

work="$(mktemp -d "${TMPDIR:-/tmp}/events-audit-golden.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/eagolden" "$work/bin" "$work/cache"
cp -R "$here/golden" "$here/printtable" "$work/src/eagolden/"

export GO111MODULE=off GOFLAGS= GOPATH="$work:$sys_gopath"
# Reuse the user's build cache when there is one; otherwise a throw-away one.
case "$("$GO" env GOCACHE 2>/dev/null || true)" in
"" | off) export GOCACHE="$work/cache" ;;
esac
(cd "$work/src/eagolden" &&
	"$GO" build -trimpath -o "$work/bin/golden" ./golden &&
	"$GO" build -trimpath -o "$work/bin/printtable" ./printtable) ||
	die "building the Go tools failed"

built_version="$("$work/bin/golden" -version)"
if [ -n "$build_only" ]; then
	mkdir -p "$build_only"
	cp "$work/bin/golden" "$work/bin/printtable" "$build_only/"
	exit 0
fi

tmp_tables="$work/_unicode_tables.py"
"$work/bin/printtable" -cmd "tests/golden/regen.sh" >"$tmp_tables"
mkdir -p "$repo/src/events_audit"
python3 -c 'import ast, sys; ast.parse(open(sys.argv[1], encoding="utf-8").read())' "$tmp_tables" ||
	die "generated _unicode_tables.py does not parse"
mv "$tmp_tables" "$repo/src/events_audit/_unicode_tables.py"

python3 "$here/make_cases.py" "$work/cases.jsonl"
"$work/bin/golden" <"$work/cases.jsonl" >"$work/golden.jsonl"

n_cases="$(grep -c . "$work/cases.jsonl")"
n_golden="$(grep -c . "$work/golden.jsonl")"
[ "$n_cases" = "$n_golden" ] || die "$n_cases cases but $n_golden golden lines"

mv "$work/cases.jsonl" "$here/cases.jsonl"
mv "$work/golden.jsonl" "$here/golden.jsonl"
echo "$built_version" >"$here/GO_VERSION"
echo "regen.sh: $n_cases cases -> golden.jsonl ($(wc -c <"$here/golden.jsonl") bytes), $built_version" >&2
