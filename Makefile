# Two entry points for a fresh machine:  `make demo`  and  `make test`.
# Both do the whole set-up first; the set-up is idempotent (stamp files) and the slow
# mmcv build is cached per machine by pip's wheel cache.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.lakedet-setup

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Order matters: torch (CPU wheel on disk) and setuptools<70 first, so that mmcv's
# --no-build-isolation build sees both; then the rest; then lakedet itself, editable.
$(STAMP): $(VENV)/bin/python requirements.txt pyproject.toml Makefile
	$(PIP) install -q "pip>=24,<26" "setuptools<70" wheel
	$(PIP) install -q torch==2.13.0 "numpy<2"
	MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=2 $(PIP) install --no-build-isolation mmcv==2.1.0
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PY) -c "import mmcv.ops, mmdet, deeplake, lakedet; print('lakedet set-up OK:', mmcv.__version__, mmdet.__version__, deeplake.__version__)"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/lakedet demo

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/loader.py

clean:
	rm -rf $(VENV) build *.egg-info
