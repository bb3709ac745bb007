"""``forecast effects``: test for an intervention effect at a known date, or look for one.

Registered on the ``forecast`` app by :mod:`forecast.cli` (``register``): the command takes
the app's error boundary and shared options from there, so it behaves as every other command.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import typer


def register(app: typer.Typer, friendly: Callable, freq_option: Any, as_of_option: Any, seed_option: Any) -> None:
    """Add the ``effects`` command to ``app`` (``friendly``: the CLI's error boundary)."""

    @app.command("effects")
    @friendly
    def effects_cmd(
        file: Path = typer.Argument(..., help="Run config (.toml), events file or panel CSV (unique_id, ds, y)."),
        date: Optional[str] = typer.Option(None, "--date", help="A date in the first affected period, e.g. "
                                                                "2024-03 or 2024-03-15 (a score test at that date)."),
        detect: bool = typer.Option(False, "--detect", help="Look for a change at an unknown date instead: the "
                                                            "largest score statistic over the dates, with a "
                                                            "bootstrap p-value."),
        delta: float = typer.Option(1.0, "--delta", min=0.0, max=1.0,
                                    help="Shape of the effect: 1 a level shift, 0 a one-period spike, in between "
                                         "a transient shift that decays by this factor per period."),
        kind: str = typer.Option("internal", "--kind", help="For ingarch: 'internal' (the effect propagates "
                                                            "through the model's feedback) or 'external' (it "
                                                            "changes the observed count only)."),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="Null model: poisson_glm, negbin_glm, "
                                                                        "ingarch or a .toml spec (default: the "
                                                                        "config's candidates of these kinds, "
                                                                        "else negbin_glm)."),
        series: Optional[str] = typer.Option(None, "--series", help="Comma-separated unique_ids to test "
                                                                    "(default: every series)."),
        bootstrap: int = typer.Option(99, "--bootstrap", "-B", min=1, help="--detect: bootstrap replicates."),
        margin: int = typer.Option(3, "--margin", min=1, help="--detect: periods left out at each end."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the table to this CSV."),
        freq: str = freq_option,
        as_of: Optional[str] = as_of_option,
        seed: int = seed_option,
        force: bool = typer.Option(False, help="Overwrite OUT if it exists."),
    ) -> None:
        """Test for an intervention effect: score and likelihood-ratio tests at a known date (--date),
        or the largest change at an unknown date (--detect), per series.

        Example: forecast effects panel.csv --date 2024-03 --model negbin_glm --delta 1

        Example: forecast effects config.toml --detect --bootstrap 199 --series "Tajikistan/Khatlon/clash"
        """
        from forecast.exceptions import ConfigError

        if (date is None) == (not detect):
            raise ConfigError("give --date 2024-03 (test that date) or --detect (look for a change), not "
                              "both and not neither.")
        table, note = effects_table(file, date=date, detect=detect, delta=delta, kind=kind, model=model,
                                    series=series, bootstrap=bootstrap, margin=margin, freq=freq, as_of=as_of,
                                    seed=seed, out=out, force=force)
        import pandas as pd

        with pd.option_context("display.width", 160, "display.max_rows", 500):
            num = table.select_dtypes("number").columns
            typer.echo(table.assign(**{c: table[c].round(4) for c in num}).to_string(index=False))
        typer.echo(note + (f" Written to {out}." if out else ""))


def effects_table(file: Path, *, date, detect: bool, delta: float, kind: str, model, series, bootstrap: int,
                  margin: int, freq: str, as_of, seed: int, out, force: bool):
    """The table ``forecast effects`` prints (and writes), with its one-line explanation."""
    import pandas as pd

    from forecast._interv_null import SUPPORTED
    from forecast._interv_tests import holm
    from forecast.combine import load_model
    from forecast.exceptions import ConfigError
    from forecast.interventions import detect as detect_change, score_test
    from forecast.outputs import check_file_writable, staged_file, write_csv
    from forecast.pipeline import stages

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
        panel = stages.load_panel(file, freq=freq, as_of=as_of)
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
        note += (" NaN: no maximum-likelihood fit of the null model for that series (separation or too few "
                 "counts; a simpler --model may fit).")
    if out is not None:
        with staged_file(out, **where) as tmp:
            write_csv(table, tmp, index=False, date_format="%Y-%m-%d")
    return table, note
