"""The analyst notebooks (PRODUCT §3.8): committed stripped and in sync with ``notebooks/_build.py``,
and every one of them executes without a cell error on the ``small`` sample city.

Execution uses nbclient with the kernel named ``python3``.  So that the kernel is this venv's Python
(and not a ``python3`` kernelspec some user registered elsewhere), the test writes a throwaway
kernelspec into a temp folder and puts it first on ``JUPYTER_PATH``; nothing is registered globally.
A probe cell added before the notebook's own cells checks ``sys.prefix`` inside the kernel.
All outputs go into a temp working folder (``GRIDPLAN_NB_WORKDIR``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p.name for p in NB_DIR.glob("*.ipynb"))
PROBE = "import sys\nprint(sys.prefix)"
TIMEOUT_S = 600  # per cell; the whole set takes well under 90 s on an idle 2-core machine


def _build_module():
    spec = importlib.util.spec_from_file_location("gridplan_notebooks_build", NB_DIR / "_build.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_notebook_is_built_and_listed():
    build = _build_module()
    assert sorted(build.NOTEBOOKS) == NOTEBOOKS, "notebooks/ and notebooks/_build.py list different notebooks"
    assert len(NOTEBOOKS) >= 3
    readme = (NB_DIR / "README.md").read_text(encoding="utf-8")
    for name in NOTEBOOKS:
        assert name in readme, f"{name} is not described in notebooks/README.md"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stripped_and_matches_build_script(name: str):
    build = _build_module()
    text = (NB_DIR / name).read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: cell {cell.id} has outputs; rebuild with notebooks/_build.py"
            assert cell.execution_count is None, f"{name}: cell {cell.id} has an execution count"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert text == build.render(name), f"{name} differs from notebooks/_build.py; run that script"


@pytest.fixture(scope="module")
def nb_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A working folder shared by the notebooks (01 → 02 → 03) and a private kernelspec folder."""
    work = tmp_path_factory.mktemp("notebooks_work")
    jupyter_path = tmp_path_factory.mktemp("jupyter_path")
    spec_dir = jupyter_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (gridplan test venv)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return {"work": work, "jupyter_path": jupyter_path}


def _errors_and_warnings(nb) -> list[str]:
    """Text of error outputs and of stderr lines that report a warning, per cell."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"{cell.id}: {out.get('ename')}: {out.get('evalue')}")
            elif out.get("name") == "stderr" and "Warning" in out.get("text", ""):
                found.append(f"{cell.id}: {out['text'].strip()[:500]}")
    return found


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name: str, nb_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    work = nb_env["work"]
    monkeypatch.setenv("GRIDPLAN_NB_WORKDIR", str(work))
    monkeypatch.setenv("JUPYTER_PATH", str(nb_env["jupyter_path"]))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    nb = nbformat.read(NB_DIR / name, as_version=4)
    probe = nbformat.v4.new_code_cell(PROBE)
    probe["id"] = "test-probe"
    nb.cells.insert(0, probe)
    client = nbclient.NotebookClient(
        nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    t0 = time.perf_counter()
    try:
        client.execute()
    finally:
        nbformat.write(nb, work / f"executed_{name}")  # for debugging a failure
    seconds = time.perf_counter() - t0
    print(f"{name}: {seconds:.1f} s")
    kernel_prefix = "".join(o.get("text", "") for o in nb.cells[0].outputs).strip()
    assert Path(kernel_prefix).resolve() == Path(sys.prefix).resolve(), (
        f"the kernel ran {kernel_prefix}, not this venv ({sys.prefix})"
    )
    assert _errors_and_warnings(nb) == []
    for cell in nb.cells:  # every figure the notebook draws reaches the analyst
        if cell.cell_type == "code" and ("plt.subplots(" in cell.source or "Image(" in cell.source):
            images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
            assert images, f"{name}: cell {cell.id} shows no image"
    expected = {
        "01_sample_and_merge.ipynb": ["sample/layers.gpkg", "sample/manifest.json", "plan.gpkg"],
        "02_geocode_and_hotspots.ipynb": [
            "cases_located.csv", "hazards_located.csv", "heat.tif", "heat.png", "hot.gpkg", "yoy.csv",
        ],
        "03_staffing_and_maps.ipynb": [
            "proposal.gpkg", "cover.gpkg", "maps/index.html", "maps/proposal-workload.html",
            "maps/proposal-compare.html",
        ],
    }.get(name, [])
    missing = [f for f in expected if not (work / f).exists()]
    assert not missing, f"{name} did not write {missing} into the working folder"
