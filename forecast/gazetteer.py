"""Province and country names: one canonical spelling per first-level unit.

Sources spell one province many ways (UCDP ``Hirat province``, ACLED ``Herat``,
Russian ``Герат``); series only line up once each spelling maps to one name. The
aliases ship as ``resources/gazetteer.csv`` (``country,province,alias``) and
``resources/countries.csv`` (``country,alias``: names, ISO3, Gleditsch-Ward no.).

Canonical units: Tajikistan 5 (Sughd, Khatlon, Gorno-Badakhshan, Districts of
Republican Subordination, Dushanbe); Afghanistan 34 (common English spellings:
Herat, Paktia, Panjshir, Jowzjan, Sar-e Pol, Uruzgan, Wardak, ...); Kyrgyzstan 9
(Batken, Chuy, Issyk-Kul, Jalal-Abad, Naryn, Osh, Talas, and the cities Bishkek
and Osh City; plain "Osh" is the region); Uzbekistan 14 (Andijan, Bukhara,
Fergana, Jizzakh, Kashkadarya, Khorezm, Namangan, Navoiy, Samarkand,
Surkhandarya, Syrdarya, Karakalpakstan, Tashkent Region, and Tashkent = the city;
"Tashkent" plus a region word is the region); Pakistan 7 (Balochistan, Khyber
Pakhtunkhwa, Punjab, Sindh, Islamabad Capital Territory, Gilgit-Baltistan, Azad
Kashmir). FATA is an alias of Khyber Pakhtunkhwa, not a unit: it merged into KP
in 2018, and one unit keeps the province's series continuous across the merger.

Matching. A name becomes a key: NFKC, accents dropped (``Chüy`` = ``Chuy``,
``ё`` = ``е``), casefold, Arabic ``ي ك`` folded to Persian ``ی ک``, and every run
of non-letters (space ``- _ ' ’ ʻ .`` ...) removed, so ``Sar-e-Pol`` = ``sare pol``.
Its *stem* also drops one generic prefix (``Viloyati``, ``Welayat-e``, ``province
of``, ``провинция``) and one suffix (``province``, ``region``, ``oblast``,
``viloyati``, ``wilayat``, ``область``, ``облусу``, ...), whole words only. "City"
and "district" are never dropped (Osh and Osh City are different units; a
district is a second-level unit). Lookup within the country tries the full key,
then stems of aliases that carried a suffix ("Tashkent wilayat" -> the region,
not the city), then the stem as a full key (``Faryab province`` -> ``Faryab``).
With a missing or unknown country the same lookups run over all countries and
succeed only if the key names a single unit; a missing country is then filled
in, an unknown one kept as given. Unknown provinces are kept (stripped) and
reported in :attr:`NormalisedNames.unknown`; missing or blank names stay missing
and are not reported (schema validation owns that).
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError, DataValidationError, Problem

__all__ = ["Gazetteer", "NormalisedNames", "TABLE_COLUMNS"]

TABLE_COLUMNS = ("country", "province", "alias")
# The string dtype read_csv gives ("str" on pandas >= 3, object before), so outputs match inputs.
_STR = pd.Series(["x"]).dtype
UNKNOWN_HINT = ("Add it to a gazetteer CSV (columns country,province,alias) and pass it with "
                "gazetteer=..., or fix the spelling.")
# ʻ and ʼ (Uzbek Latin o'/g') are modifier *letters* to Python, so \W misses them.
_SEPARATORS = re.compile(r"[\W_ʻʼ]+")
_ARABIC_FOLD = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک"})
# Generic words, matched on whole space-separated tokens; lookarounds keep a bare "Region" intact.
_PREFIX = re.compile(r"^(?:province of|wilayat e|welayat e|velayat e|viloyati|vilayati|wilayat|"
                     r"welayat|velayat|вилояти|провинция) (?=\S)")
_SUFFIX = re.compile(r"(?<=\S) (?:province|region|oblast|oblasty|oblusu|viloyati|viloyat|vilayat|"
                     r"wilayat|welayat|velayat|область|обл|облусу|вилояти|вилоят|провинция)$")


def _keys(text: str) -> tuple[str, str]:
    """Return the (full, stem) lookup keys of a name; see the module docstring."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    spaced = _SEPARATORS.sub(" ", text.casefold().translate(_ARABIC_FOLD)).strip()
    stem = _SUFFIX.sub("", _PREFIX.sub("", spaced, count=1), count=1)
    return spaced.replace(" ", ""), stem.replace(" ", "")


