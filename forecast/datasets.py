"""Bundled sample data, and the simulator of the SIMULATED Tajik–Afghan border log.

The ``border_sim`` sample is *simulated*: every row carries ``source = "simulated"``
and no number in it describes real events. It exists so the demo, the tutorials and
the parameter-recovery tests of the count models have data whose generating process
is known exactly (see :func:`simulate_border_log` and ``border_sim_truth.json``).

Run ``python -m forecast.datasets [DIR]`` to regenerate the bundled files (default
DIR: the package data folder, i.e. the repository's ``data/``).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError

# Sample name -> file in the package data folder. A simulated sample's companions
# are named "<sample>_truth" and "<sample>_adjacency" (real data has no truth).
SAMPLES: dict[str, str] = {
    "border_sim": "border_sim_events.csv",
    "border_sim_adjacency": "border_sim_adjacency.csv",
    "border_sim_truth": "border_sim_truth.json",
    "ucdp_candidate_2026q1": "ucdp_candidate_2026q1_central_asia.csv",
}
_COMPANION_KINDS = ("truth", "adjacency")
EVENT_COLUMNS = ["event_id", "date", "country", "province", "event_type", "fatalities", "source"]
INTERVENTION = "2021-08"  # Taliban takeover of Kabul, 15 August 2021
AFG, TJK = "Afghanistan", "Tajikistan"
DRS = "Districts of Republican Subordination"
GBAO = "Gorno-Badakhshan"

# Undirected province adjacency. Cross-border pairs follow the Panj / Amu Darya:
# Khatlon faces Balkh (a short Amu Darya stretch at Kaldar district, east of the
# Uzbek tripoint; some sources omit it), Kunduz (Qala-i-Zal, Imam Sahib), Takhar
# (Darqad, Yangi Qala, Chah Ab) and Badakhshan (Khwahan, opposite Shamsiddin Shohin);
# Gorno-Badakhshan faces only Afghan Badakhshan (Darvoz to Ishkoshim). Takhar does
# not touch Gorno-Badakhshan: Badakhshan's Khwahan/Ragh lie in between.
_ADJACENCY: list[tuple[str, str, str, str]] = [
    (TJK, "Sughd", TJK, DRS), (TJK, DRS, TJK, "Khatlon"), (TJK, DRS, TJK, GBAO),
    (TJK, DRS, TJK, "Dushanbe"), (TJK, "Khatlon", TJK, GBAO),
    (AFG, "Badakhshan", AFG, "Takhar"), (AFG, "Takhar", AFG, "Kunduz"),
    (AFG, "Kunduz", AFG, "Balkh"),
    (TJK, "Khatlon", AFG, "Balkh"), (TJK, "Khatlon", AFG, "Kunduz"),
    (TJK, "Khatlon", AFG, "Takhar"), (TJK, "Khatlon", AFG, "Badakhshan"),
    (TJK, GBAO, AFG, "Badakhshan"),
]

# Seasonal shape per event type: (amplitude, peak month) of harmonics 1 and 2, scaled
# per series. Clashes/attacks follow the spring-summer fighting season (peak between
# June and July); seizures follow the opium harvest (Apr-Jun) with a lag, peaking Jul-Aug.
_SHAPES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "clash": ((1.0, 6.5), (0.2, 3.5)),
    "attack": ((1.0, 6.5), (0.2, 3.5)),
    "seizure": ((1.0, 7.5), (0.15, 8.0)),
}
_NEG_INF = float("-inf")
# (country, province, event_type): b0, b_trend (per year), seasonal scale, gamma
# (spillover), rho (own lag), delta (step from 2021-08), alpha (NB2 overdispersion).
# b0 = -inf makes a structural-zero series (mu = 0 in every month).
_PARAMS: dict[tuple[str, str, str], tuple[float, ...]] = {
    (AFG, "Badakhshan", "clash"): (1.3, -0.02, 0.8, 0.0, 0.25, -1.2, 0.6),
    (AFG, "Badakhshan", "attack"): (0.2, 0.0, 0.5, 0.0, 0.0, -0.5, 0.9),
    (AFG, "Badakhshan", "seizure"): (1.2, 0.02, 0.5, 0.0, 0.0, -0.4, 0.5),
    (AFG, "Balkh", "clash"): (1.0, 0.0, 0.7, 0.0, 0.2, -1.2, 0.6),
    (AFG, "Balkh", "attack"): (0.9, 0.0, 0.4, 0.0, 0.0, -0.4, 0.9),
    (AFG, "Balkh", "seizure"): (1.5, 0.02, 0.4, 0.0, 0.0, -0.3, 0.4),
    (AFG, "Kunduz", "clash"): (1.6, 0.03, 0.8, 0.0, 0.25, -1.5, 0.4),
    (AFG, "Kunduz", "attack"): (1.0, 0.0, 0.5, 0.0, 0.0, -0.7, 0.7),
    (AFG, "Kunduz", "seizure"): (0.6, 0.0, 0.5, 0.0, 0.0, -0.3, 0.8),
    (AFG, "Takhar", "clash"): (1.1, 0.0, 0.8, 0.0, 0.25, -1.3, 0.5),
    (AFG, "Takhar", "attack"): (0.5, 0.0, 0.5, 0.0, 0.0, -0.6, 0.8),
    (AFG, "Takhar", "seizure"): (0.8, 0.02, 0.5, 0.0, 0.0, -0.3, 0.6),
    (TJK, DRS, "clash"): (-1.8, 0.0, 0.4, 0.0, 0.0, 0.0, 1.2),
    (TJK, DRS, "attack"): (-2.3, 0.0, 0.3, 0.0, 0.0, 0.0, 1.5),
    (TJK, DRS, "seizure"): (0.0, 0.03, 0.5, 0.0, 0.0, 0.2, 0.6),
    (TJK, "Dushanbe", "clash"): (_NEG_INF, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    (TJK, "Dushanbe", "attack"): (-2.5, 0.0, 0.3, 0.0, 0.0, 0.0, 1.5),
    (TJK, "Dushanbe", "seizure"): (1.0, 0.03, 0.3, 0.0, 0.0, 0.2, 0.5),
    (TJK, GBAO, "clash"): (-1.5, 0.0, 0.4, 0.2, 0.0, 0.4, 1.0),
    (TJK, GBAO, "attack"): (-2.8, 0.0, 0.3, 0.15, 0.0, 0.0, 1.5),
    (TJK, GBAO, "seizure"): (0.2, 0.03, 0.6, 0.25, 0.0, 0.4, 0.4),
    (TJK, "Khatlon", "clash"): (-1.0, 0.0, 0.5, 0.3, 0.0, 0.3, 0.8),
    (TJK, "Khatlon", "attack"): (-2.5, 0.0, 0.3, 0.2, 0.0, 0.2, 1.2),
    (TJK, "Khatlon", "seizure"): (0.3, 0.04, 0.6, 0.35, 0.0, 0.5, 0.3),
    (TJK, "Sughd", "clash"): (-2.0, 0.0, 0.3, 0.0, 0.0, 0.0, 1.2),
    (TJK, "Sughd", "attack"): (-4.0, 0.0, 0.3, 0.0, 0.0, 0.0, 1.5),
    (TJK, "Sughd", "seizure"): (0.3, 0.03, 0.4, 0.0, 0.0, 0.1, 0.5),
}
# Fatalities per event ~ NB2(mean, alpha); seizures are almost always bloodless.
FATALITIES: dict[str, dict[str, float]] = {
    "clash": {"mean": 1.0, "alpha": 2.0}, "attack": {"mean": 1.5, "alpha": 2.0},
    "seizure": {"mean": 0.03, "alpha": 1.0},
}
FORMULA = (
    "Y[s,t] ~ NB2(mu[s,t], alpha[s]), Var = mu + alpha*mu^2; "
    "log mu[s,t] = b0[s] + b_trend[s]*(t/12) "
    "+ sum_{k=1,2} (cos_k[s]*cos(2*pi*k*m/12) + sin_k[s]*sin(2*pi*k*m/12)) "
    "+ gamma[s]*log(1 + X[s,t-1]) + rho[s]*log(1 + Y[s,t-1]) + delta[s]*1{month >= 2021-08}; "
    "t = months since start (0-based), m = calendar month 1..12, "
    "X[s,t-1] = sum of Y[a,t-1] over the Afghan provinces a adjacent to s, same event type; "
    "Y[s,-1] = X[s,-1] = 0; b0 = -inf (JSON null) means mu = 0 in every month"
)


@dataclass(frozen=True)
class SimulatedLog:
    """A simulated incident log and the truth that generated it.

    Attributes
    ----------
    events : one row per incident, columns :data:`EVENT_COLUMNS` (``date`` datetime64).
    counts : monthly truth panel: ``unique_id, ds, y, mu, country, province, event_type``.
    truth : JSON-serialisable parameters, formula, seed and period.
    adjacency : ``country_a, province_a, country_b, province_b``, each pair once, sorted.
    """

    events: pd.DataFrame
    counts: pd.DataFrame
    truth: dict
    adjacency: pd.DataFrame


def _seasonal(event_type: str, scale: float) -> dict[str, float]:
    # Rounded so the JSON is exact and identical on every platform's libm; the
    # simulation uses these rounded values, so the truth file is the truth.
    out: dict[str, float] = {}
    for k, (amp, peak) in enumerate(_SHAPES[event_type], start=1):
        phase = 2 * np.pi * k * peak / 12
        out[f"cos{k}"] = round(scale * amp * float(np.cos(phase)), 4) + 0.0
        out[f"sin{k}"] = round(scale * amp * float(np.sin(phase)), 4) + 0.0
    return out


def fourier_terms(months: np.ndarray) -> np.ndarray:
    """Columns cos1, sin1, cos2, sin2 of calendar months ``months`` (1..12)."""
    ang = 2 * np.pi * np.asarray(months, dtype=float)[:, None] / 12
    return np.column_stack([np.cos(ang), np.sin(ang), np.cos(2 * ang), np.sin(2 * ang)])


def _adjacency_frame() -> pd.DataFrame:
    pairs = sorted(tuple(sorted([(a, b), (c, d)])) for a, b, c, d in _ADJACENCY)
    rows = [(a[0], a[1], b[0], b[1]) for a, b in pairs]
    return pd.DataFrame(rows, columns=["country_a", "province_a", "country_b", "province_b"])


def _periods(start: str, end: str) -> pd.PeriodIndex:
    try:
        p0, p1 = pd.Period(start, freq="M"), pd.Period(end, freq="M")
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"start/end must be months like '2012-01'. Got {start!r}, {end!r}.") from exc
    if p1 < p0:
        raise ConfigError(f"end ({end}) must not be before start ({start}).")
    return pd.period_range(p0, p1, freq="M")


def _nb2(rng: np.random.Generator, mu: np.ndarray | float, alpha: float, size: Any = None) -> Any:
    # NB2 as numpy's (n, p) parametrisation: n = 1/alpha, p = 1/(1 + alpha*mu).
    return rng.negative_binomial(1.0 / alpha, 1.0 / (1.0 + alpha * np.asarray(mu)), size=size)


def simulate_border_log(seed: int = 20120101, start: str = "2012-01", end: str = "2025-12") -> SimulatedLog:
    """Simulate the SIMULATED Tajik–Afghan border incident log.

    Parameters
    ----------
    seed : non-negative integer; the only source of randomness.
    start, end : first and last month, ``"YYYY-MM"``.

    Returns
    -------
    SimulatedLog
        Events, the monthly truth panel, the parameters and the adjacency table.

    Notes
    -----
    For series s (country/province/event_type) and month t:

    .. math::
        Y_{s,t} \\sim \\mathrm{NB2}(\\mu_{s,t}, \\alpha_s),\\quad
        \\log\\mu_{s,t} = b_{0,s} + b_{trend,s}\\,t/12 + \\sum_{k=1}^{2}(c_{k,s}\\cos\\tfrac{2\\pi km}{12}
        + s_{k,s}\\sin\\tfrac{2\\pi km}{12}) + \\gamma_s\\log(1+X_{s,t-1})
        + \\rho_s\\log(1+Y_{s,t-1}) + \\delta_s 1\\{t \\ge 2021\\text{-}08\\}

    with :math:`X_{s,t-1}` the previous month's total of the same event type in the
    Afghan provinces adjacent to s (only Khatlon and Gorno-Badakhshan have them).
    Each monthly count becomes that many events on uniformly drawn days.

    Months are simulated in order for all series at once, because spillover couples
    the Afghan series into the Tajik ones; it enters with a one-month lag, so the
    order of series within a month does not matter. Every series draws from its own
    streams, ``default_rng([seed, crc32(uid), k])`` with k = 0 counts, 1 days,
    2 fatalities, so adding a series or shortening ``end`` leaves the other draws
    unchanged.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"The 'seed' parameter must be an int >= 0. Got {seed!r} instead.")
    periods = _periods(start, end)
    keys = sorted(_PARAMS)
    uids = ["/".join(k) for k in keys]
    n_s, n_t = len(keys), len(periods)
    par = np.array([_PARAMS[k] for k in keys], dtype=float)
    b0, trend, _, gamma, rho, delta, alpha = par.T
    seas = [_seasonal(k[2], _PARAMS[k][2]) for k in keys]
    coef = np.array([[d["cos1"], d["sin1"], d["cos2"], d["sin2"]] for d in seas])

    neigh: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for a_c, a_p, b_c, b_p in _ADJACENCY:
        neigh.setdefault((a_c, a_p), []).append((b_c, b_p))
        neigh.setdefault((b_c, b_p), []).append((a_c, a_p))
    # Spillover matrix: w[s, a] = 1 when a is an Afghan series of the same type adjacent to Tajik s.
    index = {k: i for i, k in enumerate(keys)}
    w = np.zeros((n_s, n_s))
    for i, (c, p, e) in enumerate(keys):
        for nc, npv in neigh.get((c, p), []) if c == TJK else []:
            if nc == AFG:
                w[i, index[(nc, npv, e)]] = 1.0

    t = np.arange(n_t)
    step = (periods >= pd.Period(INTERVENTION, freq="M")).astype(float)
    base = b0[:, None] + trend[:, None] * t / 12 + coef @ fourier_terms(periods.month).T + delta[:, None] * step
    crc = [zlib.crc32(u.encode("utf-8")) for u in uids]
    rngs = [[np.random.default_rng([seed, c, k]) for k in range(3)] for c in crc]

    y = np.zeros((n_s, n_t), dtype=np.int64)
    mu = np.zeros((n_s, n_t))
    prev = np.zeros(n_s)
    for j in range(n_t):
        mu[:, j] = np.exp(base[:, j] + gamma * np.log1p(w @ prev) + rho * np.log1p(prev))
        for i in range(n_s):
            if mu[i, j] > 0:  # structural zeros draw nothing
                y[i, j] = _nb2(rngs[i][0], mu[i, j], alpha[i])
        prev = y[:, j].astype(float)

    starts = periods.to_timestamp().values.astype("datetime64[D]")
    ndays = periods.days_in_month.to_numpy()
    parts = []
    for i, (c, p, e) in enumerate(keys):
        month = np.repeat(t, y[i])
        day = np.floor(rngs[i][1].random(month.size) * ndays[month]).astype(np.int64)
        fat = _nb2(rngs[i][2], FATALITIES[e]["mean"], FATALITIES[e]["alpha"], size=month.size)
        parts.append(pd.DataFrame({"date": starts[month] + day, "country": c, "province": p,
                                   "event_type": e, "fatalities": fat.astype(np.int64)}))
    events = pd.concat(parts, ignore_index=True)
    events["date"] = pd.to_datetime(events["date"])
    events = events.sort_values(["date", "country", "province", "event_type"], kind="stable", ignore_index=True)
    events.insert(0, "event_id", [f"SIM-{n:06d}" for n in range(1, len(events) + 1)])
    events["source"] = "simulated"

    counts = pd.DataFrame({
        "unique_id": np.repeat(uids, n_t), "ds": np.tile(periods.to_timestamp().values, n_s),
        "y": y.ravel(), "mu": mu.ravel(),
        "country": np.repeat([k[0] for k in keys], n_t), "province": np.repeat([k[1] for k in keys], n_t),
        "event_type": np.repeat([k[2] for k in keys], n_t),
    })

    series = {}
    for i, k in enumerate(keys):
        series[uids[i]] = {
            "country": k[0], "province": k[1], "event_type": k[2],
            "b0": None if np.isneginf(b0[i]) else float(b0[i]), "structural_zero": bool(np.isneginf(b0[i])),
            "b_trend": float(trend[i]), "seasonal": seas[i], "gamma": float(gamma[i]), "rho": float(rho[i]),
            "delta": float(delta[i]), "alpha": float(alpha[i]),
            "neighbours": sorted("/".join(n) for n in neigh.get(k[:2], [])),
            "spillover_from": [uids[a] for a in np.flatnonzero(w[i])],
            "realised": {"n_events": int(y[i].sum()), "mean_per_month": round(float(y[i].mean()), 4)},
        }
    truth = {
        "simulated": True,
        "note": "SIMULATED data: generated, not observed; supports no real-world inference.",
        "generator": "forecast.datasets.simulate_border_log", "seed": int(seed),
        "start": str(periods[0]), "end": str(periods[-1]), "intervention": INTERVENTION, "formula": FORMULA,
        "streams": "numpy.random.default_rng([seed, zlib.crc32(unique_id), k]); k=0 counts, 1 days, 2 fatalities",
        "event_days": "uniform over the days of the month", "fatalities": FATALITIES, "series": series,
    }
    return SimulatedLog(events=events, counts=counts, truth=truth, adjacency=_adjacency_frame())


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def write_border_sample(directory: str | os.PathLike[str]) -> list[Path]:
    """Write the default-seed ``border_sim`` files into ``directory``.

    Writes ``border_sim_events.csv``, ``border_sim_truth.json`` (indent 2, sorted
    keys) and ``border_sim_adjacency.csv``. Files are written to a temporary folder
    first and moved into place, so a failure never leaves half-written files.

    Returns
    -------
    list of Path
        The three paths, in that order.
    """
    log = simulate_border_log()
    events = log.events.assign(date=log.events["date"].dt.strftime("%Y-%m-%d"))[EVENT_COLUMNS]
    payload = {
        SAMPLES["border_sim"]: _csv_bytes(events),
        SAMPLES["border_sim_truth"]: json.dumps(log.truth, indent=2, sort_keys=True, allow_nan=False).encode() + b"\n",
        SAMPLES["border_sim_adjacency"]: _csv_bytes(log.adjacency),
    }
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".border_sim-", dir=out))
    try:
        for name, data in payload.items():
            (tmp / name).write_bytes(data)
        for name in payload:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [out / name for name in payload]


