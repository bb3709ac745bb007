"""``forecast effects``: intervention tests of the models a config or a file asks for, as one table."""
from __future__ import annotations

from pathlib import Path


def effects_table(file: str | Path, *, date=None, detect: bool = False, delta: float = 1.0, kind: str = "internal",
                  model=None, series: str | None = None, bootstrap: int = 99, margin: int = 3, freq: str = "month",
                  as_of=None, seed: int = 0, out=None, force: bool = False, **read):
    """The table ``forecast effects`` prints (and writes to ``out``), with its one-line explanation.

    ``file`` is a run config (.toml: its panel, and its candidates that are poisson_glm,
    negbin_glm or ingarch unless ``model`` is given) or an events / panel file (``model``,
    default negbin_glm). With ``date``: :func:`forecast.interventions.score_test` per series
    and model; with ``detect``: :func:`forecast.interventions.detect`. A ``p_holm`` column
    adjusts the p-values for every row tested (Holm). ``read``: ``schema``, ``gazetteer``,
    ``dayfirst``, ``countries`` as :func:`~forecast.pipeline.stages.load_panel` takes them.
    """
    import pandas as pd

    from forecast._interv_null import SUPPORTED
    from forecast._interv_tests import holm
    from forecast.combine import load_model
    from forecast.exceptions import ConfigError
    from forecast.interventions import detect as detect_change, score_test
    from forecast.outputs import check_file_writable, staged_file, write_csv
    from forecast.pipeline import stages

    if (date is None) == (not detect):
        raise ConfigError("give --date 2024-03 (test that date) or --detect (look for a change), not "
                          "both and not neither.")
    where = {"force": force, "protected": [file], "parents": False}
    if out is not None:
        check_file_writable(out, **where)
    if date is not None:
        try:
            pd.Timestamp(date)
        except (ValueError, TypeError):
            raise ConfigError(f"--date {date!r} is not a date; use YYYY-MM or YYYY-MM-DD.") from None
    if Path(file).suffix.lower() == ".toml":
        from forecast.config import load_config

        cfg = load_config(file)
        panel = stages.run_panel(cfg, stages.read_run_events(cfg))
        refs = {str(model): model} if model else stages.candidates(cfg)[0]
    else:
        panel = stages.load_panel(file, freq=freq, as_of=as_of, **read)
        refs = {str(model or "negbin_glm"): model or "negbin_glm"}
    specs = {}
    for lab, ref in refs.items():
        spec = load_model(ref)
        if spec.name in SUPPORTED:
            specs[str(lab)] = spec
    if not specs:
        what = f"--model {model} is" if model else "the config lists"
        raise ConfigError(f"no model to test with: {what} none of {', '.join(SUPPORTED)}; "
                          "pass e.g. --model negbin_glm.")
    uids = [u.strip() for u in series.split(",") if u.strip()] if series else None
    parts = []
    for lab, spec in specs.items():
        if detect:
            part = detect_change(panel, spec, delta=delta, kind=kind, margin=margin, B=bootstrap, seed=seed,
                                 unique_id=uids)
        else:
            part = score_test(panel, spec, date, delta=delta, kind=kind, unique_id=uids)
        parts.append(part.assign(model=lab))
    table = pd.concat(parts, ignore_index=True)
    p = "p_value" if detect else "p_score"
    table.insert(table.columns.get_loc(p) + 1, "p_holm", holm(table[p].to_numpy(dtype=float)))
    n = int(table[p].notna().sum())
    if detect:
        note = (f"score_stat: the largest score statistic over {int(table['n_dates'].max())} candidate dates; "
                f"p_value: parametric bootstrap ({bootstrap} replicates of the fitted null, seed {seed}); "
                f"p_holm: adjusted for testing {n} series (Holm).")
    else:
        note = ("score_stat: score test from the null fit (chi-square, 1 df); lr_stat: likelihood-ratio test; "
                "rate_ratio: exp(effect) from the fit with the effect, with its 95% interval; "
                f"p_holm: p_score adjusted for testing {n} series (Holm).")
    if table["score_stat"].isna().any():
        note += (" NaN: no maximum-likelihood fit of the null model for that series (its note says why; a "
                 "simpler --model may fit).")
    if table["note"].str.startswith("fallback").any():
        note += " A note on a row with numbers names the fallback model it was tested with."
    if out is not None:
        with staged_file(out, **where) as tmp:
            write_csv(table, tmp, index=False, date_format="%Y-%m-%d")
    return table, note
