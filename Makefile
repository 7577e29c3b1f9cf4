# p4-fatflow — run `make help` for the targets.
# The two commands of the quick start are `make demo` and `make test`; both set up
# what they need (a .venv with the project and its test/dev extras) on first use.

SHELL        := /bin/bash
PYTHON       ?= python3
VENV         ?= .venv
VENV_SHELL   ?= .venv-shell
BUILD        ?= build
PY           := $(VENV)/bin/python
P4_MAIN      := p4src/fatflow_v1model.p4
P4_SOURCES   := $(shell find p4src -name '*.p4' 2>/dev/null)
STAMP        := $(VENV)/.installed
PYTEST_ARGS  ?=
GRPC_ADDR    ?= 127.0.0.1:9559
DEVICE_ID    ?= 1
P4_CONFIG    ?= $(BUILD)/fatflow.p4

# A venv whose interpreter is gone (deleted, or built for a Python that was removed) is
# rebuilt even if its stamp is newer than pyproject.toml.
ifeq ($(shell test -x $(PY) && $(PY) -c 'import softswitch, p4fatflow' >/dev/null 2>&1 && echo ok),)
  $(shell rm -f $(STAMP))
endif

.DEFAULT_GOAL := help
.PHONY: help venv test test-unit test-ptf demo p4 lint typecheck bench shell clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml scripts/bootstrap.sh
	@PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/bootstrap.sh
	@touch $@

venv: $(STAMP) ## Create/update .venv with the project, test and dev extras

test: $(STAMP) ## Run the whole suite: pytest, then the PTF suite (root only)
	@$(PY) -m pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-ptf

test-unit: $(STAMP) ## Only the fast unit tests (no processes started)
	@$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

test-ptf: $(STAMP) ## The PTF suite over veth pairs (root; TARGET=bmv2 for simple_switch_grpc, PTF_TESTS=<modules>)
	@$(if $(TARGET),FATFLOW_PTF_TARGET=$(TARGET) )bash ptf_tests/run.sh "$(PY)" $(PTF_TESTS)

demo: $(STAMP) ## The whole system in one command (lab, switch, fatflowd, classifier, traffic); TARGET=bmv2
	@if [ "$(TARGET)" = bmv2 ] && [ ! -f $(BUILD)/fatflow.json ] && command -v p4c >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory p4; fi
	@$(PY) -m examples.demo $(if $(TARGET),--target $(TARGET))

p4: $(STAMP) ## Compile p4src: p4c when on PATH (BMv2 JSON), else softswitch (checks + P4Info)
	@mkdir -p $(BUILD)
	@if command -v p4c >/dev/null 2>&1; then \
	  echo "p4c: $(P4_MAIN) -> $(BUILD)/fatflow.json, $(BUILD)/fatflow.p4info.txtpb"; \
	  p4c --target bmv2 --arch v1model -o $(BUILD) --p4runtime-files $(BUILD)/fatflow.p4info.txtpb $(P4_MAIN); \
	  mv -f $(BUILD)/fatflow_v1model.json $(BUILD)/fatflow.json; \
	fi
	@echo "softswitch: $(P4_MAIN) -> $(BUILD)/fatflow.p4 (device config), $(BUILD)/fatflow.p4info.txtpb"
	@$(VENV)/bin/softswitch compile $(P4_MAIN) -o $(BUILD)/fatflow.p4 \
	  $$(command -v p4c >/dev/null 2>&1 && echo "--p4runtime-files $(BUILD)/softswitch.p4info.txtpb" \
	     || echo "--p4runtime-files $(BUILD)/fatflow.p4info.txtpb")

lint: $(STAMP) ## ruff and mypy --strict
	@$(VENV)/bin/ruff check softswitch controller tests examples bench
	@$(VENV)/bin/mypy

