"""The backtest's result assembled as tasks finish (forecast._backtest_collect).

The reference is what the backtest did before streaming: keep every block, then one
``pd.concat`` per frame and a left merge of the panel's keys. The collector must give
the same frames (rows, order, values, dtypes) whatever order blocks arrive in, while
building each frame once (no second copy of the result at its peak).
"""
from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest

import forecast
from forecast import _backtest_collect, backtesting
from forecast._backtest_collect import Collector

PROVINCES = ["Khatlon", "Sughd"]


class ConcatCollector:
    """The assembly before streaming: blocks kept in arrival order, concatenated at the end."""

    def __init__(self, order, keep_pmf):
        self.order, self.keep_pmf, self.by_key = list(order), keep_pmf, {}

    def add(self, label, block, seq):
        self.by_key.setdefault((label, block["cutoff"]), []).append(block)

    def result(self, panel_keys=None):
        blocks = [b for k in self.order for b in self.by_key.get(k, [])]
        fcs = pd.concat([b["forecasts"] for b in blocks], ignore_index=True)
        if panel_keys is not None:
            fcs = fcs.merge(panel_keys, on="unique_id", how="left")
        return (fcs, pd.concat([b["scores"] for b in blocks], ignore_index=True),
                pd.concat([b["diagnostics"] for b in blocks], ignore_index=True),
                [b["pmf"] for b in blocks] if self.keep_pmf else None)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """Six series (two provinces x three event types, so the keys are merged in), 2019-2025."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = forecast.load_sample("border_sim")
        ev = ev[ev["province"].isin(PROVINCES) & (ev["date"] >= "2019-01-01")]
        return forecast.build_panel(ev, "month", as_of="2025-12-31")


def _models() -> dict:
    # Two models whose diagnostics have different columns (the collector's concat path) and
    # sample paths (random streams), in several chunks of two series.
    return {"climatology": "climatology",
            "negbin_glm": forecast.load_model("negbin_glm").set_params(lags=(1,), n_paths=100)}


SETTINGS = dict(horizon=3, n_origins=4, refit_every=2, seed=5, progress=False)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The streamed forecasts' categorical columns as the text they encode (categories sorted)."""
    out = frame.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            cats = out[c].cat.categories
            assert cats.is_monotonic_increasing and cats.dtype == "str", c
            out[c] = out[c].astype(cats.dtype)
    return out


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(_as_text(a.forecasts), _as_text(b.forecasts), check_exact=True)
    pd.testing.assert_frame_equal(a.point_scores, b.point_scores, check_exact=True)
    pd.testing.assert_frame_equal(a.diagnostics, b.diagnostics, check_exact=True)
    assert np.array_equal(a.pmf, b.pmf)


def test_streamed_result_equals_concatenating_every_block(panel, monkeypatch):
    monkeypatch.setattr(backtesting, "SERIES_CHUNK", 2)
    streamed = forecast.backtest(panel, _models(), **SETTINGS)
    monkeypatch.setattr(backtesting, "Collector", ConcatCollector)
    reference = forecast.backtest(panel, _models(), **SETTINGS)
    assert {"province", "event_type"} <= set(reference.forecasts.columns)  # the keys were merged in
    assert reference.forecasts["unique_id"].nunique() == 6 and len(reference.forecasts) > 100
    text = [c for c in reference.forecasts.columns if reference.forecasts[c].dtype == "str"]
    assert {"unique_id", "model", "province"} <= set(text)
    assert all(isinstance(streamed.forecasts[c].dtype, pd.CategoricalDtype) for c in text)
    _same(streamed, reference)


