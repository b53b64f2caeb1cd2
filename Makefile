# Two commands do all set-up on a fresh machine: `make drill` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DRILL := $(BIN)/drill
APT_PACKAGES := postgresql-15 python3-venv pgbackrest nftables haproxy redis-server redis-sentinel openjdk-17-jre-headless maven etcd-server
TEST_APT_PACKAGES := chromium
PYTEST_ARGS ?=

K8S_TESTBED := ./scripts/build-k8s-testbed

.PHONY: drill test test-k8s k8s-testbed deps venv system-deps kafka-jars patroni lint bench stack-up stack-down clean

drill: deps ## install what is missing, start the stack, run the quarterly drill
	$(DRILL) stack up
	@$(DRILL) run quarterly-dr; rc=$$?; \
	  echo "drill run quarterly-dr exited with $$rc (0 passed, 1 failed, 2 usage, 3 inconclusive, 130 interrupted)"; \
	  exit $$rc

test: deps ## unit and integration tests against real servers (and tests/k8s when built)
	@./scripts/install-system-deps $(TEST_APT_PACKAGES)
	@if [ "$${DRILL_TEST_SKIP_SERVERS:-}" != 1 ]; then $(K8S_TESTBED); fi
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

deps: system-deps venv kafka-jars patroni

patroni: venv ## Patroni, pinned, from PyPI into its own virtualenv under /opt/drillrunner
	$(BIN)/python -m drillrunner.services.timescaledb.patroni_install

kafka-jars: venv ## Apache Kafka's jars from Maven Central into a cache outside git
	$(BIN)/python -m drillrunner.services.kafka.local fetch

system-deps:
	@./scripts/install-system-deps $(APT_PACKAGES)

venv: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,feast]'
	touch $@

k8s-testbed: ## build (or reuse) etcd, kube-apiserver, controller-manager, scheduler, kubectl, kwok
	$(K8S_TESTBED)

test-k8s: venv k8s-testbed ## the kind target against a real control plane (kwok nodes, no containers)
	$(BIN)/pytest tests/k8s $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: deps
	$(BIN)/python bench/run_all.py

stack-up: deps
	$(DRILL) stack up

stack-down:
	$(DRILL) stack down

clean:
	-$(DRILL) stack down
	rm -rf .drill $(VENV)