bench: $(STAMP) ## Benchmarks: pipeline, controller, end to end (the others: see docs/benchmarks.md)
	@$(MAKE) --no-print-directory $(BUILD)/p4rt_load || echo "bench: build/p4rt_load not built: bench_p4rt.py will skip its compiled-client phases" >&2
	@$(PY) bench/bench_pipeline.py
	@$(PY) bench/bench_controller.py
	@$(PY) bench/bench_e2e.py --half
	@echo "more: bench/bench_p4rt.py, bench/bench_api.py, bench/bench_veth.py (root), bench/bench_fuzz.py; docs/benchmarks.md"

shell: $(STAMP) ## p4runtime-shell (own venv) on GRPC_ADDR (default 127.0.0.1:9559), device DEVICE_ID (1)
	@test -x $(VENV_SHELL)/bin/python || ($(PYTHON) -m venv $(VENV_SHELL) && $(VENV_SHELL)/bin/pip install -q p4runtime-shell)
	@test -f $(BUILD)/fatflow.p4info.txtpb || $(MAKE) --no-print-directory p4
	@echo "p4runtime-shell -> $(GRPC_ADDR) (device $(DEVICE_ID)), pipeline $(P4_CONFIG); start a switch first, e.g."
	@echo "  $(VENV)/bin/softswitch --device-id $(DEVICE_ID) --grpc-server-addr $(GRPC_ADDR) --cpu-port 255 --no-p4"
	@$(VENV_SHELL)/bin/python -m p4runtime_sh --grpc-addr $(GRPC_ADDR) --device-id $(DEVICE_ID) \
	  --election-id 0,1 --config $(BUILD)/fatflow.p4info.txtpb,$(P4_CONFIG)

.PHONY: proto
proto: $(STAMP) ## Regenerate the API's Python code from controller/p4fatflow/api/fatflow.proto (into api/_gen)
	@$(PY) -m p4fatflow.api.gen

clean: ## Remove build outputs (not the venvs)
	rm -rf $(BUILD) .pytest_cache .mypy_cache .ruff_cache

# ---- labs (docs/labs.md): a network-namespace lab generated from a fatflowd configuration
CONFIG       ?= examples/lab.yaml
LAB_TARGET    = $(or $(TARGET),softswitch)
LAB_DIR      ?= $(BUILD)/lab
LAB_TOOLS    := ip:iproute2 ethtool:ethtool ping:iputils-ping iperf3:iperf3 dig:dnsutils curl:curl
.PHONY: lab lab-down

lab: $(STAMP) ## Lab from CONFIG (examples/lab.yaml) on TARGET (softswitch|bmv2) in the background
	@missing=""; for t in $(LAB_TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "lab: apt-get install$$missing"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else echo "lab: missing packages:$$missing"; fi; fi
	@if [ "$(LAB_TARGET)" = bmv2 ]; then test -f $(BUILD)/fatflow.json || $(MAKE) --no-print-directory p4; \
	 else test -f $(BUILD)/fatflow.p4 -a -f $(BUILD)/fatflow.p4info.txtpb || $(MAKE) --no-print-directory p4; fi
	@$(PY) -m topo up $(CONFIG) --target $(LAB_TARGET) --run-dir $(LAB_DIR)

lab-down: $(STAMP) ## Remove the lab (its processes, namespaces, veths), also after a crash
	@$(PY) -m topo down --run-dir $(LAB_DIR)

# The compiled P4Runtime load client of bench/bench_p4rt.py (Debian's gRPC C++ library).
$(BUILD)/p4rt_load: bench/p4rt_load.cc
	@if ! pkg-config --exists grpc++ 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then echo "bench: apt-get install libgrpc++-dev pkg-config g++"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libgrpc++-dev pkg-config g++ >/dev/null || exit 1; \
	  else echo "bench: p4rt_load needs Debian's libgrpc++-dev and pkg-config (apt-get install, as root)" >&2; exit 1; fi; fi
	@mkdir -p $(BUILD)
	g++ -O2 -std=c++17 -o $@ $< $$(pkg-config --cflags --libs grpc++)
