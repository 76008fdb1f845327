# Two commands do all set-up on a fresh machine (see README "Quick start"):
#   make demo   installs into .venv and runs the end-to-end demo
#   make test   installs into .venv (with dev tools) and runs the test suite
#
# torch is pinned through $(CONSTRAINTS) so pip never falls back to PyPI's multi-GB CUDA wheel.
# On a machine with a normal PyTorch: `make test CONSTRAINTS=` (or your own constraints file).

PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
EXTRAS ?= metrics,ssl,train,enhancers,kaldi,asr,onnx,report,dev
PIP_FLAGS ?= --disable-pip-version-check
comma := ,
BIN := $(VENV)/bin
CONSTRAINT_FLAG := $(if $(strip $(CONSTRAINTS)),-c $(CONSTRAINTS),)
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: install demo test lint format benchmarks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install when the dependency declarations change.
$(STAMP): pyproject.toml constraints.txt requirements-nodeps.txt | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -q $(CONSTRAINT_FLAG) -e ".[$(EXTRAS)]"
	$(BIN)/pip install $(PIP_FLAGS) -q --no-deps -r requirements-nodeps.txt
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sqa demo --output demo_output --force

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/score_throughput.py
	$(BIN)/python benchmarks/ecs_throughput.py
	$(BIN)/python benchmarks/predict_throughput.py
	$(BIN)/python benchmarks/finetune_step.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache .ruff_cache