def _block(cutoff, uids, rng, model="m", extra=False) -> dict:
    n = len(uids)
    fc = pd.DataFrame({"unique_id": pd.array(uids, dtype="str"), "ds": pd.Timestamp(cutoff) + pd.to_timedelta(
        np.arange(n), "D"), "cutoff": pd.Timestamp(cutoff), "h": np.arange(1, n + 1), "model": model,
        "mean": rng.random(n), "lo-80": rng.integers(0, 5, n)})
    fc["model"] = fc["model"].astype(str)
    sc = pd.DataFrame(rng.random((n, 3)), columns=["log", "rps", "mase"])
    diag = pd.DataFrame({"unique_id": pd.array(uids, dtype="str"), "fallback": pd.array(
        [None if i % 3 == 0 else "none" for i in range(n)], dtype="str")})
    if extra:
        diag["converged"] = True
    return dict(cutoff=pd.Timestamp(cutoff), forecasts=fc, scores=sc, diagnostics=diag, pmf=None)


def test_blocks_arriving_in_any_order_give_the_frames_in_order():
    rng = np.random.default_rng(3)
    cutoffs = ["2020-01-01", "2020-02-01"]
    order = [(m, pd.Timestamp(c)) for m in ("b", "a") for c in cutoffs]
    blocks = [(m, _block(c, [f"s{j}" for j in range(t * 3, t * 3 + 3)] + [None] * (t == 1), rng, m, m == "a"),
               (t, 0)) for m in ("b", "a") for c in cutoffs for t in range(3)]
    in_order = ConcatCollector(order, False)
    for m, b, seq in blocks:
        in_order.add(m, b, seq)
    shuffled = Collector(order, False)
    for k in np.random.default_rng(0).permutation(len(blocks)):
        shuffled.add(*blocks[k])
    keys = pd.DataFrame({"unique_id": [f"s{j}" for j in range(9)], "province": [f"p{j % 2}" for j in range(9)]})
    got, want = shuffled.result(keys), in_order.result(keys)
    assert got[0]["unique_id"].isna().sum() == 4 and got[2]["fallback"].isna().any()  # missing text stays missing
    assert "converged" in got[2].columns  # (diagnostics of unequal columns: aligned as concat does)
    # (a row without a series id makes the keys a plain merge, which gives text columns back)
    pd.testing.assert_frame_equal(_as_text(got[0]), want[0], check_exact=True)
    for g, w in zip(got[1:3], want[1:3]):
        pd.testing.assert_frame_equal(g, w, check_exact=True)


def _numeric_blocks(n_blocks: int, rows: int) -> list[dict]:
    rng = np.random.default_rng(1)
    cut = pd.Timestamp("2020-01-01")
    return [dict(cutoff=cut, forecasts=pd.DataFrame(rng.random((rows, 8)), columns=[f"f{i}" for i in range(8)]),
                 scores=pd.DataFrame(rng.random((rows, 16)), columns=[f"s{i}" for i in range(16)]),
                 diagnostics=pd.DataFrame({"x": np.zeros(4)}), pmf=None) for _ in range(n_blocks)]


def _extra_peak(collector_cls, blocks) -> tuple[float, float]:
    """Bytes allocated at the peak of ``result()`` beyond what the collector held before it,
    and the size of the result frames (tracemalloc sees numpy's allocations)."""
    tracemalloc.start()  # (before the blocks are added: what the collector holds is traced)
    try:
        col = collector_cls([("m", blocks[0]["cutoff"])], False)
        for i, b in enumerate(blocks):
            col.add("m", b, (i, 0))
        blocks.clear()  # the collector alone holds the blocks now, as in a backtest
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = col.result()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - before, float(sum(f.memory_usage(deep=True).sum() for f in out[:2]))


def test_the_result_is_built_without_a_second_copy():
    # A concat holds every block and the result at once (about twice the result); the
    # collector frees each column's pieces as it joins them, so it needs little beyond
    # what it held. The reference measurement guards the test: it must show the copy.
    extra, size = _extra_peak(Collector, _numeric_blocks(40, 2000))
    extra_concat, size_concat = _extra_peak(ConcatCollector, _numeric_blocks(40, 2000))
    assert size == size_concat and extra_concat > 0.9 * size
    assert extra < 0.25 * size, (extra, size)


