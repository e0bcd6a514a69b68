# The two commands of the README are `make demo` and `make test`; each sets up .venv first.
# Only Python 3.11 is assumed; everything else comes from PyPI, pinned by constraints.txt.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SHELL_SCRIPTS = $(shell git ls-files '*.sh' 2>/dev/null) .ci/run
DOCKERFILES   = $(shell git ls-files 'Dockerfile*' '*/Dockerfile*' 2>/dev/null)

.PHONY: setup test test-slow demo submission-demo bench lint constraints clean

setup: $(STAMP)

# Rebuilt only when the pins or the project metadata change, so a repeat `make setup` takes seconds.
# torchrec --no-deps: it requires the CUDA fbgemm-gpu (no driver, no load); `sharded` has fbgemm-gpu-cpu and the rest.
$(STAMP): constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v == (3, 11) else "Python 3.11 is required, found %d.%d (set PYTHON=/path/to/python3.11)" % v)'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[frameworks,tasks,dev,sharded]'
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -c constraints.txt torchrec
	@touch $@

test: setup
	$(PY) -m pytest

# Long end-to-end runs, kept out of the default suite.
test-slow: setup
	$(PY) -m pytest -m slow

demo: setup
	$(PY) -m image_classification.demo
	$(PY) -m recommendation.demo
	$(PY) -m single_stage_detector.demo
	$(PY) -m object_detection.demo
	$(PY) -m translation.demo

# The runs of an inference submission on the mini sets (ResNet-50 and RetinaNet, every scenario, accuracy, TEST01,
# TEST04), shortened by each folder's user.conf, and the open-division tree built from them: the layout and the
# files of a submission, not a result to submit (loadgen/README.md says what the mini runs cannot stand in for).
SUBMISSION_DEMO := results/submission-demo
submission-demo: setup
	$(PY) -m image_classification.demo --submission
	$(PY) -m object_detection.demo --submission
	rm -rf $(SUBMISSION_DEMO)
	$(PY) -m loadgen.submission --runs resnet50-mini=results/image_classification/submission-runs \
		--runs retinanet-mini=results/object_detection/submission-runs --org SuiteDemo --system cpu-demo \
		--division open --output $(SUBMISSION_DEMO)
	@echo "submission-demo: shortened runs on the mini sets, not valid for submission; the tree is in $(SUBMISSION_DEMO)/open/SuiteDemo"

bench: setup
	$(PY) -m tests.bench

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/shellcheck $(SHELL_SCRIPTS)
	@if [ -n "$(DOCKERFILES)" ]; then $(VENV)/bin/hadolint $(DOCKERFILES); else echo "hadolint: no Dockerfile yet"; fi

# Re-pin after a deliberate upgrade: freeze the working .venv, keeping the header and the image-only pins.
constraints: setup
	{ sed -n '/^#/p' constraints.txt; $(PY) -m pip freeze --exclude-editable; sed -n '/^[^#].*# image-only/p' constraints.txt; } \
		> constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
