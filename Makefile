# weit_rl: make install, make test, make expert/templates/train/compare
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
ENV ?= HalfCheetah
ALGO ?= ppo
SIZE ?= small
INIT ?= weit
STEPS ?= 100000
SEED ?= 0
DEVICE ?= auto
PROFILE ?= quick
BANK ?=
EXPERT ?=

.PHONY: install test test-all expert templates train compare bench clean

install: $(BIN)/weit-rl

# torch is pinned to the CPU build that lies on this machine's disk (no CUDA download).
$(BIN)/weit-rl: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test,ray]"
	touch $@

test: install
	$(BIN)/pytest -q --durations=10 tests

expert: install
	$(BIN)/weit-rl expert --env $(ENV) --algo $(ALGO) --device $(DEVICE)

templates: install
	$(BIN)/weit-rl templates --env $(ENV) --algo $(ALGO) $(if $(EXPERT),--expert $(EXPERT))

train: install
	$(BIN)/weit-rl train --env $(ENV) --size $(SIZE) --algo $(ALGO) --init $(INIT) --steps $(STEPS) \
		--seed $(SEED) --device $(DEVICE) $(if $(BANK),--bank $(BANK)) $(if $(EXPERT),--expert $(EXPERT))

compare: install
	$(BIN)/weit-rl compare --env $(ENV) --algo $(ALGO) --profile $(PROFILE) \
		$(if $(BANK),--bank $(BANK)) $(if $(EXPERT),--expert $(EXPERT))

bench: install
	$(BIN)/python bench/bench_init.py

clean:
	rm -rf $(VENV) *.egg-info build .pytest_cache
