# Quick start:  make       set up, then show your progress and the next kata
#               make test  set up, then prove every suite passes on the reference
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
.PHONY: setup progress grade lint test check-stubs check-mutants check clean

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

# Every suite on the reference, then the kata suites again with the code under test in a worker
# process of its own, as `kata grade` runs it: the two ways must agree.
test: setup
	$(BIN)/python -m pytest --reference katas tests
	$(BIN)/python -m pytest --reference --isolate katas

check-stubs: setup
	$(BIN)/python -m harness check-stubs

# CI checks the mutants as grading runs them (isolated): both ways doubles the slowest step of CI.
# Instructors: make check-mutants MUTANT_MODE=both
MUTANT_MODE ?= isolated
check-mutants: setup
	$(BIN)/python -m harness check-mutants --mode $(MUTANT_MODE)

# Everything CI runs.
check: lint test check-stubs check-mutants

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .kata-cache *.egg-info
