"""The notebooks in ``notebooks/`` run from top to bottom and are stored without outputs.

Each notebook is executed with nbclient in a fresh kernel started from *this*
interpreter (``sys.executable``, through a throw-away kernelspec), so it sees
the package under test whatever kernelspecs the machine has, and needs neither
``ipykernel install --user`` nor the network. The kernel runs in a temporary
folder with its Jupyter/IPython state there too, so nothing is written into
the repository. Outside CI the test is skipped when nbclient, nbformat or
ipykernel is missing; in CI (``CI`` set) their absence fails it.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))
_MISSING = [m for m in ("nbclient", "nbformat", "ipykernel") if importlib.util.find_spec(m) is None]
_IN_CI = bool(os.environ.get("CI"))


def test_notebooks_exist():
    assert [p.name for p in NOTEBOOK_FILES] and "tuning.ipynb" in [p.name for p in NOTEBOOK_FILES]


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path: Path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: code cells {dirty} have stored outputs or execution counts; clear them "
                       f"(jupyter nbconvert --clear-output --inplace {path.name})")


@pytest.mark.skipif(bool(_MISSING) and not _IN_CI,
                    reason=f"{', '.join(_MISSING)} not installed (pip install -e '.[test]')")
@pytest.mark.slow(17)
@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import nbformat
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    # Kernel state (connection files, IPython profile, matplotlib cache) and the
    # notebook's own temporary files go to tmp_path.
    for var, sub in (("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl"),
                     ("TMPDIR", "tmp")):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(var, str(tmp_path / sub))
    kernels = tmp_path / "kernels"
    write_kernel_spec(kernels / "python3")  # argv: [sys.executable, "-m", "ipykernel_launcher", ...]
    km = KernelManager(kernel_name="python3",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False))
    assert km.kernel_spec.argv[0] == sys.executable

    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, km=km, timeout=300, resources={"metadata": {"path": str(work)}}).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]  # execute() raises first; belt and braces
    if path.name == "tuning.ipynb":  # the scores-by-horizon figure is shown inline
        assert any("image/png" in o.get("data", {}) for o in outputs), "no inline figure in the output"
    assert not [p.name for p in work.iterdir()], "the notebook left files in its working directory"