def test_text_columns_are_held_as_codes_until_the_end():
    col = Collector([("m", pd.Timestamp("2020-01-01"))], False)
    b = _block("2020-01-01", ["s1", "s2", "s1"], np.random.default_rng(0))
    col.add("m", b, (0, 0))
    piece = col.frames["forecasts"].pieces[0][1]
    assert piece.columns["unique_id"].dtype == np.int32 and piece.columns["model"].dtype == np.int32
    assert piece.columns["unique_id"].tolist() == [1, 2, 1]
    assert not np.shares_memory(piece.columns["mean"], b["forecasts"]["mean"].to_numpy())  # freed on its own
    assert _backtest_collect.KINDS == ("forecasts", "scores", "diagnostics")


def test_a_pooled_model_over_many_series_splits_its_origins(panel, monkeypatch):
    # climatology pools every series, so it is not chunked; over more than POOLED_TASK_SERIES series
    # its origins are split instead (each task's result stays small), which changes no number.
    models = {"climatology": "climatology"}
    whole = forecast.backtest(panel, models, **SETTINGS)
    monkeypatch.setattr(backtesting, "POOLED_TASK_SERIES", 3)
    spec = forecast.load_model("climatology")
    assert getattr(spec, "pools_series", False)
    frame = panel.assign(ds=pd.to_datetime(panel["ds"]))
    cutoffs = sorted(frame["ds"].unique())[-4:]
    tasks = backtesting._plan({"climatology": spec}, frame, cutoffs, 2, 1)
    assert [len(t[2]) for t in tasks] == [2, 2] and all(t[3]["unique_id"].nunique() == 6 for t in tasks)
    _same(whole, forecast.backtest(panel, models, **SETTINGS))


def test_the_heap_is_trimmed_as_blocks_arrive_at_most_about_16_times_per_doubling(monkeypatch):
    from forecast import _backtest_collect as bc

    calls = []
    monkeypatch.setattr(bc, "_give_back", lambda: calls.append(1))
    monkeypatch.setattr(bc, "_TRIM_EVERY", 2**20)  # 1 MiB: this test's blocks are small
    rng = np.random.default_rng(0)
    cut = pd.Timestamp("2020-01-01")
    col = Collector([("m", cut)], False)
    rows, per_block = 4000, None
    for i in range(400):  # 400 blocks of ~4000 x 5 float64 columns (+ small frames): ~64 MiB in all
        blk = dict(cutoff=cut, forecasts=pd.DataFrame(rng.random((rows, 3)), columns=list("abc")),
                   scores=pd.DataFrame(rng.random((rows, 2)), columns=["log", "rps"]),
                   diagnostics=pd.DataFrame({"x": np.zeros(2)}), pmf=None)
        per_block = per_block or sum(int(f.memory_usage(index=False).sum()) for f in
                                     (blk["forecasts"], blk["scores"], blk["diagnostics"]))
        col.add("m", blk, (i, 0))
    total = 400 * per_block
    assert total > 60 * 2**20
    # every 1 MiB until 16 MiB are held, then every held/16: 16 + 16 ln(total / 16 MiB) trims, roughly
    want = 16 + 16 * np.log(total / (16 * 2**20))
    assert 0.6 * want <= len(calls) <= 1.2 * want, (len(calls), want)


def test_steps_and_interval_bounds_are_int32_and_equal_the_forecast_table(panel):
    res = forecast.backtest(panel, {"nb": "negbin_glm"}, horizon=2, n_origins=2, progress=False, keep_pmf=True)
    ints = ["h"] + [c for c in res.forecasts.columns if c.startswith(("lo-", "hi-"))]
    assert len(ints) == 7 and all(res.forecasts[c].dtype == np.int32 for c in ints)
    table = pd.concat([fc.to_frame() for fc in res._pmfs], ignore_index=True)
    for c in ints:
        assert np.array_equal(res.forecasts[c].to_numpy(np.int64), table[c].to_numpy(np.int64)), c
