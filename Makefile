# authctl — the commands README.md documents. .ci/run runs `make lint`, `make test` and
# `make bench-quick`.
CARGO ?= cargo
CARGO_BIN ?= $(or $(CARGO_HOME),$(HOME)/.cargo)/bin

PYTHON ?= python3
# The interop tests' Python (pinned packages, never system-wide) and Node clients.
VENV := target/interop/venv
PIP := $(VENV)/bin/pip --quiet --disable-pip-version-check
NODE_INTEROP := tests/interop/node
PY_CLIENT := clients/python

.PHONY: install test test-deps lint ci bench bench-quick fmt interop-deps fuzz-smoke

# On Linux with glibc, the binaries are static-pie, with packed relative relocations where the
# linker can (scripts/build-release says why); STATIC=0 for ordinary dynamic ones. There the
# `authctl` program is then built again for musl where the toolchain has the target
# (scripts/musl-target adds it with rustup; MUSL=0 keeps it on glibc).
HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
RELR_FLAGS = $(shell scripts/relr-ok && echo ' -C link-arg=-Wl,-z,pack-relative-relocs')
ifneq ($(and $(filter %-linux-gnu,$(HOST)),$(filter-out 0,$(or $(STATIC),1))),)
install: INSTALL_FLAGS := --target $(HOST)
install: export RUSTFLAGS += -C target-feature=+crt-static$(RELR_FLAGS)
install: CLI_MUSL := $(filter-out 0,$(or $(MUSL),1))
endif

## Build, install (into ~/.cargo/bin) and start the agent, then show its status.
install:
	$(CARGO) install --locked $(INSTALL_FLAGS) --path agent
	$(CARGO) install --locked $(INSTALL_FLAGS) --path cli
	if [ -n "$(CLI_MUSL)" ] && musl=$$(scripts/musl-target); then \
	  $(CARGO) install --locked --force --target $$musl --no-default-features --path cli --bin authctl; \
	fi
	ln -sf authctl $(CARGO_BIN)/docker-credential-authctl
	$(CARGO_BIN)/authctl agent start
	$(CARGO_BIN)/authctl status

## The programs the tests run (Node.js, D-Bus, gnome-keyring, …): installs the missing Debian
## packages as root or with passwordless sudo, else stops naming the command (tests/deps/ensure).
test-deps:
	tests/deps/ensure

# Order-only: npm must exist first, but a check does not make node_modules out of date.
tests/idp/node_modules/.package-lock.json: tests/idp/package-lock.json | test-deps
	cd tests/idp && npm ci --no-audit --no-fund

$(VENV)/.requirements: tests/interop/requirements.txt | test-deps
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -r $<
	touch $@

# The Python client installed as a user would (`pip install ./clients/python`), again when it changes.
$(VENV)/.authctl: $(VENV)/.requirements $(PY_CLIENT)/pyproject.toml $(wildcard $(PY_CLIENT)/src/authctl/*)
	$(PIP) install ./$(PY_CLIENT)
	touch $@

$(NODE_INTEROP)/node_modules/.package-lock.json: $(NODE_INTEROP)/package-lock.json | test-deps
	cd $(NODE_INTEROP) && npm ci --no-audit --no-fund

## What the interop tests need besides Rust: grpcio & co. and the Python client in a venv under
## target/, grpc-js.
interop-deps: $(VENV)/.authctl $(NODE_INTEROP)/node_modules/.package-lock.json

## Every test: unit, end to end (file store; interop with grpcio and grpc-js), the Python client
## (pytest), and the real Secret Service keyring.
# The keyring step selects the same packages and targets as the step before it, so cargo reuses
# that build. `-p authctl-tests` resolves other features (63 crates rebuilt); even
# `--workspace --test e2e` rebuilds 27, because without the agent's targets (whose zbus links
# proc-macro2/quote) those become host-only crates built without debuginfo. The filter picks the
# one ignored test of the workspace, in tests/tests/e2e.
test: test-deps tests/idp/node_modules/.package-lock.json interop-deps
	$(CARGO) build --locked --workspace --all-targets
	$(CARGO) test --locked --workspace
	$(VENV)/bin/python -m pytest -q $(PY_CLIENT)/tests
	dbus-run-session -- tests/keyring/with-keyring \
		$(CARGO) test --locked --workspace --tests -- --ignored keyring

## Formatting, clippy (pedantic), docs, unused dependencies, licences and sources.
lint:
	vendor/check-h2
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --workspace --no-deps --document-private-items
	scripts/cargo-tool cargo-machete 0.9.2
	$(CARGO) machete
	scripts/cargo-tool cargo-deny 0.20.2
	scripts/deny-check

## Every cargo-fuzz target of fuzz/ for a few seconds (nightly; FUZZ_SECONDS, default 10).
fuzz-smoke:
	scripts/cargo-tool cargo-fuzz 0.13.2
	scripts/fuzz-smoke

ci: lint test

## Benchmarks side by side with oidc-agent (bench/README.md); installs hyperfine and oidc-agent-cli.
bench:
	bench/run

bench-quick:
	bench/run --quick