def _text(value: Any) -> str | None:
    """Stripped text of a cell, or None when missing/blank; 702.0 reads as '702'."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return str(value).strip() or None


def _as_series(values: Any, name: str) -> pd.Series:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a pandas Series of names, got {type(values).__name__}")
    return values if isinstance(values, pd.Series) else pd.Series(values)


def _unique_map(entries: list[tuple[Any, Any]]) -> dict:
    """key -> value, with None for keys that point at several values (ambiguous)."""
    out: dict = {}
    for key, value in entries:
        out[key] = value if out.get(key, value) == value else None
    return out


def _first(lookups: tuple[tuple[dict, Any], ...]) -> Any:
    """Value of the first (index, key) lookup that hits, else None.

    An ambiguous hit (None) ends the search: falling through to a looser match
    would pick one of the candidates silently.
    """
    return next((index[key] for index, key in lookups if key in index), None)


@functools.cache
def _bundled_frame(name: str) -> pd.DataFrame:
    # importlib.resources, not __file__: works from wheels and zip imports too.
    with resources.files("forecast").joinpath("resources", name).open("rb") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False, encoding="utf-8")


@dataclass(frozen=True, eq=False)  # eq=False: comparing Series fields has no single truth value
class NormalisedNames:
    """Result of :meth:`Gazetteer.normalise`.

    Attributes
    ----------
    province : canonical province names (the stripped original where unknown),
        same index as the input.
    country : canonical country names (the stripped original where unknown).
    unknown : distinct unknown ``(country, province)`` pairs with their row
        counts, columns ``country, province, n_rows``, most frequent first.
    """

    province: pd.Series
    country: pd.Series
    unknown: pd.DataFrame


class Gazetteer:
    """Maps raw province and country names to canonical ones.

    Build with :meth:`default` (bundled table) or :meth:`from_frame`; add user
    aliases with :meth:`extend`. Instances are immutable.
    """

    def __init__(self, table: pd.DataFrame, country_aliases: dict[str, str]) -> None:
        # Private: ``table`` is already validated (see _prepare); use the classmethods.
        self._table = table.reset_index(drop=True)
        self._country_aliases = dict(country_aliases)
        for country in self._table["country"].unique():
            self._country_aliases.setdefault(_keys(country)[0], country)
        rows = list(self._table[["country", "province", "key", "stem"]].itertuples(index=False))
        by_country = self._table.groupby("country")["province"].agg(set)
        self._by_country: dict[str, set[str]] = by_country.to_dict()
        self._exact = {(c, k): p for c, p, k, _ in rows}
        self._stem = _unique_map([((c, s), p) for c, p, k, s in rows if s != k])
        self._any_exact = _unique_map([(k, (c, p)) for c, p, k, _ in rows])
        self._any_stem = _unique_map([(s, (c, p)) for c, p, k, s in rows if s != k])

    @classmethod
    def default(cls) -> Gazetteer:
        """The bundled gazetteer (parsed once per process, then shared; it is immutable)."""
        return _default_for(cls)

    @classmethod
    def from_frame(cls, table: pd.DataFrame, *, source: str = "gazetteer table") -> Gazetteer:
        """Build a gazetteer from a frame with columns ``country, province, alias``.

        Country cells may be any known country alias (``TJK``, ``702``); a
        province's own name is always an alias of itself.

        Raises
        ------
        ConfigError
            Missing columns, blank cells, or one alias mapped to two provinces
            of the same country.
        """
        countries = _country_alias_map()
        return cls(_prepare(table, source, countries), countries)

    @property
    def table(self) -> pd.DataFrame:
        """A copy of the alias table in use (``country, province, alias``)."""
        return self._table[list(TABLE_COLUMNS)].copy()

    def extend(self, path_or_frame: str | PathLike[str] | pd.DataFrame) -> Gazetteer:
        """Return a new gazetteer with user aliases added; user rows win on conflict.

        Parameters
        ----------
        path_or_frame : a UTF-8 CSV file (or frame) with columns ``country,
            province, alias``; other columns are ignored.

        Raises
        ------
        ConfigError
            The file cannot be read, lacks a column, has blank cells or
            contradicts itself.
        """
        if isinstance(path_or_frame, pd.DataFrame):
            frame, source = path_or_frame, "gazetteer extension"
        else:
            source = str(path_or_frame)
            try:  # utf-8-sig: spreadsheet programs often prepend a BOM
                frame = pd.read_csv(Path(path_or_frame), dtype=str, keep_default_na=False,
                                    encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError, pd.errors.ParserError,
                    pd.errors.EmptyDataError) as exc:
                raise ConfigError(f"{source}: cannot read gazetteer CSV ({exc})") from exc
        added = _prepare(frame, source, self._country_aliases)
        merged = pd.concat([self._table, added], ignore_index=True)
        merged = merged.drop_duplicates(subset=["country", "key"], keep="last")
        return type(self)(merged, self._country_aliases)

    def _country(self, value: Any) -> str | None:
        text = _text(value)
        return None if text is None else self._country_aliases.get(_keys(text)[0], text)

    def normalise_country(self, names: pd.Series) -> pd.Series:
        """Canonical country names; unknown names kept stripped, missing stay missing."""
        names = _as_series(names, "names")
        codes, uniques = pd.factorize(names, use_na_sentinel=True)
        mapped = pd.array([self._country(u) for u in uniques] + [None], dtype=_STR)
        codes = np.where(codes < 0, len(uniques), codes)  # missing -> the trailing None
        return pd.Series(mapped.take(codes), index=names.index, name=names.name)

    def _resolve(self, country: str | None, raw: Any) -> tuple[str | None, str | None, bool]:
        """(country, province, is_unknown) for one distinct input pair."""
        text = _text(raw)
        if text is None:
            return country, None, False
        full, stem = _keys(text)
        if country in self._by_country:
            hit = _first(((self._exact, (country, full)), (self._stem, (country, stem)),
                          (self._exact, (country, stem))))
            return country, hit or text, hit is None
        pair = _first(((self._any_exact, full), (self._any_stem, stem), (self._any_exact, stem)))
        if pair is None:
            return country, text, True
        return (pair[0] if country is None else country), pair[1], False

    def normalise(self, provinces: pd.Series, countries: pd.Series | str | None = None, *,
                  strict: bool = False) -> NormalisedNames:
        """Map raw province (and country) names to canonical ones.

        Parameters
        ----------
        provinces : raw province names, one per row.
        countries : raw country names aligned by position with ``provinces``
            (same length), one name for all rows, or None when unknown.
        strict : raise on unknown province names instead of keeping them.

        Returns
        -------
        NormalisedNames

        Raises
        ------
        DataValidationError
            ``strict=True`` and some province names are unknown; lists them with
            their row numbers (positional index + 2, as a spreadsheet shows a CSV).
        """
        provinces = _as_series(provinces, "provinces")
        n = len(provinces)
        if countries is None or isinstance(countries, str):  # one value for all rows
            c_codes, c_uniques, c_name = np.zeros(n, dtype=np.int64), [countries], None
        else:
            countries = _as_series(countries, "countries")
            if len(countries) != n:
                raise ValueError(f"countries has {len(countries)} values but provinces has {n}")
            c_codes, c_uniques = pd.factorize(countries, use_na_sentinel=False)
            c_name = countries.name
        p_codes, p_uniques = pd.factorize(provinces, use_na_sentinel=False)
        # Work on distinct (country, province) pairs only, then scatter back to rows.
        pair_codes, pairs = pd.factorize(c_codes.astype(np.int64) * len(p_uniques) + p_codes)
        c_canon = [self._country(c) for c in c_uniques]
        out_c, out_p = np.empty(len(pairs), dtype=object), np.empty(len(pairs), dtype=object)
        bad = np.zeros(len(pairs), dtype=bool)
        for i, code in enumerate(pairs.tolist()):
            c_code, p_code = divmod(code, len(p_uniques))
            out_c[i], out_p[i], bad[i] = self._resolve(c_canon[c_code], p_uniques[p_code])
        n_rows = np.bincount(pair_codes, minlength=len(pairs))
        # Raw spellings differing only in spaces or country alias meet here; count them together.
        counts: dict[tuple[str | None, str], int] = {}
        for pair, k in zip(zip(out_c[bad], out_p[bad]), n_rows[bad]):
            counts[pair] = counts.get(pair, 0) + int(k)
        ordered = sorted(counts.items(), key=lambda e: (-e[1], e[0][0] is None, e[0][0] or "", e[0][1]))
        unknown = pd.DataFrame({"country": pd.array([c for (c, _), _ in ordered], dtype=_STR),
                                "province": pd.array([p for (_, p), _ in ordered], dtype=_STR),
                                "n_rows": np.array([k for _, k in ordered], dtype=np.int64)})
        if strict and bad.any():
            rows = (np.flatnonzero(bad[pair_codes]) + 2).tolist()
            problem = Problem(column="province", check="unknown province name", rows=rows,
                              provinces=unknown["province"].tolist(), hint=UNKNOWN_HINT)
            raise DataValidationError([problem])
        # Build the small string array once and take from it: converting 10**6 objects is slow.
        return NormalisedNames(
            province=pd.Series(pd.array(out_p, dtype=_STR).take(pair_codes), index=provinces.index,
                               name=provinces.name),
            country=pd.Series(pd.array(out_c, dtype=_STR).take(pair_codes), index=provinces.index,
                              name=c_name),
            unknown=unknown)

    def provinces(self, country: str) -> list[str]:
        """Sorted canonical provinces of a country (the country name may be any alias)."""
        canon = self._country(country)
        if canon not in self._by_country:
            known = ", ".join(self.countries())
            raise ConfigError(f"unknown country {country!r}; known countries: {known}")
        return sorted(self._by_country[canon])

    def countries(self) -> list[str]:
        """Sorted canonical country names that have provinces."""
        return sorted(self._by_country)


@functools.cache
def _default_for(cls: type[Gazetteer]) -> Gazetteer:
    return cls.from_frame(_bundled_frame("gazetteer.csv"), source="forecast/resources/gazetteer.csv")


def _country_alias_map() -> dict[str, str]:
    countries = _bundled_frame("countries.csv")
    return {_keys(a)[0]: c for c, a in zip(countries["country"], countries["alias"])}


def _prepare(frame: pd.DataFrame, source: str, country_aliases: dict[str, str]) -> pd.DataFrame:
    """Validate an alias table; return it with canonical countries, self-aliases and keys."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"a gazetteer table must be a pandas DataFrame, got {type(frame).__name__}")
    found = {str(c).strip().casefold(): c for c in frame.columns}
    missing = [c for c in TABLE_COLUMNS if c not in found]
    if missing:
        raise ConfigError(f"{source}: gazetteer table is missing column(s) {', '.join(missing)}; "
                          f"found columns: {', '.join(map(str, frame.columns)) or '(none)'}. "
                          f"Expected columns: {','.join(TABLE_COLUMNS)}.")
    table = pd.DataFrame({c: [_text(v) or "" for v in frame[found[c]]] for c in TABLE_COLUMNS})
    blank = np.flatnonzero((table == "").any(axis=1).to_numpy()) + 2
    if len(blank):
        raise ConfigError(f"{source}: blank country, province or alias in row(s) "
                          f"{', '.join(map(str, blank[:10]))}{' ...' if len(blank) > 10 else ''}")
    table["country"] = table["country"].map(lambda c: country_aliases.get(_keys(c)[0], c))
    # A canonical name is always an alias of itself, even if the table forgot the row.
    selves = table.assign(alias=table["province"])
    table = pd.concat([table, selves], ignore_index=True).drop_duplicates(ignore_index=True)
    keys = {a: _keys(a) for a in table["alias"].unique()}
    table["key"] = table["alias"].map(lambda a: keys[a][0])
    table["stem"] = table["alias"].map(lambda a: keys[a][1])
    clash = table[table.groupby(["country", "key"])["province"].transform("nunique") > 1]
    if len(clash):
        shown = "; ".join(f"{c}: {a!r} -> {p}" for c, p, a in clash.sort_values("key")
                          .head(20)[list(TABLE_COLUMNS)].itertuples(index=False))
        raise ConfigError(f"{source}: one alias maps to two provinces of one country: {shown}")
    return table.drop_duplicates(subset=["country", "key"], ignore_index=True)
