"""The shape of the package: layers that import only downwards and no import cycles (the
import-linter contracts in pyproject.toml), and no private name used outside its module."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "lakedet"


def test_the_import_linter_contracts_hold():
    """Layers bottom up: config -> source -> schema -> data -> engine -> evaluation -> tools -> cli."""
    out = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in out.stdout


def test_the_contracts_catch_an_upward_import(tmp_path):
    """The layers contract fails when a lower layer imports a higher one (so the test above can fail)."""
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(SRC, copy / "lakedet")
    schema = copy / "lakedet" / "schema" / "boxes.py"
    schema.write_text(schema.read_text() + "\nfrom ..engine import runner  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    out = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=tmp_path,
                         capture_output=True, text=True, env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    assert out.returncode != 0 and "lakedet.schema is not allowed to import lakedet.engine" in out.stdout, out.stdout


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private_imports(path: Path, module: str | None = None) -> list[str]:
    """``from <a lakedet module> import _name`` and ``<imported lakedet module>._name`` in ``path``
    (the module ``module``, by default the one ``path`` is in the package)."""
    tree = ast.parse(path.read_text())
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            if not base.startswith("lakedet"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{module}: from {base} import {alias.name}")
                modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{module}: {node.value.id}.{node.attr}")
    return found


def test_no_private_name_is_used_outside_its_module():
    found = [hit for path in sorted(SRC.rglob("*.py")) for hit in _private_imports(path)]
    assert not found, found


def test_the_private_name_check_finds_one(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from ..source.remote import _remote_io\nfrom ..source import deeplake3\nx = deeplake3._SAFE_NAME\n")
    assert _private_imports(probe, "lakedet.data.probe") == [
        "lakedet.data.probe: from lakedet.source.remote import _remote_io", "lakedet.data.probe: deeplake3._SAFE_NAME"]
