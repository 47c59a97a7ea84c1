"""Every shipped notebook runs headless with papermill on small inputs, with a `parameters` cell."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm
import pytest

from aisre.case import save_case

from conftest import build_toy_case

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _parameters(name: str, tmp: Path) -> dict:
    """Small, fast parameters for each notebook; a new notebook must be added here."""
    case_dir = save_case(build_toy_case(), tmp / "case")
    return {
        "postmortem": {"case_path": str(case_dir)},
        "investigate": {"case_path": str(case_dir)},
        "app": {"case_path": str(case_dir)},
        "scorecard": {"result_path": str(Path(__file__).resolve().parents[1] / "benchmarks" / "scorecard_baseline.json")},
        "benchmark": {"paths": [str(case_dir.parent)], "methods": ["random", "nsigma"], "quick": True},
        "fault_injection": {"duration": 120.0, "rate": 10.0, "start": 40.0, "fault_duration": 60.0, "seeds": [1]},
    }[name]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_runs_headless(notebook: Path, tmp_path: Path):
    """The notebook has a cell tagged `parameters` and executes with no error."""
    nb = nbformat.read(notebook, as_version=4)
    assert any("parameters" in cell.metadata.get("tags", []) for cell in nb.cells), "no parameters cell"
    params = _parameters(notebook.stem, tmp_path)
    out = tmp_path / notebook.name
    pm.execute_notebook(str(notebook), str(out), parameters=params, kernel_name="python3",
                        progress_bar=False, cwd=str(tmp_path), execution_timeout=300)
    executed = nbformat.read(out, as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
