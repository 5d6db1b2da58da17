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

# Order matters: torch (the CPU wheel on disk) first, then the pinned stack, then mmcv built
# from source against that torch: --no-build-isolation so the build sees torch, setuptools<70
# because mmcv's setup.py needs pkg_resources (torch declares setuptools>=77: pip warns, both
# work), --no-deps so mmengine/mmcv/imagecorruptions do not pull opencv-python next to
# opencv-python-headless.
# pip keeps the built mmcv wheel in its cache, so a new .venv on this machine skips the build.
$(STAMP): $(VENV)/bin/python requirements.txt pyproject.toml Makefile
	$(PIP) install -q "pip>=24,<26" wheel
	$(PIP) install -q torch==2.13.0 -r requirements.txt
	$(PIP) install -q --no-deps mmengine==0.10.7 imagecorruptions==1.1.2
	$(PIP) install -q "setuptools<70"
	MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=2 $(PIP) install --no-deps --no-build-isolation mmcv==2.1.0
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PY) -c "import mmcv.ops, mmdet, deeplake, lakedet; print('lakedet set-up OK: mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'deeplake', deeplake.__version__)"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/lakedet demo

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/loader.py

clean:
	rm -rf $(VENV) build *.egg-info
