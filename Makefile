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
HP ?=
HYPERPARAMS ?= $(HP)
PRETRAIN ?= none
REPLACE ?=
RUN_DIR ?=
EVAL_EPISODES ?=
ENGINE ?=
STUDY ?=
OUT ?=
SEEDS ?=
SIZES ?=
ARMS ?=
BANK_OUT ?=
SAMPLES ?=
# $(call given,VAR,TEXT): TEXT only where VAR was set on the command line or in the environment,
# for variables whose default belongs to another target (STEPS is train's 100,000).
given = $(if $(filter command line environment,$(origin $(1))),$(2))

.PHONY: install install-ray test test-fast lint expert templates train compare bench clean

install: $(BIN)/weit-rl

# torch is pinned to the CPU build that lies on this machine's disk (no CUDA download).
# `weit-rl enjoy --video` renders offscreen through EGL: Debian's libegl1 with Mesa's EGL and drivers,
# installed here only where they are missing and we are root (CI runs as root).
$(BIN)/weit-rl: pyproject.toml
	@if ! ldconfig -p | grep -q 'libEGL_mesa.so.0' && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri; fi
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"  # Ray (compare --backend ray) is the optional extra .[ray]: make install-ray
	touch $@

# The optional extra for `weit-rl compare --backend ray` (CI installs it, so that its test runs).
install-ray: install
	$(BIN)/pip install -q -e ".[ray]"

# The full suite (what CI runs), on every core; test-fast leaves out what trains, builds or spawns.
test: install
	$(BIN)/pytest -q -n auto --durations=10 tests

test-fast: install
	$(BIN)/pytest -q -n auto -m "not slow" tests

# Style, format, the import layers of docs/design.md (section 4), unused or missing dependencies, and types
# (mypy over the package, its agents/ and envs/ included: [tool.mypy] in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/deptry .
	$(BIN)/mypy

expert: install
	$(BIN)/weit-rl expert --env $(ENV) --algo $(ALGO) --device $(DEVICE) --pretrain $(PRETRAIN) $(if $(REPLACE),--replace) \
		$(call given,STEPS,--steps $(STEPS))

# BANK_OUT: the new bank's file (default banks/, which refuses a shipped bank unless REPLACE=1);
# STEPS and SAMPLES scale template learning down when given.
templates: install
	$(BIN)/weit-rl templates --env $(ENV) --algo $(ALGO) $(if $(EXPERT),--expert $(EXPERT),$(if $(filter-out none,$(PRETRAIN)),--expert experts/$(ENV)-$(ALGO)-$(PRETRAIN))) \
		$(if $(REPLACE),--replace) $(if $(BANK_OUT),--out $(BANK_OUT)) $(call given,STEPS,--steps $(STEPS)) \
		$(if $(SAMPLES),--samples $(SAMPLES))

train: install
	$(BIN)/weit-rl train --env $(ENV) --size $(SIZE) --algo $(ALGO) --init $(INIT) --steps $(STEPS) \
		--seed $(SEED) --device $(DEVICE) $(if $(BANK),--bank $(BANK)) $(if $(EXPERT),--expert $(EXPERT)) \
		$(if $(HYPERPARAMS),--hyperparams $(HYPERPARAMS)) $(if $(RUN_DIR),--run-dir $(RUN_DIR)) \
		$(if $(EVAL_EPISODES),--eval-episodes $(EVAL_EPISODES)) $(if $(ENGINE),--engine $(ENGINE))

# A sweep records under OUT/STUDY/ (default runs/<profile>/): the shipped reports/ are the
# project's studies (weit-rl study). STEPS, SEEDS, SIZES and ARMS scale it down when given.
compare: install
	$(BIN)/weit-rl compare --env $(ENV) --algo $(ALGO) --profile $(PROFILE) \
		$(if $(BANK),--bank $(BANK)) $(if $(EXPERT),--expert $(EXPERT)) $(if $(STUDY),--study $(STUDY)) \
		$(if $(OUT),--report-dir $(OUT)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(SIZES),--sizes $(SIZES)) \
		$(if $(ARMS),--arms $(ARMS)) $(call given,STEPS,--steps $(STEPS)) \
		$(if $(EVAL_EPISODES),--eval-episodes $(EVAL_EPISODES)) $(if $(ENGINE),--engine $(ENGINE))

bench: install
	$(BIN)/python bench/bench_init.py

clean:
	rm -rf $(VENV) *.egg-info build .pytest_cache
