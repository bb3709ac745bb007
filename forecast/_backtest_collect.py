"""A backtest's result assembled as its tasks finish, in bounded memory.

Every task of :func:`forecast.backtesting.backtest` returns blocks (one model, one
origin, one chunk of series), each with three small frames. Holding all of them and
concatenating at the end held the result twice (6.9 GB in the main process for
20,000 series x 24 origins x 4 models). Here each block is reduced on arrival to plain
column arrays (text columns as int32 codes into one table of values per column, so a
series id or a model label is stored once, not once per row), and each result frame is
built once at the end, column by column, each column's pieces freed as soon as they
are joined: the peak is the result plus one column, and the frames equal
``pd.concat(blocks, ignore_index=True)`` (same rows, order, values and dtypes), except that
the forecasts' text columns (``unique_id``, ``model`` and the panel's key columns) are
pandas Categoricals with sorted categories: 20,000 series x 24 origins x h 6 x 4 models are
11.5 M forecast rows, whose ids and keys as strings were a third of the result's memory.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

#: The frames of a block, in the order of :class:`~forecast.backtesting.BacktestResult`.
KINDS = ("forecasts", "scores", "diagnostics")


class _Piece:
    """One block's frame as column arrays, with its columns' names and dtypes."""

    __slots__ = ("columns", "n", "schema")

    def __init__(self, columns: dict[str, Any], n: int, schema: tuple) -> None:
        self.columns, self.n, self.schema = columns, n, schema


def _coded(dtype: Any) -> bool:
    # Text (pandas' str/string dtypes): many rows, few distinct values.
    return isinstance(dtype, pd.StringDtype)


class _Frame:
    """The pieces of one kind of frame, and the value tables of its text columns."""

    def __init__(self, categorical: bool = False) -> None:
        self.categorical = categorical  # text columns built as pandas Categoricals (see _text)
        self.pieces: list[tuple[tuple, _Piece]] = []
        self.tables: dict[str, dict[Any, int]] = {}  # column -> value -> code (code 0: missing)
        self.codes: dict[str, np.ndarray] = {}  # the joined codes of the text columns of the last build
        self._last: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # column -> last block's (values, codes)

    def add(self, order: tuple, df: pd.DataFrame) -> int:
        """Keep ``df`` as column arrays; returns the bytes of its columns (``memory_usage``'s count)."""
        cols: dict[str, Any] = {}
        size = 0
        for name, s in df.items():
            arr = s.array
            size += arr.nbytes
            if _coded(s.dtype):
                cols[name] = self._codes(name, arr)
            else:  # numbers, times, bool, object: a copy of the column, so that each can be freed
                # on its own (a view would keep the block's whole 2-D array alive until its last column)
                cols[name] = s.to_numpy(copy=True) if isinstance(s.dtype, np.dtype) else arr.copy()
        self.pieces.append((order, _Piece(cols, len(df), tuple(zip(df.columns, df.dtypes)))))
        return size

    def add_columns(self, order: tuple, cols: dict[str, Any], n: int) -> int:
        """:meth:`add` of the frame ``pd.DataFrame(cols)`` (``n`` rows of 1-D arrays, see
        :meth:`~forecast._backtest_block.Block.columns`), from the arrays themselves."""
        out: dict[str, Any] = {}
        size = 0
        schema = []
        for name, arr in cols.items():
            size += arr.nbytes
            schema.append((name, arr.dtype))
            if _coded(arr.dtype):
                out[name] = self._codes(name, arr)
            elif isinstance(arr, np.ndarray):  # (an array that owns its data is freed on its own)
                out[name] = arr if arr.base is None else arr.copy()
            else:
                out[name] = arr.to_numpy(copy=True) if isinstance(arr.dtype, np.dtype) else arr.copy()
        self.pieces.append((order, _Piece(out, n, tuple(schema))))
        return size

    def _codes(self, name: str, arr: Any) -> np.ndarray:
        """The codes of text column ``name``'s values ``arr`` in its value table (0: missing)."""
        codes, uniques = pd.factorize(arr, use_na_sentinel=True)
        values = np.asarray(uniques, dtype=object)
        # The blocks of a chunk of series carry the same ids (and labels) at every origin: their
        # codes are those of the last block when the values are, which one comparison tells.
        last = self._last.get(name)
        if last is not None and len(last[0]) == len(values) and (last[0] == values).all():
            known = last[1]
        else:
            table = self.tables.setdefault(name, {None: 0})
            known = np.array([table.setdefault(u, len(table)) for u in values.tolist()] + [0], dtype=np.int32)
            self._last[name] = (values, known)
        return known[codes]  # (code -1, a missing value, takes the appended 0)

    def values(self, name: str) -> np.ndarray:
        """The values of text column ``name`` by code (code 0: missing, None)."""
        out = np.empty(len(self.tables[name]), dtype=object)
        for v, k in self.tables[name].items():
            out[k] = v
        return out

    def _join(self, name: str, arrays: list, dtype: Any, keep_codes: bool = False) -> Any:
        """One column from its pieces (the list is emptied as they are joined)."""
        if _coded(dtype):
            codes = np.concatenate(arrays)
            arrays.clear()
            if keep_codes:
                self.codes[name] = codes
            return _text(self.values(name), codes, dtype, categorical=keep_codes and self.categorical)
        out = np.concatenate(arrays) if isinstance(dtype, np.dtype) else pd.concat(
            [pd.Series(a, copy=False) for a in arrays], ignore_index=True).array
        arrays.clear()
        return out

    def _as_frame(self, piece: _Piece) -> pd.DataFrame:
        return pd.DataFrame({name: self._join(name, [piece.columns.pop(name)], dtype) for name, dtype in piece.schema},
                            index=pd.RangeIndex(piece.n), copy=False)

    def build(self) -> pd.DataFrame:
        """``pd.concat`` of the frames added, sorted by their ``order``, built column by column."""
        pieces = [p for _, p in sorted(self.pieces, key=lambda t: t[0])]
        self.pieces = []
        if not pieces or any(p.schema != pieces[0].schema for p in pieces):
            # Different columns (e.g. the diagnostics of two models): the plain concat, which
            # aligns them; such frames are per series, not per forecast, so small.
            frames = [self._as_frame(p) for p in pieces]
            pieces.clear()
            return pd.concat(frames, ignore_index=True)
        n = sum(p.n for p in pieces)
        out = {}
        for name, dtype in pieces[0].schema:
            out[name] = self._join(name, [p.columns.pop(name) for p in pieces], dtype, keep_codes=True)
            _give_back()
        return pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)


