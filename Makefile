# The course's two commands (see README.md):
#   make course   set up .venv and run the course (data: $CXR_DATA_DIR, else data/, downloaded if absent)
#   make test     set up .venv and run the test suite (what CI runs, there on Python 3.13: PYTHON=python3.13)
#   make lint     ruff: lint and formatting of the package, tests, benchmarks and notebooks (CI runs it too)
#   make test-lowest  the test suite on the lowest Python (3.10) with the lowest versions pyproject.toml
#                 allows for every direct dependency, in build/venv-lowest (CI runs it too), without the
#                 tests marked slow (the chapters executed end to end, the site): make test runs those
#   make site     the course's website in build/site/ from the executed notebooks of build/executed/
#                 (made by make course or make fast; nothing is executed here)
#   make figures  the README's figures (docs/figures/) from the executed chapters of a full make course
# The environment is rebuilt when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
# the lowest Python that requires-python allows: the first python3.10 that runs, on PATH or in pyenv
PYTHON_LOWEST ?= $(shell for p in $$(command -v python3.10) $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.10.*/bin/python3.10 \
	2>/dev/null | sort -rV); do "$$p" -c '' 2>/dev/null && echo "$$p" && break; done)
VENV_LOWEST   ?= build/venv-lowest

.PHONY: course fast test test-lowest lint site figures env clean

course: $(VENV)/.installed
	$(BIN)/cxr course

fast: $(VENV)/.installed
	$(BIN)/cxr course --fast

test: $(VENV)/.installed
	@$(BIN)/python -c 'import platform, sys; print(f"make test: Python {platform.python_version()} ({sys.executable})")'
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# uv (from PyPI, in build/uv) resolves every direct dependency to the floor of its range
# (--resolution lowest-direct); check_versions prints what was resolved.
test-lowest:
	@"$(PYTHON_LOWEST)" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null || { echo "make test-lowest \
	needs Python 3.10 (none found on PATH or in pyenv): pass PYTHON_LOWEST=/path/to/python3.10" >&2; exit 1; }
	rm -rf $(VENV_LOWEST) build/uv
	$(PYTHON_LOWEST) -m venv build/uv
	build/uv/bin/python -m pip install --quiet uv
	build/uv/bin/uv venv --quiet --python $(PYTHON_LOWEST) $(VENV_LOWEST)
	build/uv/bin/uv pip install --quiet --python $(VENV_LOWEST)/bin/python --resolution lowest-direct -e ".[lab,course,test]"
	$(VENV_LOWEST)/bin/python -c 'import platform; print(f"make test-lowest: Python {platform.python_version()}")'
	$(VENV_LOWEST)/bin/python -c 'import cxr_utils; cxr_utils.check_versions()'
	PATH="$(CURDIR)/$(VENV_LOWEST)/bin:$$PATH" $(VENV_LOWEST)/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

site: $(VENV)/.installed
	$(BIN)/python -m cxr_course.site

figures: $(VENV)/.installed
	$(BIN)/python docs/figures.py build

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@# pip refuses a Python outside requires-python (pyproject.toml), naming the range
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[lab,course,test,site]"
	touch $@

clean:
	rm -rf build .pytest_cache
