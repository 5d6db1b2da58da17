# Two entry points for a fresh machine:  `make demo`  and  `make test`.
# Both do the whole set-up first; the set-up is idempotent (stamp files) and the slow
# mmcv build is cached per machine by pip's wheel cache.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.lakedet-setup
CHROMIUM ?= /usr/bin/chromium

.PHONY: setup demo test bench clean

setup: $(STAMP)

# The browser of the report's tests (only `make test` needs it; tests/test_report.py, driven by Playwright with this binary:
# Playwright downloads no browser). Debian's package, installed once: make skips it when present.
# As root (CI) apt-get runs directly, otherwise through sudo; the package lists are refreshed only
# when the first try cannot find the package.
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "make: $(CHROMIUM) is missing and there is no apt-get: install Chromium and run make CHROMIUM=/path/to/chromium ..." >&2; exit 1; }
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	  || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q && $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) is not on PATH; lakedet's set-up needs Python 3.11: install it, or run make PYTHON=/path/to/python3.11 ..." >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "make: $(PYTHON) says "$$($(PYTHON) -V 2>&1 | head -1)"; lakedet's set-up needs Python 3.11 (make PYTHON=/path/to/python3.11 ...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Every version comes from constraints.txt (the lock of this set-up; pyproject.toml declares ranges).
# Order matters: torch (the CPU wheel on disk) first, then the pinned stack, then mmcv built
# from source against that torch: --no-build-isolation so the build sees torch, setuptools<70
# because mmcv's setup.py needs pkg_resources (torch declares setuptools>=77: pip warns, both
# work), --no-deps so mmengine/mmcv/imagecorruptions do not pull opencv-python next to
# opencv-python-headless.
# benchmarks/requirements.txt (the peers lakedet is measured against) is for the benchmarks and
# tests only: --no-deps, see that file.
# pip keeps the built mmcv wheel in its cache, so a new .venv on this machine skips the build.
$(STAMP): $(VENV)/bin/python requirements.txt constraints.txt benchmarks/requirements.txt pyproject.toml Makefile
	$(PIP) install -q "pip>=24,<26" wheel
	$(PIP) install -q -c constraints.txt torch -r requirements.txt
	$(PIP) install -q -c constraints.txt --no-deps mmengine imagecorruptions
	$(PIP) install -q "setuptools<70"
	MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=2 $(PIP) install -c constraints.txt --no-deps --no-build-isolation mmcv
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PIP) install -q -c constraints.txt --no-deps -r benchmarks/requirements.txt  # the peers benchmark and its test; not lakedet's
	$(PY) -c "import mmcv.ops, mmdet, deeplake, lakedet; print('lakedet set-up OK: mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'deeplake', deeplake.__version__)"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/lakedet demo

test: setup $(CHROMIUM)
	LAKEDET_CHROMIUM=$(CHROMIUM) $(PY) -m pytest

bench: setup
	$(PY) benchmarks/loader.py

clean:
	rm -rf $(VENV) build *.egg-info
