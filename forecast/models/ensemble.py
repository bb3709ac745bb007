"""Ensemble: a linear pool of member models' predictive distributions."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecast.models.base import (
    SEED,
    FittedModel,
    ModelSpec,
    PanelData,
    Param,
    one_of,
    positive_int,
    str_tuple,
)


class Ensemble(ModelSpec):
    """Linear pool of member models, with equal or backtest-score weights.

    Notes
    -----
    p(y) = Σ_m w_m p_m(y), Σ_m w_m = 1, per series. With ``weights = "equal"``
    w_m = 1/M. With ``weights = "score"`` the members are backtested on the
    training data only (``weight_origins`` rolling origins, horizon
    ``weight_horizon``, so nothing after the cutoff is used) and
    w_m ∝ 1 / RPS̄_m (``metric = "rps"``), or w_m ∝ exp(−LS̄_m), the member's
    geometric-mean predictive likelihood (``metric = "log"``), from its mean
    score on that series. Series whose
    internal backtest cannot run (too short) get equal weights, recorded in
    ``diagnostics()``.
    """

    name = "ensemble"
    description = "Linear pool of member models (equal or backtest-score weights)"
    params = (
        Param("members", ("climatology", "negbin_glm"), "a tuple of at least 2 model spec names",
              lambda v: str_tuple(v) and len(v) >= 2, "member spec names (models/<name>.toml)"),
        Param("weights", "equal", "one of 'equal', 'score'", one_of("equal", "score"), "how members are weighted"),
        Param("metric", "rps", "one of 'rps', 'log'", one_of("rps", "log"), "score used for score weights"),
        Param("weight_origins", 6, "an int >= 1", positive_int, "origins of the internal weighting backtest"),
        Param("weight_horizon", 1, "an int >= 1", positive_int, "horizon of the internal weighting backtest"),
        SEED,
    )
    fallbacks = ()

    def fit(self, panel: pd.DataFrame) -> "EnsembleFitted":
        from forecast.specs import load_model

        self.validate()
        spec = self.clone()
        members = {}
        for name in spec.members:
            m = load_model(name)
            members[name] = m.set_params(seed=spec.seed) if "seed" in m.get_params() else m
        required = tuple(dict.fromkeys(c for m in members.values() for c in m.required_columns()))
        data = PanelData.from_frame(panel, required)
        fitted = {name: m.fit(panel) for name, m in members.items()}
        weights, notes = _weights(spec, members, panel, [s.uid for s in data.series])
        return EnsembleFitted(spec, data, fitted, weights, notes)


def _weights(spec: Ensemble, members: dict[str, ModelSpec], panel: pd.DataFrame,
             uids: list[str]) -> tuple[np.ndarray, dict[str, str]]:
    M, n = len(members), len(uids)
    equal = np.full((M, n), 1.0 / M)
    if spec.weights == "equal":
        return equal, {}
    from forecast.backtesting import backtest
    from forecast.exceptions import ConfigError

    try:
        res = backtest(panel, members, spec.weight_horizon, n_origins=spec.weight_origins, seed=spec.seed,
                       keep_pmf=False, progress=False)
    except ConfigError as exc:
        return equal, {u: f"equal weights: {exc}" for u in uids}
    score = res.point_scores[spec.metric].groupby([res.forecasts["model"], res.forecasts["unique_id"]]).mean()
    table = score.unstack("unique_id").reindex(index=list(members), columns=uids)
    s = table.to_numpy(dtype=float)
    if spec.metric == "log":
        # exp(-mean log score) is each member's geometric-mean predictive likelihood
        raw = np.exp(-(s - np.nanmin(s, axis=0)))
    else:
        raw = 1.0 / s
    ok = np.isfinite(raw).all(axis=0) & (raw.sum(axis=0) > 0)
    w = np.where(ok, raw / np.where(ok, raw.sum(axis=0), 1.0), equal)
    notes = {u: "equal weights: no internal backtest scores" for u, good in zip(uids, ok) if not good}
    return w, notes


class EnsembleFitted(FittedModel):
    """Fitted members plus per-series weights; immutable like every fitted model."""

    def __init__(self, spec: Ensemble, data: PanelData, members: dict[str, FittedModel], weights: np.ndarray,
                 notes: dict[str, str]) -> None:
        super().__init__(spec, data, fits=[])
        self._members, self._weights, self._notes = members, weights, notes

    def forecast(self, h: int, *, future: pd.DataFrame | None = None, history_max: int | None = None):
        from forecast.distributions import CountForecast

        parts = [m.forecast(h, future=future, history_max=history_max) for m in self._members.values()]
        w = np.repeat(self._weights, h, axis=1)  # one weight per (series, h) row
        return CountForecast.mixture(parts, w, model=self.model)

    def update(self, panel: pd.DataFrame) -> "EnsembleFitted":
        members = {k: m.update(panel) for k, m in self._members.items()}
        data = PanelData.from_frame(panel, ())
        old = dict(zip(self.unique_ids, self._weights.T))
        M = len(members)
        w = np.column_stack([old.get(s.uid, np.full(M, 1.0 / M)) for s in data.series])
        return EnsembleFitted(self._spec, data, members, w, self._notes)

    def weights(self) -> pd.DataFrame:
        """Per series and member: the pool weight."""
        return pd.DataFrame(self._weights.T, index=pd.Index(self.unique_ids, name="unique_id"),
                            columns=list(self._members)).reset_index()

    def fits(self) -> dict[str, Any]:
        return {name: m.fits() for name, m in self._members.items()}

    def coefficients(self) -> pd.DataFrame:
        w = self.weights().melt(id_vars="unique_id", var_name="member", value_name="estimate")
        w["term"] = "weight_" + w.pop("member")
        w["std_error"] = np.nan
        return w[["unique_id", "term", "estimate", "std_error"]]

    def diagnostics(self) -> pd.DataFrame:
        parts = {name: m.diagnostics().set_index("unique_id") for name, m in self._members.items()}
        rows = []
        for uid in self.unique_ids:
            fell = [f"{name}->{parts[name].loc[uid, 'model_used']}" for name in parts
                    if parts[name].loc[uid, "fallback"] != "none"]
            rows.append({"unique_id": uid, "converged": all(parts[n].loc[uid, "converged"] for n in parts),
                         "fallback": "members: " + ", ".join(fell) if fell else "none",
                         "reason": self._notes.get(uid, ""), "model_used": "ensemble", "loglik": np.nan,
                         "aic": np.nan, "n_obs": int(max(parts[n].loc[uid, "n_obs"] for n in parts)), "message": "",
                         "mean_capped": any(bool(parts[n].loc[uid, "mean_capped"]) for n in parts)})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return f"Fitted {self._spec!r} on {len(self.unique_ids)} series"
