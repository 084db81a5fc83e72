# events-audit developer tasks (GNU make). Run `make help` for the list.
#
# Everything runs from a local virtualenv (.venv) built with $(PYTHON); a fresh
# clone only needs python3 (>= 3.11) and a C compiler. Stamp files inside
# .venv keep a second `make build` / `make test` quick.

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
PIP_INSTALL := $(PIP) install --disable-pip-version-check

# Files lint looks at.
PY_SOURCES := src tests bench examples setup.py
CY_SOURCES := $(wildcard ext/*.pyx ext/*.pxd ext/*.pxi ext/core/*.pxi ext/core/*.h)

# The in-place extension module (`pip install -e .` puts it next to the sources).
EXT_SUFFIX := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null)
EXT_SO := src/events_audit/_formatting$(EXT_SUFFIX)

DEPS_STAMP := $(VENV)/.deps.stamp
MODE_STAMP := $(VENV)/.build-mode
BUILD_MODE := $(if $(filter 1,$(EVENTS_AUDIT_DEBUG)),debug,release)

BENCH_COLUMNS ?= min,median,mean,ops,rounds

.DEFAULT_GOAL := help
include packaging/packaging.mk
.PHONY: help venv build test run nats-stop bench bench-save bench-check bench-compare bench-e2e bench-sizes lint golden clean distclean FORCE fuzz

help: ## List the targets
	@echo "usage: make <target>   (PYTHON=$(PYTHON), venv in $(VENV))"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-24s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(DEPS_STAMP) ## Create .venv and install runtime, test, dev and build dependencies

$(VPY):
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 required, got " + sys.version'
	$(PYTHON) -m venv $(VENV)

# Dependencies are read from pyproject.toml (runtime + test + dev extras + build
# requirements), so the project itself is not built just to install them.
$(DEPS_STAMP): pyproject.toml | $(VPY)
	$(PIP_INSTALL) --upgrade pip
	$(VPY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
	  o = p["project"]["optional-dependencies"]; \
	  reqs = p["build-system"]["requires"] + p["project"]["dependencies"] + o["test"] + o["dev"]; \
	  print(*(r for r in reqs if not r.startswith(p["project"]["name"])), sep=chr(10))' \
	  > $(VENV)/requirements-dev.txt
	$(PIP_INSTALL) -r $(VENV)/requirements-dev.txt
	touch $@

# Rewritten only when the build mode changes, so switching EVENTS_AUDIT_DEBUG rebuilds.
$(MODE_STAMP): FORCE | $(VPY)
	@echo $(BUILD_MODE) | cmp -s - $@ || echo $(BUILD_MODE) > $@

$(EXT_SO): $(DEPS_STAMP) $(MODE_STAMP) setup.py pyproject.toml MANIFEST.in $(CY_SOURCES)
	EVENTS_AUDIT_DEBUG=$(if $(filter debug,$(BUILD_MODE)),1,) \
	  $(PIP_INSTALL) --no-build-isolation --no-deps -e .
	@test -f $@ || { echo "error: pip install -e . did not produce $@" >&2; exit 1; }
	touch $@

build: $(EXT_SO) ## Compile the extension in place (pip install -e .) and check it loads
	env -u EVENTS_AUDIT_NO_EXTENSIONS $(VPY) -c "import events_audit.formatting as f; \
	  assert f.USING_EXTENSION, 'compiled events_audit._formatting did not load'; \
	  print('events_audit.formatting: compiled extension loaded')"

test: build ## Run the whole suite (both twins, real nats-server processes)
	EVENTS_AUDIT_NO_EXTENSIONS=1 $(VPY) -m pytest -q tests/test_selector.py
	env -u EVENTS_AUDIT_NO_EXTENSIONS $(VPY) -m pytest $(PYTEST_ARGS)

run: build ## Start an embedded JetStream server (var/nats) and the service against it
	env -u EVENTS_AUDIT_NO_EXTENSIONS $(VPY) examples/run_local.py $(RUN_ARGS)

nats-stop: ## Stop the embedded nats-server that `make run` started
	@if [ -f var/nats/nats-server.pid ]; then kill "$$(cat var/nats/nats-server.pid)" && \
	  echo "stopped nats-server $$(cat var/nats/nats-server.pid)"; rm -f var/nats/nats-server.pid; \
	  else echo "no embedded nats-server is running"; fi

bench: build ## Run the benchmarks (pytest-benchmark, compiled vs pure twin)
	env -u EVENTS_AUDIT_NO_EXTENSIONS $(VPY) -m pytest bench/ --benchmark-only \
	  --benchmark-columns=$(BENCH_COLUMNS) $(BENCH_ARGS)

# bench-check/bench-save (bench/gate.py) keep every benchmark as a ratio to a
# calibration workload timed around it (bench/conftest.py), not as an absolute
# time, so the baseline holds on another machine and while this one drifts.
# BENCH_FAIL: how much a ratio may grow. BENCH_SLOWDOWN=1.6 makes every
# benchmarked call 1.6x slower, to see the gate fail. BENCH_ARGS: pytest options.
BENCH_BASELINE := bench/baseline/ratios.json
BENCH_FAIL ?= 40%
BENCH_GATE = env -u EVENTS_AUDIT_NO_EXTENSIONS BENCH_SLOWDOWN=$(BENCH_SLOWDOWN) \
  $(VPY) bench/gate.py

bench-save: build ## Record the baseline ratios (bench/baseline/ratios.json) for bench-check
	$(BENCH_GATE) save --baseline $(BENCH_BASELINE) -- $(BENCH_ARGS)

bench-check: build ## Benchmark ratios vs the baseline; fails when one grows > BENCH_FAIL (40%)
	$(BENCH_GATE) check --baseline $(BENCH_BASELINE) --fail $(BENCH_FAIL) -- $(BENCH_ARGS)

# bench-compare needs no baseline: the base commit (BENCH_BASE, default HEAD,
# e.g. BENCH_BASE=origin/main for a branch) is built in a git worktree under
# .benchmarks/ and the working tree's benchmarks run against both builds in
# BENCH_ROUNDS interleaved rounds; it fails when one is BENCH_FAIL slower.
BENCH_BASE ?= HEAD
BENCH_ROUNDS ?= 3
bench-compare: build ## Benchmarks of the working tree vs BENCH_BASE (default HEAD) side by side; fails > BENCH_FAIL
	$(BENCH_GATE) compare --base $(BENCH_BASE) --rounds $(BENCH_ROUNDS) --fail $(BENCH_FAIL) -- $(BENCH_ARGS)

bench-e2e: build ## End-to-end: real nats-server, preloaded stream, both engines and formats
	env -u EVENTS_AUDIT_NO_EXTENSIONS $(VPY) bench/e2e.py $(E2E_ARGS)

SIZES ?= 256,1K,4K,16K,64K,256K,1M
bench-sizes: build ## End-to-end size sweep: 256 B to 1 MiB events, ~100 MB each, both engines and formats
	env -u EVENTS_AUDIT_NO_EXTENSIONS $(VPY) bench/e2e.py --sizes $(SIZES) --mb 100 --rounds 1 $(E2E_ARGS)

lint: venv ## ruff check + ruff format --check (Python), cython-lint (ext/), the systemd unit
	@export PATH="$(abspath $(VENV))/bin:$$PATH"; rc=0; \
	echo "+ ruff check $(PY_SOURCES)"; ruff check $(PY_SOURCES) || rc=1; \
	echo "+ ruff format --check $(PY_SOURCES)"; ruff format --check $(PY_SOURCES) || rc=1; \
	echo "+ cython-lint ext/"; cython-lint ext/ || rc=1; \
	echo "+ systemd-analyze verify/security packaging/systemd/events-audit.service"; \
	packaging/systemd/check_unit.sh "$(abspath $(VENV))/bin/events-audit" || rc=1; \
	exit $$rc

golden: ## Regenerate tests/golden vectors with Go's logrus (needs Go 1.23)
	@echo "make golden: needs Go 1.23.x (Debian golang-1.23-go, or GO=path/to/go1.23/bin/go)"
	@echo "             and the Debian logrus / nats.go Go sources; see tests/golden/regen.sh"
	bash tests/golden/regen.sh

clean: ## Remove build artefacts (.c/.so/.html) and caches; keeps .venv
	rm -rf build dist *.egg-info src/*.egg-info
	rm -f ext/*.c ext/*.html ext/*.so
	find src -type f \( -name '*.so' -o -name '*.c' -o -name '*.html' \) -delete
	rm -rf .pytest_cache .hypothesis .benchmarks .ruff_cache
	find . \( -path ./$(VENV) -o -path ./.tox -o -path ./.git \) -prune -o \
	  -type d -name __pycache__ -prune -exec rm -rf {} +
	rm -f $(MODE_STAMP)

distclean: clean ## clean + remove .venv and .tox
	rm -rf $(VENV) .tox

FORCE:

FUZZ_RUNS ?= 1000000

fuzz: build ## Fuzz the compiled formatter and data path (FUZZ_RUNS, default 1000000)
	$(VPY) tests/fuzz_targets.py --runs $(FUZZ_RUNS)
