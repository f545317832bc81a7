# Quick start:  make        set up, then show your progress and the next kata
#               make test   set up, then prove every suite passes on the reference (under 10 minutes)
# Contributors: make quick  lint, the harness's unit tests and one kata folder (under 90 seconds)
#               make check  everything CI runs: attacks, the browser, stubs and mutants too (under 40 minutes)
VENV   ?= .venv
ifeq ($(OS),Windows_NT)  # Windows (make from Git Bash, MSYS2 or Chocolatey): the venv keeps its programs in Scripts/
PYTHON ?= python
BIN    := $(VENV)/Scripts
else
PYTHON ?= python3
BIN    := $(VENV)/bin
endif
# CI pins the CPU build of torch (constraints-ci.txt); elsewhere: make TORCH_CONSTRAINTS= setup
TORCH_CONSTRAINTS ?= -c constraints-ci.txt

.DEFAULT_GOAL := progress
.PHONY: setup progress grade lint quick test attacks browser check-stubs check-mutants check clean

$(VENV)/.installed: pyproject.toml constraints-ci.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH_CONSTRAINTS) -e ".[test,lint]"
	touch $@

setup: $(VENV)/.installed

progress: setup
	$(BIN)/kata

# What CI runs on a fork: reports for Exercism, GitHub Classroom, Gradescope and JUnit in reports/.
grade: setup
	$(BIN)/kata grade --out reports

# Ruff, as configured in pyproject.toml (the style is not enforced: see [tool.ruff] there).
lint: setup
	$(BIN)/ruff check .

# The tiers. Markers (pyproject.toml) sort the harness's tests: `subprocess` and `slow` ones are
# left out of quick, `attack` and `browser` ones out of test (check runs them on their own).
UNIT = not slow and not subprocess and not attack and not browser

# The contributor's loop: lint, the harness's unit tests, one kata folder on the reference.
quick: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q tests -m "$(UNIT)"
	$(BIN)/python -m pytest -q --reference katas/layernorm

# Every kata suite on the reference, in process and then with the code under test in a worker
# process of its own (as `kata grade` runs it): the two ways must agree. Plus the harness's tests
# that are not attacks or browser tests.
test: setup
	$(BIN)/python -m pytest --reference katas tests -m "not attack and not browser"
	$(BIN)/python -m pytest --reference --isolate katas

# Hostile kata files against the grader (root or not: see docs/internals.md).
attacks: setup
	$(BIN)/python -m pytest tests -m attack

# The offline page in a real headless Chromium (.ci/run installs it; skipped, saying why, without one).
browser: setup
	$(BIN)/python -m pytest tests -m browser

check-stubs: setup
	$(BIN)/python -m harness check-stubs

# Every mutant must fail its suite both ways, in process and isolated (as grading runs it): about 8
# minutes on 2 cores. Only one way: make check-mutants MUTANT_MODE=isolated (or in-process).
MUTANT_MODE ?= both
check-mutants: setup
	$(BIN)/python -m harness check-mutants --mode $(MUTANT_MODE)

# Everything CI runs, each step timed (.ci/timed prints the times at the end).
check: setup
	.ci/timed "lint=$(MAKE) lint" "test=$(MAKE) test" "attacks=$(MAKE) attacks" "browser=$(MAKE) browser" \
		"check-stubs=$(MAKE) check-stubs" "check-mutants=$(MAKE) check-mutants"

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .kata-cache *.egg-info