def _data_file(file_name: str) -> Path:
    return Path(str(resources.files("forecast") / "_data" / file_name))


def sample_path(name: str) -> Path:
    """Path of the bundled sample ``name`` (a key of :data:`SAMPLES`).

    Raises
    ------
    ConfigError
        If ``name`` is not a known sample; the message lists the available ones.
    """
    if name not in SAMPLES:
        raise ConfigError(f"Unknown sample {name!r}. Available samples: {', '.join(sorted(SAMPLES))}.")
    return _data_file(SAMPLES[name])


def _is_companion(name: str) -> bool:
    return any(name.endswith("_" + kind) and name.rsplit("_", 1)[0] in SAMPLES for kind in _COMPANION_KINDS)


def _companion(name: str, kind: str) -> Path:
    sample_path(name)  # validates the name
    key = f"{name}_{kind}"
    if _is_companion(name) or key not in SAMPLES:
        have = ", ".join(sorted(k.rsplit("_", 1)[0] for k in SAMPLES if k.endswith("_" + kind)))
        raise ConfigError(f"Sample {name!r} has no {kind} file; samples with one: {have}.")
    return sample_path(key)


def load_sample(name: str = "border_sim") -> pd.DataFrame:
    """Read a bundled event log through :func:`forecast.ingest.read_events`.

    Returns the canonical events frame (``event_id, date, country, province,
    event_type, count, fatalities, source``).
    """
    path = sample_path(name)
    if _is_companion(name):
        raise ConfigError(f"{name!r} is not an event log; read it with forecast.datasets.truth() or adjacency().")
    from forecast import ingest  # lazy: ingest is a later stage, and heavy to import

    return ingest.read_events(path)


def adjacency(name: str = "border_sim") -> pd.DataFrame:
    """Province adjacency of a simulated sample: ``country_a, province_a, country_b, province_b``."""
    return pd.read_csv(_companion(name, "adjacency"), dtype=str, keep_default_na=False)


def truth(name: str = "border_sim") -> dict:
    """True parameters of a simulated sample (the parsed truth JSON)."""
    return json.loads(_companion(name, "truth").read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> list[Path]:
    """Regenerate the bundled ``border_sim`` files into ``argv[0]`` (default: package data folder)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else Path(__file__).resolve().parent / "_data"
    paths = write_border_sample(target)
    print("\n".join(f"wrote {p} ({p.stat().st_size:,} bytes)" for p in paths))
    return paths


if __name__ == "__main__":
    main()
