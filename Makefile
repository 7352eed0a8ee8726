# The course's two commands (see README.md):
#   make course   set up .venv and run the course (data: $CXR_DATA_DIR, else data/, downloaded if absent)
#   make test     set up .venv and run the test suite (what CI runs)
#   make lint     ruff: lint and formatting of the package, tests, benchmarks and notebooks (CI runs it too)
# The environment is rebuilt when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: course fast test lint env clean

course: $(VENV)/.installed
	$(BIN)/cxr course

fast: $(VENV)/.installed
	$(BIN)/cxr course --fast

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

clean:
	rm -rf build .pytest_cache
