# Two entry points: `make demo` (the whole workflow on the synthetic cohort) and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= 2

.PHONY: demo test install lint bench clean

$(BIN)/imsct: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch pinned to the CPU build; GPU clusters: see environment.yml
	$(BIN)/pip install --quiet -e ".[all]"
	@touch $@

install: $(BIN)/imsct

demo: install
	$(BIN)/snakemake --cores $(CORES)

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

# snakemake --lint exits 1 on its one expected lint (rules declare no conda environment, see the
# README); the test accepts that one and nothing else.
lint: install
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile workflow/rules/
	$(BIN)/python -m pytest -q tests/test_workflow.py -k "test_lint_is_clean"

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf results resources .snakemake
