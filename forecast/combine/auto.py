"""The ``auto`` model: a stacked linear pool of fast members, learnt on the training data.

Fitting ``auto`` backtests its members on the training data only (rolling origins that
end at the cutoff), learns the pool's weights from those held-out forecasts across all
series together (:mod:`forecast.stacking`), then fits every member on all the training
data. No weight ever sees an outcome after the cutoff, so ``forecast.backtest(panel,
["auto"])`` evaluates the whole procedure honestly.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from forecast.combine._auto_backtest import auto_blocks
from forecast.combine._weights import inner_weights
from forecast.combine.ensemble import EnsembleFitted, _members_ok, _named_members, member_items, with_adjacency
from forecast.models.base import ModelSpec, PanelData, Param, non_negative, one_of, positive_int
from forecast.specs import load_model, register_spec_type

#: Members of the default pool: fast models that differ in what they trust (the recent level,
#: the long-run rate, the season, the last count); loaded from the bundled spec files.
DEFAULT_MEMBERS = ("climatology", "naive", "negbin_glm", "negbin_glm_ar", "ingarch", "log_arma")
#: Members added when the panel carries an adjacency: models with spill-over between provinces.
SPATIAL_MEMBERS = ("endemic_epidemic", "ingarch_spillover")


def _names_ok(v: Any) -> bool:
    return isinstance(v, (tuple, list)) and all(isinstance(x, str) and x.strip() for x in v)


def step_weights(W: np.ndarray, h: int) -> np.ndarray:
    """(M, series * h) weights of forecast rows (series-major, then step) from (M, series, H)
    weights: step j uses W[:, :, min(j, H) - 1]."""
    steps = np.minimum(np.arange(h), W.shape[2] - 1)
    return W[:, :, steps].reshape(W.shape[0], -1)


def _finite_or_inf(v: Any) -> bool:
    return non_negative(v) or (isinstance(v, float) and math.isinf(v) and v > 0)


def _origins_ok(v: Any) -> bool:
    return v is None or positive_int(v)


class Auto(ModelSpec):
    """Stacked linear pool of member models, weights learnt on held-out training forecasts.

    Notes
    -----
    p_i(y) = Σ_m w_im p_im(y), with the weights w_i of series i chosen on the training
    data only: every member forecasts ``inner_horizon`` periods from each of the last
    ``inner_origins`` cutoffs (refitted every ``inner_refit_every``), and the weights
    maximise the pool's mean log score over those cells, pooled over the series of a
    group (``pool``: the event type, or all series), by EM with a Dirichlet pseudo-count
    κ (``kappa``) toward equal weights: w_m ← (Σ_c r_cm + κ)/(N + Mκ). Each series then
    moves from its group's weights w̄ only as far as its own cells support:
    w_im ← (Σ_t r_itm + s·w̄_m)/(T_i + s), s = ``shrinkage`` (``inf``: group weights).
    ``metric = "rps"`` minimises the pool's ranked probability score instead.
    """

    name = "auto"
    description = "Stacked pool of fast models, weights learnt by rolling origins on the training data"
    params = (
        Param("members", None, "a tuple of at least 2 model specs (or a dict label -> spec)", _members_ok,
              "member specs; a spec file lists member spec names (default: "
              + ", ".join(DEFAULT_MEMBERS) + ")"),
        Param("spatial_members", SPATIAL_MEMBERS, "a list of model spec names", _names_ok,
              "members added when the panel carries an adjacency (spill-over between provinces); "
              "without one they are skipped, said in diagnostics()"),
        Param("metric", "log", "one of 'log', 'rps'", one_of("log", "rps"), "score the pool's weights optimise"),
        Param("inner_origins", None, "None or an int >= 1", _origins_ok,
              "origins of the internal backtest (None: two years of periods, 12 to 52)"),
        Param("inner_horizon", None, "None or an int >= 1", _origins_ok,
              "horizon of the internal backtest; its cells of every step 1..h weigh the members "
              "(None: the horizon being forecast — a backtest's, or the run's [forecast] horizon; 1 in a bare fit)"),
        Param("inner_refit_every", 1, "an int >= 1", positive_int, "refit members every k internal origins"),
        Param("pool", "event_type", "one of 'event_type', 'global'", one_of("event_type", "global"),
              "which series share pooled weights"),
        Param("shrinkage", 20.0, "a float >= 0 (or inf)", _finite_or_inf,
              "prior strength, in cells, of a series' weights around its group's (inf: group weights only)"),
        Param("kappa", 1.0, "a float >= 0", non_negative, "Dirichlet pseudo-count toward equal weights"),
    )
    fallbacks = ()
    handles_missing = True  # each member checks the panel itself when it is fitted
    draws = True

    def __init__(self, **params: Any) -> None:
        if params.get("members") is None:  # fresh default members (specs are mutable)
            params = {**params, "members": {n: load_model(n) for n in DEFAULT_MEMBERS}}
        super().__init__(**_named_members(params))
        self._resolve_spatial()

    def set_params(self, **params: Any) -> "Auto":
        super().set_params(**_named_members(params))
        self._resolve_spatial()
        return self

    def _resolve_spatial(self) -> None:
        # Spatial members are resolved when the spec is made, never at fit time (workers).
        names = self.spatial_members if _names_ok(self.spatial_members) else ()
        self._spatial = {str(n): load_model(n) for n in names}

    def required_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for _, m in member_items(self.members) for c in m.required_columns()))

    def file_params(self) -> dict[str, Any]:
        """The hyperparameters as a spec file writes them: members by label (a loadable name)."""
        return {**self.get_params(), "members": [label for label, _ in member_items(self.members)]}

    @classmethod
    def from_file_params(cls, params: dict[str, Any], load) -> "Auto":
        return cls(**_named_members(params, load))

    def member_specs(self, panel: pd.DataFrame | None = None) -> dict[str, ModelSpec]:
        """Label -> (a clone of) each member spec; with a ``panel`` that carries an adjacency
        (``panel.attrs["adjacency"]``) the ``spatial_members`` too."""
        out = {label: m.clone() for label, m in member_items(self.members)}
        if panel is not None and panel.attrs.get("adjacency") is not None:
            for name, m in self._spatial.items():
                out.setdefault(name, m.clone())
        return out

    def skipped_members(self, panel: pd.DataFrame) -> list[str]:
        """The spatial members left out of a fit on ``panel`` (it carries no adjacency)."""
        if panel.attrs.get("adjacency") is not None:
            return []
        return [n for n in self._spatial if n not in dict(member_items(self.members))]

    def for_horizon(self, horizon: int) -> "Auto":
        """This spec with ``inner_horizon`` set to ``horizon`` when it is None (the default)."""
        spec = self.clone()
        if spec.inner_horizon is None:
            spec.set_params(inner_horizon=int(horizon))
        return spec

    def fit(self, panel: pd.DataFrame, *, seed: int = 0, progress: Any = None,
            adjacency: Any = None, cells: Any = None) -> "AutoFitted":
        """Learn the weights by an internal backtest on ``panel``, then fit every member on it
        (``progress(done, total)``, optional, hears the internal backtest's units; ``adjacency``
        overrides the panel's). ``cells``: the members' cells kept by a backtest of this model
        on the same panel (``BacktestResult.member_cells[label]``); used instead of the internal
        backtest when they are exactly its cells (same members, seed, series, data, cutoffs),
        so the weights are the same either way (to the members' solver tolerance)."""
        panel = with_adjacency(panel, adjacency)
        self.validate()
        spec = self.for_horizon(1)
        members = spec.member_specs(panel)
        for m in members.values():
            m.validate()
        data = PanelData.from_frame(panel, spec.required_columns())
        uids = [s.uid for s in data.series]
        weights, notes = inner_weights(spec, members, panel, uids, seed, progress, cells)
        fitted = {label: m.fit(panel, seed=seed) for label, m in members.items()}
        skipped = spec.skipped_members(panel)
        if skipped:  # said once per series, beside the weights' own notes
            why = f"{', '.join(skipped)} skipped: no adjacency ([data] adjacency or build_panel(adjacency=...))"
            notes = {u: "; ".join(x for x in (notes.get(u), why) if x) for u in uids}
        return AutoFitted(spec, data, fitted, weights, notes)


    def backtest_blocks(self, label: str, frame: pd.DataFrame, cutoffs: list, **ctx: Any) -> tuple[list[dict], Any]:
        """This model's blocks of a rolling-origin backtest, assembled from one backtest of its
        members (see :mod:`forecast.combine._auto_backtest`), and the members' cells a final fit
        on ``frame`` can reuse (or None); called by the backtester."""
        return auto_blocks(self, label, frame, cutoffs, **ctx)


class AutoFitted(EnsembleFitted):
    """Fitted members plus the learnt weights, per series and step ahead (see :meth:`weights`).

    ``_weights`` is (members, series, H): step h uses the weights learnt from the internal
    backtest's h-step cells; steps beyond H use step H's.
    """

    def forecast(self, h: int, *, seed: int = 0, future: pd.DataFrame | None = None,
                 history_max: int | None = None):
        """The pool of the members' forecasts, each step with its own weights."""
        from forecast.distributions import CountForecast

        parts = [m.forecast(h, seed=seed, future=future, history_max=history_max) for m in self._members.values()]
        return CountForecast.mixture(parts, step_weights(self._weights, h), model=self.model)

    def update(self, panel: pd.DataFrame) -> "AutoFitted":
        members = {k: m.update(panel) for k, m in self._members.items()}
        data = PanelData.from_frame(panel, ())
        W = self._weights
        old = {u: W[:, i, :] for i, u in enumerate(self.unique_ids)}
        equal = np.full(W.shape[::2], 1.0 / W.shape[0])
        new = np.stack([old.get(s.uid, equal) for s in data.series], axis=1)
        return AutoFitted(self._spec, data, members, new, self._notes)

    def weights(self, step: int | None = 1) -> pd.DataFrame:
        """Per series and member: the pool weight of step ``step`` ahead (``None``: every step,
        long, with a column ``h``)."""
        W = self._weights
        if step is not None:
            w = W[:, :, min(int(step), W.shape[2]) - 1]
            return pd.DataFrame(w.T, index=pd.Index(self.unique_ids, name="unique_id"),
                                columns=list(self._members)).reset_index()
        return pd.concat([self.weights(h).assign(h=h) for h in range(1, W.shape[2] + 1)], ignore_index=True)

    def diagnostics(self) -> pd.DataFrame:
        out = super().diagnostics()
        out["model_used"] = "auto"
        return out


register_spec_type(Auto)