def _text(values: np.ndarray, codes: np.ndarray, dtype: pd.StringDtype, categorical: bool = False) -> Any:
    """The text column ``values[codes]`` (``values[0]``: missing) as an array of ``dtype``, or
    with ``categorical`` a :class:`pandas.Categorical` over those strings (categories sorted, so
    sorting and comparing read as on the text; a row costs its code instead of its string)."""
    if categorical:
        names = values[1:].astype(str)
        order = np.argsort(names, kind="stable")
        rank = np.empty(len(names) + 1, dtype=np.int32)
        rank[0] = -1
        rank[1 + order] = np.arange(len(names), dtype=np.int32)
        cats = pd.Index(names[order], dtype=dtype)
        return pd.Categorical.from_codes(rank[codes], categories=cats)
    if getattr(dtype, "storage", None) == "pyarrow":
        import pyarrow as pa

        # Decoded by Arrow straight into its own buffers: no object array of every row on the way
        # (which takes 2x the final column at its peak, and 15x the time).
        table = pa.array(values.tolist(), type=pa.large_string())
        return pd.array(pa.DictionaryArray.from_arrays(pa.array(codes), table).dictionary_decode(), dtype=dtype)
    values[0] = dtype.na_value
    return pd.array(values[codes], dtype=dtype)


