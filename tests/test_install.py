"""Installing lakedet where users train: the built wheel into an environment that already has the
stack (no make), the declared ranges, and a clear early error on an unsupported Python or an mmcv
without its compiled ops."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from lakedet.environment import PYTHON, REQUIRED, environment_problems

ROOT = Path(__file__).parent.parent
GOOD = {"torch": "2.13.0+cpu", "mmcv": "2.1.0", "mmengine": "0.10.7", "mmdet": "3.3.0", "deeplake": "4.7.4",
        "numpy": "1.26.4", "pycocotools": "2.0.10", "simplejpeg": "1.9.0"}


def test_pyproject_declares_the_ranges_lakedet_checks():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == PYTHON
    declared = {}
    for line in project["dependencies"]:
        name = line.split(">")[0].split("<")[0].split("=")[0].strip()
        declared[name] = line[len(name):]
    assert {k: v for k, v in declared.items() if k != "packaging"} == REQUIRED


def test_constraints_pin_every_required_package_inside_its_range():
    from packaging.specifiers import SpecifierSet

    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    for name, wanted in REQUIRED.items():
        assert name in pins, f"constraints.txt does not pin {name}"
        assert pins[name] in SpecifierSet(wanted), (name, pins[name], wanted)


def test_environment_problems_name_what_is_wrong_and_how_to_fix_it():
    assert environment_problems((3, 11, 7), GOOD, ops=True) == []
    problems = environment_problems((3, 12, 1), {**GOOD, "deeplake": "3.9.52", "mmengine": None}, ops=False)
    text = "\n".join(problems)
    assert len(problems) == 4, text
    assert "Python 3.12.1 is not supported" in text and "python3.11" in text
    assert "deeplake 3.9.52 is installed, lakedet needs deeplake>=4.7,<4.8" in text
    assert "mmengine is not installed" in text and "mim install" in text
    assert "mmcv 2.1.0 has no compiled ops (mmcv._ext is missing" in text and 'mim install "mmcv>=2.1,<2.2"' in text
    # a CUDA build's local label is the release it labels
    assert environment_problems((3, 11, 7), {**GOOD, "torch": "2.5.1+cu124"}, ops=True) == []


HIDE_MMCV_OPS = """
import importlib.abc, sys
class HideOps(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "mmcv._ext":
            raise ModuleNotFoundError("No module named 'mmcv._ext'", name=name)
sys.meta_path.insert(0, HideOps())
"""


@pytest.mark.parametrize("entry", ["import", "command"])
def test_mmcv_without_its_ops_is_a_clear_error_first_thing(entry, tmp_path):
    """A 'lite' mmcv (no mmcv._ext) stops `import lakedet` (what custom_imports does) and any lakedet
    command before MMDetection fails somewhere deeper."""
    run = ("import lakedet" if entry == "import" else
           "import sys; sys.argv = ['lakedet', 'inspect', 'nowhere']; from lakedet.cli import main; main()")
    out = subprocess.run([sys.executable, "-c", HIDE_MMCV_OPS + run], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode != 0
    assert "lakedet cannot run in this environment" in out.stderr and "mmcv._ext is missing" in out.stderr, out.stderr[-2000:]
    assert "mim install" in out.stderr


OLD_DEEPLAKE = """
import importlib.metadata
real = importlib.metadata.version
importlib.metadata.version = lambda name: "3.9.52" if name == "deeplake" else real(name)
"""


def test_warn_mode_goes_on_with_every_problem_named_and_other_values_are_refused(tmp_path):
    """LAKEDET_ENVIRONMENT_CHECK=warn (an environment the user vouches for) imports lakedet with a
    warning naming each problem; a value it does not know is an error, not a silent 'off'."""
    run = "import lakedet, mmdet.registry; lakedet.register_all(); print('registered', 'DeepLakeDetDataset' in mmdet.registry.DATASETS)"
    env = {**os.environ, "LAKEDET_ENVIRONMENT_CHECK": "warn"}
    out = subprocess.run([sys.executable, "-W", "always", "-c", OLD_DEEPLAKE + run], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "registered True" in out.stdout
    assert "not tested on (LAKEDET_ENVIRONMENT_CHECK=warn)" in out.stderr
    assert "deeplake 3.9.52 is installed, lakedet needs deeplake>=4.7,<4.8" in out.stderr
    env.pop("LAKEDET_ENVIRONMENT_CHECK")
    out = subprocess.run([sys.executable, "-c", OLD_DEEPLAKE + run], capture_output=True, text=True, cwd=tmp_path,
                         env=env)
    assert out.returncode != 0 and "set LAKEDET_ENVIRONMENT_CHECK=warn" in out.stderr, out.stderr[-2000:]
    env["LAKEDET_ENVIRONMENT_CHECK"] = "off"
    out = subprocess.run([sys.executable, "-c", OLD_DEEPLAKE + run], capture_output=True, text=True, cwd=tmp_path,
                         env=env)
    assert out.returncode != 0 and "LAKEDET_ENVIRONMENT_CHECK='off' is not understood" in out.stderr, out.stderr[-2000:]


def test_mmcv_lite_counts_as_mmcv_without_ops():
    """mmcv's build without ops installs as the distribution 'mmcv-lite': it is named as mmcv without ops,
    not as a missing mmcv."""
    from unittest import mock

    import importlib.metadata

    from lakedet import environment

    real = importlib.metadata.version

    def version(name):
        if name == "mmcv":
            raise importlib.metadata.PackageNotFoundError(name)
        return {"mmcv-lite": "2.1.0"}.get(name) or real(name)

    with mock.patch.object(importlib.metadata, "version", version):
        found = environment.installed_versions()
    assert found["mmcv"] == "2.1.0"
    problems = environment.environment_problems((3, 11, 7), {**GOOD, "mmcv": found["mmcv"]}, ops=False)
    assert len(problems) == 1 and "mmcv 2.1.0 has no compiled ops" in problems[0]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out_dir), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    (found,) = out_dir.glob("lakedet-*.whl")
    return found


def site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


SATISFIED = """
import importlib.metadata as m, sys
from packaging.requirements import Requirement
bad = 0
for line in m.requires("lakedet"):
    req = Requirement(line)
    have = m.version(req.name)
    ok = req.specifier.contains(have, prereleases=True)
    print(f"{req.name}{req.specifier}: {have}" + ("" if ok else "  NOT SATISFIED"))
    bad += not ok
sys.exit(bad)
"""


@pytest.mark.slow
def test_the_wheel_installs_into_an_environment_that_has_the_stack(wheel, tmp_path):
    """An existing OpenMMLab environment, as users have it: the stack installed, no make. It is this
    test run's own stack (every distribution but lakedet, made visible to a fresh venv). pip installs
    the wheel alone (this stack has opencv-python-headless where mmengine's metadata names
    opencv-python, so pip's resolver would look for that one); every requirement the wheel declares
    is then checked against what the environment has."""
    stack = tmp_path / "stack"
    stack.mkdir()
    here = Path(site_packages(Path(sys.executable)))
    for entry in here.iterdir():
        if "lakedet" in entry.name.lower() or entry.suffix == ".pth":
            continue  # not lakedet itself (this checkout's editable install)
        (stack / entry.name).symlink_to(entry)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    (site_packages(python) / "the_stack.pth").write_text(f"{stack}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_CONSTRAINT")}
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-index", "--no-deps", str(wheel)],
                             capture_output=True, text=True, env=env, cwd=tmp_path)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    assert "Successfully installed lakedet-" in install.stdout
    requirements = subprocess.run([str(python), "-c", SATISFIED], capture_output=True, text=True, env=env)
    assert requirements.returncode == 0, requirements.stdout + requirements.stderr[-2000:]
    assert "torch>=2.1: 2.13.0" in requirements.stdout and "mmcv<2.2,>=2.1: 2.1.0" in requirements.stdout
    check = subprocess.run([str(python), "-c", "import lakedet, lakedet.engine.runner; lakedet.register_all(); "
                            "from mmdet.registry import DATASETS; print(lakedet.__file__); "
                            "print(DATASETS.get('DeepLakeDetDataset').__name__); "
                            "import importlib.resources as r; "
                            "print(sorted(p.name for p in r.files('lakedet').joinpath('configs').iterdir()))"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stderr[-3000:]
    file, registered, configs = check.stdout.strip().splitlines()[-3:]
    assert file.startswith(str(venv)), file  # the installed copy, not this checkout's sources
    assert registered == "DeepLakeDetDataset"
    assert "demo_retinanet_r18_shapes.py" in configs
    command = subprocess.run([str(venv / "bin" / "lakedet"), "--help"], capture_output=True, text=True, env=env)
    assert command.returncode == 0 and "ingest" in command.stdout and "train" in command.stdout


def python312():
    for candidate in (shutil.which("python3.12"), "/root/.pyenv/versions/3.12.1/bin/python3.12"):
        if candidate and subprocess.run([candidate, "-V"], capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.mark.skipif(python312() is None, reason="no Python 3.12 interpreter on this machine")
def test_pip_refuses_the_wheel_on_an_untested_python(wheel, tmp_path):
    venv = tmp_path / "venv312"
    subprocess.run([python312(), "-m", "venv", "--without-pip", str(venv)], check=True)
    out = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                          "--no-index", "--no-deps", str(wheel)], capture_output=True, text=True)
    assert out.returncode != 0
    assert "requires a different Python" in out.stdout + out.stderr and "<3.12,>=3.11" in out.stdout + out.stderr
