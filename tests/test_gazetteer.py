"""Tests of forecast.gazetteer: canonical names, aliases, unknowns, extension, table integrity."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.exceptions import ConfigError, DataValidationError
from forecast.gazetteer import Gazetteer, _keys

CANONICAL = {
    "Tajikistan": ["Sughd", "Khatlon", "Gorno-Badakhshan", "Districts of Republican Subordination",
                   "Dushanbe"],
    "Afghanistan": [
        "Badakhshan", "Badghis", "Baghlan", "Balkh", "Bamyan", "Daykundi", "Farah", "Faryab",
        "Ghazni", "Ghor", "Helmand", "Herat", "Jowzjan", "Kabul", "Kandahar", "Kapisa", "Khost",
        "Kunar", "Kunduz", "Laghman", "Logar", "Nangarhar", "Nimruz", "Nuristan", "Paktia",
        "Paktika", "Panjshir", "Parwan", "Samangan", "Sar-e Pol", "Takhar", "Uruzgan", "Wardak",
        "Zabul"],
    "Kyrgyzstan": ["Batken", "Chuy", "Issyk-Kul", "Jalal-Abad", "Naryn", "Osh", "Talas", "Bishkek",
                   "Osh City"],
    "Uzbekistan": ["Andijan", "Bukhara", "Fergana", "Jizzakh", "Kashkadarya", "Khorezm", "Namangan",
                   "Navoiy", "Samarkand", "Surkhandarya", "Syrdarya", "Tashkent Region", "Tashkent",
                   "Karakalpakstan"],
    "Pakistan": ["Balochistan", "Khyber Pakhtunkhwa", "Punjab", "Sindh", "Islamabad Capital Territory",
                 "Gilgit-Baltistan", "Azad Kashmir"],
}
CANONICAL_PAIRS = [(c, p) for c, ps in CANONICAL.items() for p in ps]

ALIASES = [  # (country, raw, expected province)
    ("Tajikistan", "Sogd", "Sughd"), ("Tajikistan", "Sughd Region", "Sughd"),
    ("Tajikistan", "Leninabad", "Sughd"), ("Tajikistan", "Leninabad oblast", "Sughd"),
    ("Tajikistan", "Soghd", "Sughd"), ("Tajikistan", "Viloyati Sughd", "Sughd"),
    ("Tajikistan", "Согд", "Sughd"), ("Tajikistan", "Согдийская область", "Sughd"),
    ("Tajikistan", "Суғд", "Sughd"),
    ("Tajikistan", "Khatlon region", "Khatlon"), ("Tajikistan", "Khatlon oblast", "Khatlon"),
    ("Tajikistan", "Khatlon province", "Khatlon"), ("Tajikistan", "Хатлонская область", "Khatlon"),
    ("Tajikistan", "GBAO", "Gorno-Badakhshan"), ("Tajikistan", "GBAR", "Gorno-Badakhshan"),
    ("Tajikistan", "Gorno-Badakhshan Autonomous Region", "Gorno-Badakhshan"),
    ("Tajikistan", "Gorno-Badakhshan Autonomous Oblast", "Gorno-Badakhshan"),
    ("Tajikistan", "Kuhistoni Badakhshon", "Gorno-Badakhshan"),
    ("Tajikistan", "Badakhshan Mountainous Autonomous Region", "Gorno-Badakhshan"),
    ("Tajikistan", "ГБАО", "Gorno-Badakhshan"),
    ("Tajikistan", "Горно-Бадахшанская автономная область", "Gorno-Badakhshan"),
    ("Tajikistan", "Вилояти Мухтори Кӯҳистони Бадахшон", "Gorno-Badakhshan"),
    ("Tajikistan", "RRS", "Districts of Republican Subordination"),
    ("Tajikistan", "DRS", "Districts of Republican Subordination"),
    ("Tajikistan", "Region of Republican Subordination", "Districts of Republican Subordination"),
    ("Tajikistan", "Republican Subordination", "Districts of Republican Subordination"),
    ("Tajikistan", "Nohiyahoi tobei Jumhuri", "Districts of Republican Subordination"),
    ("Tajikistan", "Районы республиканского подчинения", "Districts of Republican Subordination"),
    ("Tajikistan", "РРП", "Districts of Republican Subordination"),
    ("Tajikistan", "Ноҳияҳои тобеи ҷумҳурӣ", "Districts of Republican Subordination"),
    ("Tajikistan", "Dushanbe city", "Dushanbe"), ("Tajikistan", "Душанбе", "Dushanbe"),
    ("Afghanistan", "Hirat", "Herat"), ("Afghanistan", "Paktya", "Paktia"),
    ("Afghanistan", "Panjsher", "Panjshir"), ("Afghanistan", "Jawzjan", "Jowzjan"),
    ("Afghanistan", "Sari Pul", "Sar-e Pol"), ("Afghanistan", "Sar-e-Pul", "Sar-e Pol"),
    ("Afghanistan", "Nimroz", "Nimruz"), ("Afghanistan", "Urozgan", "Uruzgan"),
    ("Afghanistan", "Oruzgan", "Uruzgan"), ("Afghanistan", "Maidan Wardak", "Wardak"),
    ("Afghanistan", "Daikundi", "Daykundi"), ("Afghanistan", "Dai Kundi", "Daykundi"),
    ("Afghanistan", "Bamian", "Bamyan"), ("Afghanistan", "Kondoz", "Kunduz"),
    ("Afghanistan", "Hilmand", "Helmand"), ("Afghanistan", "Khowst", "Khost"),
    ("Afghanistan", "Kunarha", "Kunar"), ("Afghanistan", "Nooristan", "Nuristan"),
    ("Afghanistan", "Ghowr", "Ghor"), ("Afghanistan", "Badghes", "Badghis"),
    ("Afghanistan", "Бадахшан", "Badakhshan"), ("Afghanistan", "Тахар", "Takhar"),
    ("Afghanistan", "Кундуз", "Kunduz"), ("Afghanistan", "Балх", "Balkh"),
    ("Afghanistan", "Кабул", "Kabul"), ("Afghanistan", "Герат", "Herat"),
    ("Afghanistan", "هرات", "Herat"), ("Afghanistan", "Welayat-e Herat", "Herat"),
    ("Kyrgyzstan", "Chui", "Chuy"), ("Kyrgyzstan", "Chüy", "Chuy"),
    ("Kyrgyzstan", "Issyk Kul", "Issyk-Kul"), ("Kyrgyzstan", "Ysyk-Köl", "Issyk-Kul"),
    ("Kyrgyzstan", "Jalalabad", "Jalal-Abad"), ("Kyrgyzstan", "Dzhalal-Abad", "Jalal-Abad"),
    ("Kyrgyzstan", "Баткен", "Batken"), ("Kyrgyzstan", "Чуй", "Chuy"),
    ("Kyrgyzstan", "Иссык-Куль", "Issyk-Kul"), ("Kyrgyzstan", "Джалал-Абад", "Jalal-Abad"),
    ("Kyrgyzstan", "Нарын", "Naryn"), ("Kyrgyzstan", "Ош", "Osh"), ("Kyrgyzstan", "Талас", "Talas"),
    ("Kyrgyzstan", "Бишкек", "Bishkek"), ("Kyrgyzstan", "Osh Region", "Osh"),
    ("Kyrgyzstan", "Osh city", "Osh City"), ("Kyrgyzstan", "Ош шаары", "Osh City"),
    ("Uzbekistan", "Andijon", "Andijan"), ("Uzbekistan", "Buxoro", "Bukhara"),
    ("Uzbekistan", "Farg'ona", "Fergana"), ("Uzbekistan", "Fargʻona", "Fergana"),
    ("Uzbekistan", "Jizzax", "Jizzakh"), ("Uzbekistan", "Qashqadaryo", "Kashkadarya"),
    ("Uzbekistan", "Xorazm", "Khorezm"), ("Uzbekistan", "Navoiy viloyati", "Navoiy"),
    ("Uzbekistan", "Samarqand", "Samarkand"), ("Uzbekistan", "Surxondaryo", "Surkhandarya"),
    ("Uzbekistan", "Sirdaryo", "Syrdarya"), ("Uzbekistan", "Qoraqalpog'iston", "Karakalpakstan"),
    ("Uzbekistan", "Ферганская область", "Fergana"), ("Uzbekistan", "Самарканд", "Samarkand"),
    ("Uzbekistan", "Toshkent", "Tashkent"), ("Uzbekistan", "Ташкент", "Tashkent"),
    ("Uzbekistan", "Toshkent viloyati", "Tashkent Region"),
    ("Uzbekistan", "Tashkent oblast", "Tashkent Region"),
    ("Uzbekistan", "Tashkent wilayat", "Tashkent Region"),  # only via the suffixed-stem index
    ("Pakistan", "Baluchistan", "Balochistan"), ("Pakistan", "NWFP", "Khyber Pakhtunkhwa"),
    ("Pakistan", "North-West Frontier Province", "Khyber Pakhtunkhwa"),
    ("Pakistan", "KPK", "Khyber Pakhtunkhwa"), ("Pakistan", "KP", "Khyber Pakhtunkhwa"),
    ("Pakistan", "FATA", "Khyber Pakhtunkhwa"),
    ("Pakistan", "ICT", "Islamabad Capital Territory"),
    ("Pakistan", "Federal Capital Territory", "Islamabad Capital Territory"),
    ("Pakistan", "AJK", "Azad Kashmir"), ("Pakistan", "Azad Jammu and Kashmir", "Azad Kashmir"),
    ("Pakistan", "Northern Areas", "Gilgit-Baltistan"),
]

# Every distinct non-empty (country, adm_1) in the real UCDP Candidate 2026 Q1 extract.
UCDP_ADM1 = [
    ("Afghanistan", "Badakhshan province", "Badakhshan"), ("Afghanistan", "Baghlan province", "Baghlan"),
    ("Afghanistan", "Faryab province", "Faryab"), ("Afghanistan", "Hirat province", "Herat"),
    ("Afghanistan", "Jawzjan province", "Jowzjan"), ("Afghanistan", "Kabul province", "Kabul"),
    ("Afghanistan", "Kandahar province", "Kandahar"), ("Afghanistan", "Khost province", "Khost"),
    ("Afghanistan", "Kunar province", "Kunar"), ("Afghanistan", "Kunduz province", "Kunduz"),
    ("Afghanistan", "Nangarhar province", "Nangarhar"), ("Afghanistan", "Nuristan province", "Nuristan"),
    ("Afghanistan", "Paktika province", "Paktika"), ("Afghanistan", "Paktya province", "Paktia"),
    ("Afghanistan", "Panjsher province", "Panjshir"),
    ("Pakistan", "Balochistan province", "Balochistan"), ("Pakistan", "Gilgit-Baltistan", "Gilgit-Baltistan"),
    ("Pakistan", "Islamabad Capital territory", "Islamabad Capital Territory"),
    ("Pakistan", "Khyber Pakhtunkwa province", "Khyber Pakhtunkhwa"),
    ("Pakistan", "Punjab province", "Punjab"), ("Pakistan", "Sindh province", "Sindh"),
]
UCDP_NAME = "ucdp_candidate_2026q1_central_asia.csv"
UCDP_PATHS = [Path(__file__).parents[1] / "forecast" / "_data" / UCDP_NAME]


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.default()


def _one(gaz: Gazetteer, raw, country=None):
    countries = None if country is None else pd.Series([country])
    out = gaz.normalise(pd.Series([raw]), countries)
    return out.province.iloc[0], out.country.iloc[0], out.unknown


@pytest.mark.parametrize(("country", "name"), CANONICAL_PAIRS)
def test_canonical_name_resolves_to_itself_with_and_without_country(gaz, country, name):
    assert _one(gaz, name, country)[:2] == (name, country)
    assert _one(gaz, name)[:2] == (name, country)  # canonical names are unique across countries


@pytest.mark.parametrize(("country", "raw", "expected"), ALIASES + UCDP_ADM1)
def test_alias_resolves_to_canonical_name_and_country(gaz, country, raw, expected):
    province, canon_country, unknown = _one(gaz, raw, country)
    assert (province, canon_country) == (expected, country)
    assert unknown.empty


GENERIC_AFFIXES = [  # spellings NOT in the table: only the generic prefix/suffix rule can match them
    ("Afghanistan", "Takhar Region", "Takhar"), ("Afghanistan", "Ghazni Province", "Ghazni"),
    ("Kyrgyzstan", "Naryn oblast'", "Naryn"), ("Uzbekistan", "Namangan viloyati", "Namangan"),
    ("Uzbekistan", "Samarqand viloyat", "Samarkand"), ("Afghanistan", "Wilayat-e Balkh", "Balkh"),
    ("Afghanistan", "Kunar velayat", "Kunar"), ("Afghanistan", "Province of Logar", "Logar"),
    ("Tajikistan", "Хатлон вилояти", "Khatlon"), ("Kyrgyzstan", "Таласская обл.", "Talas"),
    ("Afghanistan", "провинция Кунар", "Kunar"), ("Uzbekistan", "Бухарская обл.", "Bukhara"),
]


@pytest.mark.parametrize(("country", "raw", "expected"), GENERIC_AFFIXES)
def test_generic_prefixes_and_suffixes_are_stripped(gaz, country, raw, expected):
    assert _keys(raw)[0] not in set(gaz.table["alias"].map(lambda a: _keys(a)[0]))
    assert _one(gaz, raw, country)[:2] == (expected, country)


@pytest.mark.parametrize(("country", "raw"), [
    ("Afghanistan", "Kunduz district"),  # a second-level unit: "district" is not a generic suffix
    ("Kyrgyzstan", "Region"), ("Kyrgyzstan", "Naryn city"),  # bare generic word; "city" is kept
])
def test_non_generic_words_are_not_stripped(gaz, country, raw):
    province, _, unknown = _one(gaz, raw, country)
    assert province == raw and len(unknown) == 1


def test_every_adm1_in_the_real_ucdp_extract_is_known(gaz):
    path = next((p for p in UCDP_PATHS if p.exists()), None)
    if path is None:
        pytest.skip(f"{UCDP_NAME} not available")
    events = pd.read_csv(path, dtype=str, keep_default_na=False)[["country", "adm_1"]]
    events = events[events["adm_1"].str.strip() != ""]
    assert set(events.itertuples(index=False, name=None)) == {(c, r) for c, r, _ in UCDP_ADM1}
    out = gaz.normalise(events["adm_1"], events["country"], strict=True)
    expected = {(c, r): e for c, r, e in UCDP_ADM1}
    assert out.province.tolist() == [expected[(c, r)] for c, r in zip(events["country"], events["adm_1"])]


def test_province_counts_per_country(gaz):
    counts = {c: len(gaz.provinces(c)) for c in gaz.countries()}
    assert counts == {"Tajikistan": 5, "Afghanistan": 34, "Uzbekistan": 14, "Kyrgyzstan": 9, "Pakistan": 7}
    for country, names in CANONICAL.items():
        assert gaz.provinces(country) == sorted(names)


def test_provinces_accepts_country_aliases_and_rejects_unknown_country(gaz):
    assert gaz.provinces("TJK") == gaz.provinces("Таджикистан") == sorted(CANONICAL["Tajikistan"])
    with pytest.raises(ConfigError, match="Narnia"):
        gaz.provinces("Narnia")


@pytest.mark.parametrize(("raw", "expected"), [
    ("TJK", "Tajikistan"), ("702", "Tajikistan"), (702, "Tajikistan"), (702.0, "Tajikistan"),
    ("Таджикистан", "Tajikistan"), ("AFG", "Afghanistan"), ("700", "Afghanistan"),
    ("Афганистан", "Afghanistan"), ("KGZ", "Kyrgyzstan"), ("703", "Kyrgyzstan"),
    ("Kyrgyz Republic", "Kyrgyzstan"), ("Кыргызстан", "Kyrgyzstan"), ("Киргизия", "Kyrgyzstan"),
    ("UZB", "Uzbekistan"), ("704", "Uzbekistan"), ("Узбекистан", "Uzbekistan"),
    ("PAK", "Pakistan"), ("770", "Pakistan"), ("Пакистан", "Pakistan"), ("  pakistan ", "Pakistan"),
    (" Narnia ", "Narnia"),
])
def test_normalise_country(gaz, raw, expected):
    assert gaz.normalise_country(pd.Series([raw], dtype=object)).tolist() == [expected]


def test_normalise_country_keeps_missing_and_index(gaz):
    out = gaz.normalise_country(pd.Series(["TJK", None], index=[7, 3]))
    assert out.index.tolist() == [7, 3]
    assert out.iloc[0] == "Tajikistan" and pd.isna(out.iloc[1])


def test_badakhshan_is_afghan_unless_the_country_says_otherwise(gaz):
    assert _one(gaz, "Badakhshan")[:2] == ("Badakhshan", "Afghanistan")
    assert _one(gaz, "Badakhshan", "AFG")[:2] == ("Badakhshan", "Afghanistan")
    province, country, unknown = _one(gaz, "Badakhshan", "Tajikistan")
    assert (province, country) == ("Badakhshan", "Tajikistan")
    assert unknown.to_dict("records") == [{"country": "Tajikistan", "province": "Badakhshan", "n_rows": 1}]


def test_city_and_region_of_the_same_name_stay_apart(gaz):
    raw = pd.Series(["Osh", "Osh City", "Osh oblast", "Tashkent", "Tashkent City", "Tashkent Region"])
    out = gaz.normalise(raw, pd.Series(["KGZ"] * 3 + ["UZB"] * 3))
    assert out.province.tolist() == ["Osh", "Osh City", "Osh", "Tashkent", "Tashkent", "Tashkent Region"]


def test_unknown_names_are_kept_as_given_and_counted(gaz):
    provinces = pd.Series(["  Atlantis ", "Khatlon", "Atlantis", "Hirat", None, "  ", "Atlantis"],
                          index=[10, 11, 12, 13, 14, 15, 16])
    countries = pd.Series(["Tajikistan", "TJK", "Tajikistan", "Tajikistan", "TJK", "TJK", "Afghanistan"],
                          index=provinces.index)
    out = gaz.normalise(provinces, countries)
    assert out.province.index.equals(provinces.index) and out.country.index.equals(provinces.index)
    assert out.province.tolist()[:4] == ["Atlantis", "Khatlon", "Atlantis", "Hirat"]
    assert out.province.iloc[4:6].isna().all()  # missing/blank: kept missing, not reported
    assert out.country.tolist() == ["Tajikistan"] * 6 + ["Afghanistan"]
    assert out.unknown.to_dict("records") == [
        {"country": "Tajikistan", "province": "Atlantis", "n_rows": 2},
        {"country": "Afghanistan", "province": "Atlantis", "n_rows": 1},
        {"country": "Tajikistan", "province": "Hirat", "n_rows": 1},
    ]


def test_unknown_country_keeps_its_name_but_province_spelling_is_fixed(gaz):
    out = gaz.normalise(pd.Series(["Hirat", "Punjab"]), pd.Series(["Persia", "India"]))
    assert out.province.tolist() == ["Herat", "Punjab"]
    assert out.country.tolist() == ["Persia", "India"]


def test_strict_mode_names_column_names_and_row_numbers(gaz):
    provinces = pd.Series(["Khatlon", "Atlantis", "Sogd", "Lemuria", "Atlantis"], index=[50, 40, 30, 20, 10])
    with pytest.raises(DataValidationError) as info:
        gaz.normalise(provinces, pd.Series(["Tajikistan"] * 5), strict=True)
    message = str(info.value)
    assert "column 'province'" in message and "unknown province name" in message
    assert "Atlantis" in message and "Lemuria" in message and "Khatlon" not in message
    (problem,) = info.value.problems
    assert list(problem.rows) == [3, 5, 6]  # positional index + 2, not the index labels
    assert "(3, 5, 6)" in message
    assert "gazetteer" in problem.hint


def test_strict_mode_passes_when_all_known(gaz):
    out = gaz.normalise(pd.Series(["Sogd", None]), pd.Series(["TJK", "TJK"]), strict=True)
    assert out.province.iloc[0] == "Sughd" and out.unknown.empty
    assert list(out.unknown.columns) == ["country", "province", "n_rows"]


def test_result_does_not_depend_on_row_order(gaz):
    rng = np.random.default_rng(7)
    raw = pd.Series(rng.choice(["Sogd", "Hirat", "GBAO", "Atlantis", "Kunduz", "Kondoz"], size=200))
    countries = pd.Series(rng.choice(["TJK", "AFG", None], size=200))
    order = rng.permutation(200)
    full = gaz.normalise(raw, countries)
    shuffled = gaz.normalise(raw.iloc[order], countries.iloc[order])
    pd.testing.assert_series_equal(shuffled.province, full.province.iloc[order])
    pd.testing.assert_series_equal(shuffled.country, full.country.iloc[order])
    pd.testing.assert_frame_equal(shuffled.unknown, full.unknown)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_extension_adds_alias_and_leaves_default_untouched(gaz, tmp_path):
    ext = gaz.extend(_write(tmp_path / "g.csv", "country,province,alias\nAFG,Kunduz,Qundoz-e Kalan\n"))
    assert _one(ext, "Qundoz-e Kalan", "Afghanistan")[0] == "Kunduz"
    assert not _one(gaz, "Qundoz-e Kalan", "Afghanistan")[2].empty  # a new instance; default unchanged
    assert _one(ext, "Hirat", "Afghanistan")[0] == "Herat"  # bundled aliases still there


def test_extension_rows_win_over_bundled_ones(gaz, tmp_path):
    csv = "\ufeffcountry,province,alias,note\nUzbekistan,Tashkent Region,Tashkent,x\nAfghanistan,Nangarhar,Jalalabad,y\n"
    ext = gaz.extend(_write(tmp_path / "g.csv", csv))  # BOM and an extra column are fine
    assert _one(ext, "Tashkent", "UZB")[0] == "Tashkent Region"
    assert _one(ext, "Jalalabad", "Afghanistan")[0] == "Nangarhar"
    assert _one(ext, "Jalalabad", "Kyrgyzstan")[0] == "Jalal-Abad"
    assert not _one(ext, "Jalalabad")[2].empty  # no country: now ambiguous, so reported unknown
    assert _one(gaz, "Jalalabad")[:2] == ("Jalal-Abad", "Kyrgyzstan")


def test_extension_can_add_a_country(gaz, tmp_path):
    ext = gaz.extend(_write(tmp_path / "g.csv", "country,province,alias\nKazakhstan,Almaty Region,Almaty oblysy\n"))
    assert _one(ext, "Almaty oblysy")[:2] == ("Almaty Region", "Kazakhstan")
    assert ext.provinces("Kazakhstan") == ["Almaty Region"]


@pytest.mark.parametrize(("csv", "pattern"), [
    ("country,province,name\nTJK,Sughd,Sogd\n", r"missing column\(s\) alias; found columns: country, province, name"),
    ("region,alias\nSughd,Sogd\n", r"missing column\(s\) country, province; found columns: region, alias"),
    ("country,province,alias\nTJK,Sughd,\n", r"blank .* row\(s\) 2"),
    ("country,province,alias\nTJK,Sughd,Khatlonia\nTJK,Khatlon,khatlonia\n", r"two provinces .*Khatlonia"),
    ("", "cannot read"),
])
def test_malformed_extension_raises_config_error(gaz, tmp_path, csv, pattern):
    with pytest.raises(ConfigError, match=pattern):
        gaz.extend(_write(tmp_path / "bad.csv", csv))


def test_missing_extension_file_raises_config_error(gaz, tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        gaz.extend(tmp_path / "nope.csv")


def test_from_frame_rejects_an_alias_mapped_to_two_provinces():
    table = pd.DataFrame({"country": ["Tajikistan", "Tajikistan"], "province": ["Sughd", "Khatlon"],
                          "alias": ["Sogd", "SOGD"]})
    with pytest.raises(ConfigError, match="two provinces"):
        Gazetteer.from_frame(table)


def test_bundled_table_has_no_alias_mapped_to_two_provinces_of_a_country(gaz):
    table = gaz.table
    keys = pd.DataFrame(table["alias"].map(_keys).tolist(), columns=["key", "stem"], index=table.index)
    table = table.join(keys)
    spread = table.groupby(["country", "key"])["province"].nunique()
    assert spread.max() == 1, spread[spread > 1]
    # Stems of aliases that carried a generic suffix form their own lookup step: no ties there either.
    suffixed = table[table["stem"] != table["key"]]
    spread = suffixed.groupby(["country", "stem"])["province"].nunique()
    assert spread.max() == 1, spread[spread > 1]


def test_every_bundled_alias_round_trips(gaz):
    table = gaz.table
    out = gaz.normalise(table["alias"], table["country"], strict=True)
    assert out.province.tolist() == table["province"].tolist()
    raw = pd.read_csv(Path(__file__).parents[1] / "forecast" / "resources" / "gazetteer.csv", dtype=str)
    assert list(raw.columns) == ["country", "province", "alias"]
    assert (raw["alias"] == raw["province"]).groupby([raw["country"], raw["province"]]).any().all()


@settings(max_examples=200, deadline=None)
@given(row=st.integers(min_value=0, max_value=10_000), case=st.sampled_from(["upper", "lower", "title"]),
       sep=st.sampled_from([" ", "  ", "-", "_", ".", "", " - "]), pad=st.sampled_from(["", " ", "\t "]))
def test_spelling_noise_does_not_change_the_match(gaz, row, case, sep, pad):
    table = gaz.table
    country, province, alias = table.iloc[row % len(table)]
    noisy = pad + getattr(alias, case)().replace(" ", sep).replace("-", sep) + pad
    assert _one(gaz, noisy, country)[0] == province
