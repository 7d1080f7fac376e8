# authctl — the commands README.md documents. `make ci` is what .ci/run runs.
CARGO ?= cargo
CARGO_BIN ?= $(or $(CARGO_HOME),$(HOME)/.cargo)/bin

.PHONY: install test lint ci bench bench-quick fmt

## Build, install (into ~/.cargo/bin) and start the agent, then show its status.
install:
	$(CARGO) install --locked --path agent
	$(CARGO) install --locked --path cli
	$(CARGO_BIN)/authctl agent start
	$(CARGO_BIN)/authctl status

tests/idp/node_modules/.package-lock.json: tests/idp/package-lock.json
	cd tests/idp && npm ci --no-audit --no-fund

## Every test: unit, end to end (file store), and the real Secret Service keyring.
test: tests/idp/node_modules/.package-lock.json
	$(CARGO) build --locked --workspace --all-targets
	$(CARGO) test --locked --workspace
	dbus-run-session -- tests/keyring/with-keyring \
		$(CARGO) test --locked -p authctl-tests --test e2e -- --ignored keyring

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

ci: lint test

## Benchmarks side by side with oidc-agent (bench/README.md); installs hyperfine and oidc-agent-cli.
bench:
	bench/run

bench-quick:
	bench/run --quick