def _give_back() -> None:
    """Return freed heap memory to the system (glibc): the pieces are small arrays, which the
    allocator keeps in its heap after they are freed, so the process would still hold them."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes

            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc: nothing to do
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM: Any = None


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """Numpy's advice that its large arrays use huge pages, switched off for the ``with`` block.

    The result's columns are large new arrays written once. With the kernel's common
    ``transparent_hugepage/defrag = madvise``, each first touch of memory advised for huge
    pages may stall on a synchronous compaction (numpy issue 31590): building a 2,000-series
    result took 2.5 s that way and 0.45 s on ordinary pages. Nothing else changes (values and
    dtypes are the same); numpy's setting is restored on leaving.
    """
    toggle = getattr(np._core.multiarray, "_set_madvise_hugepage", None) if hasattr(np, "_core") else None
    if toggle is None:
        yield
        return
    before = toggle(False)
    try:
        yield
    finally:
        toggle(before)
_TRIM_EVERY = 16 * 2**20  # trim the heap after this many bytes of blocks have arrived


class Collector:
    """Blocks of a backtest as they arrive, in any order; the result frames built once.

    Parameters
    ----------
    order : the (model label, cutoff) keys in the order of the result's rows; within a
        key, blocks sort by the ``seq`` they were added with (task, then place in task).
    keep_pmf : keep each block's forecast object.
    """

    def __init__(self, order: Sequence[tuple], keep_pmf: bool) -> None:
        self.rank = {k: i for i, k in enumerate(order)}
        self.keep_pmf = keep_pmf
        # The forecasts (a row per series, origin, step and model: most of a large result) keep
        # their ids, labels and keys as categoricals; scores are numbers; the diagnostics (a row per
        # series, origin and model) keep plain text.
        self.frames = {k: _Frame(categorical=k == "forecasts") for k in KINDS}
        self.pmfs: list[tuple[tuple, Any]] = []
        self._since_trim = 0  # bytes of blocks received since the heap was last trimmed
        self._held = 0  # bytes of blocks received in all

    def add(self, label: str, block: dict, seq: tuple) -> None:
        """One block (a :func:`~forecast.backtesting.score_block` dict) of model ``label``."""
        order = (self.rank[(label, block["cutoff"])], *seq)
        for kind in KINDS:
            cols = block.columns(kind) if hasattr(block, "columns") else None
            size = self.frames[kind].add(order, block[kind]) if cols is None else self.frames[kind].add_columns(
                order, *cols)
            self._since_trim += size
            self._held += size
        if self.keep_pmf:
            self.pmfs.append((order, block["pmf"]))
        if self._since_trim >= max(_TRIM_EVERY, self._held // 16):  # a trim walks the heap: at most ~16 per doubling
            # Each block arrives as whole frames, copied here into small column arrays, and is then
            # freed: the allocator keeps those holes, and the main process grew ~1.5x the pieces
            # it held (20,000 series x 24 origins: 4.46 GB at the peak for a 3.3 GB result).
            _give_back()
            self._since_trim = 0

    def result(self, panel_keys: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                                                      list | None]:
        """The forecasts, point scores and diagnostics frames, and the pmfs (None unless kept).

        ``panel_keys`` (``unique_id`` and key columns, one row per series): its key
        columns are added to the forecasts as by a left merge on ``unique_id``.
        """
        pmfs = [f for _, f in sorted(self.pmfs, key=lambda t: t[0])] if self.keep_pmf else None
        fc = self.frames["forecasts"]
        with _small_pages():
            forecasts = fc.build()
            if panel_keys is not None:
                forecasts = _with_keys(forecasts, fc, panel_keys)
            fc.codes.clear()
            return forecasts, self.frames["scores"].build(), self.frames["diagnostics"].build(), pmfs


def _with_keys(forecasts: pd.DataFrame, fc: _Frame, panel_keys: pd.DataFrame) -> pd.DataFrame:
    """``forecasts.merge(panel_keys, on="unique_id", how="left")``, without the merge's copy of
    every column: each row's series is found from its ``unique_id`` code."""
    codes = fc.codes.get("unique_id")
    if codes is None:  # (ids that are not text: the merge itself)
        return forecasts.merge(panel_keys, on="unique_id", how="left")
    values = fc.values("unique_id")
    where = np.r_[-1, pd.Index(panel_keys["unique_id"]).get_indexer(pd.Index(values[1:], dtype=object))]
    rows = where[codes]
    if (rows < 0).any():  # a series missing from the keys: the merge (with its NaN upcasts)
        return forecasts.merge(panel_keys, on="unique_id", how="left")
    for col in panel_keys.columns.drop("unique_id"):
        keys = panel_keys[col]
        if isinstance(keys.dtype, pd.StringDtype):  # a few provinces, types: codes, as the ids
            cats = pd.Categorical(keys.array)
            forecasts[col] = pd.Categorical.from_codes(cats.codes.take(rows), categories=cats.categories)
        else:
            forecasts[col] = keys.array.take(rows)
    return forecasts
