# The README's two commands. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest venv clean bench

venv: $(STAMP)

# Reinstall only when the pinned requirements (lambda/requirements.txt includes each
# function's lambda/requirements/*.txt) or the project metadata change.
$(STAMP): requirements.txt lambda/requirements.txt $(wildcard lambda/requirements/*.txt) pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/scarab serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy lambda/lens tooling/scarab

# Two workers whatever the machine (the tests' timing margins assume no more load than
# that); PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
pytest: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf .scarab/cache .pytest_cache .mypy_cache .ruff_cache
