"""What a CLI call imports before it can say anything: no slow scipy submodule.

``forecast validate`` on a broken file, ``forecast predict`` with a bad count: the answer
should come in about a second. scipy.stats, scipy.optimize and scipy.signal each take
0.1-0.3 s to import and are needed only when a model is actually fitted (they are imported
inside the functions that use them), so loading the CLI, the pipeline and every model
spec must not import them.
"""
from __future__ import annotations

import subprocess
import sys

SLOW = ("scipy.stats", "scipy.optimize", "scipy.signal")


def test_loading_the_cli_pipeline_and_every_model_spec_imports_no_slow_scipy_module():
    code = ("import sys\n"
            "import forecast.cli, forecast.pipeline.commands, forecast.combine\n"
            "from forecast.combine import load_model\n"
            "for n in ('auto', 'climatology', 'negbin_glm', 'ingarch', 'log_arma', 'arima', 'endemic_epidemic'):\n"
            "    load_model(n)\n"
            f"print(sorted(m for m in {SLOW!r} if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_a_cli_error_on_a_bad_count_imports_no_slow_scipy_module(tmp_path):
    (tmp_path / "panel.csv").write_text("unique_id,ds,y\na,2024-01-01,-1\na,2024-02-01,2\n")
    code = ("import sys\n"
            "from forecast.cli import main\n"
            "sys.argv = ['forecast', 'predict', 'panel.csv', '--model', 'climatology', '--out', 'f.csv']\n"
            "try:\n"
            "    main()\n"
            "except SystemExit as e:\n"
            "    code = e.code\n"
            f"print(code, sorted(m for m in {SLOW!r} if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert "error:" in proc.stderr and "column 'y'" in proc.stderr, proc.stderr
    assert proc.stdout.strip() == "1 []", proc.stdout + proc.stderr
