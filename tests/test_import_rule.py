"""The import rule of DESIGN.md holds: each layer imports only from its own layer or below."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"


def _lint(config: Path, cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([LINT, str(config)], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def _mirror(tmp: Path) -> Path:
    """Copy the package's modules into *tmp* as one tree (simulator/ -> aisre/simulator, ...).

    import-linter walks the package folder on disk, so it cannot follow setuptools' package-dir
    mapping of simulator/ and datasets/ into aisre; the mirror lays them where it looks.
    """
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "aisre", tmp / "aisre", ignore=ignore)
    shutil.copytree(ROOT / "simulator", tmp / "aisre" / "simulator", ignore=ignore)
    shutil.copytree(ROOT / "datasets", tmp / "aisre" / "datasets", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    return tmp


def test_layers_contract_is_kept(tmp_path):
    """import-linter's layers contract in pyproject.toml is kept by the whole package."""
    tree = _mirror(tmp_path)
    result = _lint(tree / "pyproject.toml", tree, tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_contract_sees_the_mapped_sources(tmp_path):
    """The check is live for the mapped packages: a dataset loader importing a ranker breaks it."""
    tree = _mirror(tmp_path)
    registry = tree / "aisre" / "datasets" / "registry.py"
    registry.write_text(registry.read_text() + "\nfrom aisre import rank  # a source importing analysis\n")
    result = _lint(tree / "pyproject.toml", tree, tree)
    assert result.returncode != 0
    assert "aisre.datasets.registry -> aisre.rank" in result.stdout


def test_same_contract_shape_catches_a_source_importing_analysis(tmp_path):
    """The contract's shape is live: in a copy of the layout, a source importing analysis breaks it."""
    pkg = tmp_path / "probe"
    pkg.mkdir()
    for name, body in {"__init__": "", "errors": "", "case": "from probe import errors\n",
                       "simulator": "from probe import rank\n", "rank": "from probe import case\n"}.items():
        (pkg / f"{name}.py").write_text(body)
    (tmp_path / "setup.cfg").write_text(
        "[importlinter]\nroot_package = probe\n\n[importlinter:contract:layers]\nname = probe layers\n"
        "type = layers\nlayers =\n    probe.rank\n    probe.simulator\n    probe.errors : probe.case\n")
    result = _lint(tmp_path / "setup.cfg", tmp_path, tmp_path)
    assert result.returncode != 0
    assert "probe.simulator -> probe.rank" in result.stdout
