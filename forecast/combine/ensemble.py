"""Combinations of models, above the backtester: the ensemble (a linear pool).

An :class:`Ensemble` holds member spec *objects* (a spec file's member names are
resolved when the file is loaded, by :func:`forecast.specs.load_model`), so fitting
never looks a model up by name, on this machine or on a Dask worker. Score weights
come from a backtest of the members on the training data, which is why this module
sits above :mod:`forecast.backtesting` and no model imports it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from forecast.backtesting import backtest
from forecast.exceptions import ConfigError
from forecast.models.base import FittedModel, ModelSpec, PanelData, Param, one_of, positive_int
from forecast.models.baselines import Climatology
from forecast.models.glm import NegBinGLM
from forecast.specs import load_model, register_spec_type


def _members_ok(v: Any) -> bool:
    if isinstance(v, Mapping):
        return len(v) >= 2 and all(isinstance(k, str) and isinstance(m, ModelSpec) for k, m in v.items())
    return isinstance(v, (tuple, list)) and len(v) >= 2 and all(isinstance(m, ModelSpec) for m in v)


def member_items(members: Mapping[str, ModelSpec] | tuple[ModelSpec, ...]) -> list[tuple[str, ModelSpec]]:
    """(label, spec) pairs: a dict's own labels, or each spec's model name (``name_2``, ...
    for a repeated one)."""
    if isinstance(members, Mapping):
        return [(str(k), m) for k, m in members.items()]
    out: list[tuple[str, ModelSpec]] = []
    seen: dict[str, int] = {}
    for m in members:
        seen[m.name] = seen.get(m.name, 0) + 1
        out.append((m.name if seen[m.name] == 1 else f"{m.name}_{seen[m.name]}", m))
    return out


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
        Param("members", (Climatology(), NegBinGLM()), "a tuple of at least 2 model specs (or a dict label -> spec)",
              _members_ok, "member specs; a spec file lists member spec names (models/<name>.toml)"),
        Param("weights", "equal", "one of 'equal', 'score'", one_of("equal", "score"), "how members are weighted"),
        Param("metric", "rps", "one of 'rps', 'log'", one_of("rps", "log"), "score used for score weights"),
        Param("weight_origins", 6, "an int >= 1", positive_int, "origins of the internal weighting backtest"),
        Param("weight_horizon", 1, "an int >= 1", positive_int, "horizon of the internal weighting backtest"),
    )
    fallbacks = ()
    handles_missing = True  # each member checks the panel itself when it is fitted

    def __init__(self, **params: Any) -> None:
        if "members" not in params:  # fresh default members: specs are mutable (set_params)
            params = {**params, "members": tuple(m.clone() for m in self.params[0].default)}
        super().__init__(**_named_members(params))

    def set_params(self, **params: Any) -> "Ensemble":
        return super().set_params(**_named_members(params))  # type: ignore[return-value]

    def fit(self, panel: pd.DataFrame, *, seed: int = 0, adjacency: Any = None) -> "EnsembleFitted":
        """Fit every member on ``panel``; ``seed`` seeds the internal weighting backtest;
        ``adjacency`` overrides the panel's (see :func:`with_adjacency`)."""
        panel = with_adjacency(panel, adjacency)
        self.validate()
        spec = self.clone()
        members = {label: m.clone() for label, m in member_items(spec.members)}
        for m in members.values():
            m.validate()
        required = tuple(dict.fromkeys(c for m in members.values() for c in m.required_columns()))
        data = PanelData.from_frame(panel, required)
        fitted = {label: m.fit(panel, seed=seed) for label, m in members.items()}
        weights, notes = _weights(spec, members, panel, [s.uid for s in data.series], seed)
        return EnsembleFitted(spec, data, fitted, weights, notes)

    def file_params(self) -> dict[str, Any]:
        """The hyperparameters as a spec file writes them: members by label (a loadable name)."""
        return {**self.get_params(), "members": [label for label, _ in member_items(self.members)]}

    @classmethod
    def from_file_params(cls, params: dict[str, Any], load: Callable[[str], ModelSpec]) -> "Ensemble":
        """The spec from a file's hyperparameters, member names resolved by ``load`` (now, not at fit)."""
        return cls(**_named_members(params, load))


def with_adjacency(panel: pd.DataFrame, adjacency: Any) -> pd.DataFrame:
    """``panel`` carrying ``adjacency`` (any form :func:`forecast.adjacency.read_adjacency`
    accepts) in its attrs, for members with neighbour terms; ``panel`` itself when None."""
    if adjacency is None:
        return panel
    from forecast.adjacency import as_attr

    out = panel.copy()
    out.attrs = {**panel.attrs, "adjacency": as_attr(adjacency)}
    return out


def _named_members(params: dict[str, Any], load: Callable[[str], ModelSpec] | None = None) -> dict[str, Any]:
    """``params`` with member spec names (or ``.toml`` paths) loaded into specs, labelled by
    the name: members are resolved when the ensemble is made, never when it is fitted."""
    names = params.get("members")
    if isinstance(names, (list, tuple)) and names and all(isinstance(n, (str, Path)) for n in names):
        load = load or load_model
        return {**params, "members": {(Path(n).stem if str(n).endswith(".toml") else str(n)): load(n)
                                      for n in names}}
    return params


def _weights(spec: Ensemble, members: dict[str, ModelSpec], panel: pd.DataFrame,
             uids: list[str], seed: int) -> tuple[np.ndarray, dict[str, str]]:
    M, n = len(members), len(uids)
    equal = np.full((M, n), 1.0 / M)
    if spec.weights == "equal":
        return equal, {}
    try:
        res = backtest(panel, members, spec.weight_horizon, n_origins=spec.weight_origins, seed=seed,
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

    def forecast(self, h: int, *, seed: int = 0, future: pd.DataFrame | None = None,
                 history_max: int | None = None):
        """The pool of the members' forecasts (each member draws with ``seed``)."""
        from forecast.distributions import CountForecast

        parts = [m.forecast(h, seed=seed, future=future, history_max=history_max) for m in self._members.values()]
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

    def members(self) -> dict[str, Any]:
        """Label -> fitted member model (read-only use)."""
        return dict(self._members)

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


# The spec type table of forecast.specs learns this combination here, explicitly (specs
# sits below this module and never imports it).
register_spec_type(Ensemble)
