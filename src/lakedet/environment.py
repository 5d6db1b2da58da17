"""What lakedet needs around it: the Python version and the ranges of the stack, checked first.

``REQUIRED`` is the one list of the declared ranges (``pyproject.toml``'s ``dependencies`` and
``requires-python`` say the same, checked by ``tests/test_install.py``); the exact versions the
tests ran on are pinned in ``constraints.txt``. ``environment_problems`` says, in words a user
can act on, what is wrong with an environment; ``check_environment`` raises them all at once, or,
where ``LAKEDET_ENVIRONMENT_CHECK=warn`` is set (an environment the user vouches for, e.g. a newer
Python), warns with them and goes on.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
import warnings

__all__ = ["PYTHON", "REQUIRED", "CHECK_VARIABLE", "environment_problems", "check_environment", "installed_versions"]

#: the Python versions lakedet is tested on (``requires-python``)
PYTHON = ">=3.11,<3.12"

#: distribution -> the declared range (``pyproject.toml`` ``dependencies``)
REQUIRED = {
    "torch": ">=2.1",
    "mmcv": ">=2.1,<2.2",
    "mmengine": ">=0.10,<0.11",
    "mmdet": ">=3.3,<3.4",
    "deeplake": ">=4.7,<4.8",
    "numpy": "<2",
    "pycocotools": ">=2.0.7",
    "simplejpeg": ">=1.7",
}

#: the environment variable that turns the check's error into a warning (``warn``)
CHECK_VARIABLE = "LAKEDET_ENVIRONMENT_CHECK"

#: distributions that install a package under another name (mmcv's build without ops)
ALSO_KNOWN_AS = {"mmcv": "mmcv-lite"}

#: how each part of the stack is installed into an existing (GPU) OpenMMLab environment
HOW = {
    "torch": "pip install torch (the CUDA build for your driver: https://pytorch.org/get-started/locally/)",
    "mmcv": 'pip install -U openmim && mim install "mmcv>=2.1,<2.2" (a build with its compiled ops for your torch '
            "and CUDA); or from source with MMCV_WITH_OPS=1",
    "mmengine": 'mim install "mmengine>=0.10,<0.11"',
    "mmdet": 'mim install "mmdet>=3.3,<3.4"',
    "deeplake": 'pip install "deeplake>=4.7,<4.8"',
}


def installed_versions() -> dict[str, str | None]:
    """distribution -> installed version (None when not installed)."""
    found = {}
    for name in REQUIRED:
        found[name] = None
        for distribution in (name, ALSO_KNOWN_AS.get(name)):
            try:
                found[name] = importlib.metadata.version(distribution) if distribution else None
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return found


def mmcv_has_ops() -> bool:
    """True when mmcv's compiled ops (``mmcv._ext``, what MMDetection's models need) are installed."""
    try:
        return importlib.util.find_spec("mmcv._ext") is not None
    except ImportError:  # no mmcv at all
        return False


def environment_problems(python: tuple = tuple(sys.version_info[:3]), versions: dict | None = None,
                         ops: bool | None = None) -> list[str]:
    """Everything wrong with an environment for lakedet, one sentence each (empty when fine).

    Args:
        python: the interpreter's version (``sys.version_info``).
        versions: distribution -> installed version or None (default: this environment's).
        ops: whether mmcv's compiled ops are installed (default: this environment's).
    """
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    problems = []
    here = ".".join(str(p) for p in python[:3])
    if Version(here) not in SpecifierSet(PYTHON):
        problems.append(f"Python {here} is not supported: lakedet is tested on Python {PYTHON} "
                        "(make uses python3.11 from PATH; set PYTHON=/path/to/python3.11 to choose another)")
    versions = installed_versions() if versions is None else versions
    for name, wanted in REQUIRED.items():
        have = versions.get(name)
        how = HOW.get(name, f'pip install "{name}{wanted}"')
        if have is None:
            problems.append(f"{name} is not installed (lakedet needs {name}{wanted}): {how}")
        elif Version(have) not in SpecifierSet(wanted):  # a local label (2.13.0+cu124) compares as its release
            problems.append(f"{name} {have} is installed, lakedet needs {name}{wanted}: {how}")
    if versions.get("mmcv") is not None and not (mmcv_has_ops() if ops is None else ops):
        problems.append(f"mmcv {versions['mmcv']} has no compiled ops (mmcv._ext is missing: a 'lite' build, "
                        f"e.g. a plain `pip install mmcv` without a wheel for your torch); MMDetection's models need "
                        f"them: {HOW['mmcv']}")
    return problems


def check_environment() -> None:
    """Raise ImportError naming every problem ``environment_problems`` finds here; with
    ``LAKEDET_ENVIRONMENT_CHECK=warn``, warn with them instead."""
    problems = environment_problems()
    if not problems:
        return
    mode = os.environ.get(CHECK_VARIABLE, "error")
    if mode not in ("error", "warn"):
        raise ImportError(f"{CHECK_VARIABLE}={mode!r} is not understood: set it to 'warn' (go on with a warning "
                          "in an environment lakedet is not tested on) or leave it unset")
    listed = "\n  - " + "\n  - ".join(problems)
    if mode == "warn":
        warnings.warn(f"lakedet runs in an environment it is not tested on ({CHECK_VARIABLE}=warn):{listed}",
                      RuntimeWarning, stacklevel=2)
        return
    raise ImportError(f"lakedet cannot run in this environment:{listed}\n"
                      f"(to go on anyway at your own risk, set {CHECK_VARIABLE}=warn)")
