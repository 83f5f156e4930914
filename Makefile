# podgrace: the two commands the README promises, and their helpers.
#   make run   start the standalone webhook (no cluster needed)
#   make test  every test: cargo tests, then the Helm chart tests in a Python venv
.PHONY: run test test-rust test-chart deps lint bench load prometheus-rules

VENV ?= .venv
PYTHON ?= python3

# The standalone webhook on https://localhost:8443 (self-signed CA in certs/standalone-ca.pem),
# namespace policies from examples/policies/, cluster default from examples/cluster-policy.yaml.
run:
	cargo run -- serve --standalone --listen 127.0.0.1:8443 --ca-out certs/standalone-ca.pem \
	  --policy-dir examples/policies --cluster-policy examples/cluster-policy.yaml --log-format text \
	  --log info,podgrace=debug

# Tools the tests call: /bin/sh and curl run the generated preStop scripts; iproute2 makes the
# network namespaces of the adaptive drain's tests (tests/adaptive_drain.rs, as root); strace
# counts the writes of `serve`'s stderr lines (tests/papercuts.rs); Debian's prometheus
# package brings promtool (the alert rules' checks and unit tests) and the Prometheus server the
# chart tests start on loopback to scrape podgrace.
deps:
	@command -v curl >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq curl; }
	@{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq prometheus; }
	@command -v ip >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq iproute2; }
	@command -v strace >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq strace; }

test: deps test-rust test-chart

test-rust:
	cargo test --workspace --all-targets

# The Helm chart: rendered with the Helm Go SDK (helm-python-sdk, no helm binary), every manifest
# validated against the Kubernetes 1.36 schemas; some tests run target/debug/podgrace, which
# test-rust builds. The venv is made once; requirements are installed again only when they change.
# tests/realworld: the binary on the real-world corpus (tests/fixtures/realworld), same venv.
test-chart: $(VENV)/.requirements-installed
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/chart tests/realworld

$(VENV)/.requirements-installed: tests/chart/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/chart/requirements.txt
	@cp tests/chart/requirements.txt $@

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench:
	cargo bench --bench mutate

# The plain alert rules file, rendered from the chart's rules (charts/podgrace/templates/_alerts.tpl)
# with the default values; tests/chart/test_monitoring.py fails when it is out of date.
prometheus-rules: $(VENV)/.requirements-installed
	$(VENV)/bin/python tests/chart/monitoring.py > deploy/prometheus/podgrace-rules.yaml.tmp
	mv deploy/prometheus/podgrace-rules.yaml.tmp deploy/prometheus/podgrace-rules.yaml
