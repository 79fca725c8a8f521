"""Real tables: missing cells, messy columns and CSV dialects, checked against scikit-learn.

Each strategy of ``data.missing.*`` and ``data.max_categories`` is compared with what
``SimpleImputer`` / ``OneHotEncoder`` (and ``StandardScaler`` after them, as in a scikit-learn
pipeline) give when fitted on the same training rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sweeper.data import Missing, Preprocessor, load_dataset, read_csv
from sweeper.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
PENGUINS = ROOT / "data" / "penguins.csv"


def holey_frame(n: int = 60) -> pd.DataFrame:
    """Numbers and strings with holes: 'size' misses 7 cells, 'weight' 4, 'colour' 6, 'shape' 5."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({
        "size": rng.normal(50, 10, n).round(2),
        "weight": rng.gamma(2.0, 3.0, n).round(3),
        "colour": np.array(["red", "green", "blue", "green"])[np.arange(n) % 4],
        "shape": np.array(["round", "square", "round"])[np.arange(n) % 3],
    })
    frame["y"] = (2 * frame["size"] + frame["weight"] + rng.normal(0, 1, n)).round(3)
    for name, rows in (("size", [1, 8, 15, 22, 33, 41, 57]), ("weight", [2, 9, 30, 50]),
                       ("colour", [3, 10, 17, 25, 44, 52]), ("shape", [4, 12, 20, 36, 48])):
        frame.loc[[r for r in rows if r < n], name] = np.nan
    return frame


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "holes.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def block(ds, prefix: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    names = [n for n in ds.feature_names if n == prefix or n.startswith(prefix + "=")]
    cols = [ds.feature_names.index(n) for n in names]
    return names, ds.X_train[:, cols], ds.X_val[:, cols], ds.X_test[:, cols]


# --- numeric strategies --------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["median", "mean"])
def test_numeric_imputation_matches_simple_imputer_then_standard_scaler(tmp_path, strategy):
    frame = holey_frame()
    ds = load_dataset(write(tmp_path, frame), "y", missing=Missing(numeric=strategy), seed=2)
    train = frame.iloc[ds.indices["train"]][["size", "weight"]]
    imputer = SimpleImputer(strategy=strategy).fit(train)
    scaler = StandardScaler().fit(imputer.transform(train))
    columns = ds.columns()
    for j, name in enumerate(["size", "weight"]):
        assert columns[name]["fill"] == pytest.approx(imputer.statistics_[j], rel=1e-15)
        assert columns[name]["kind"] == "numeric" and columns[name]["strategy"] == strategy
    for split in ("train", "val", "test"):
        raw = frame.iloc[ds.indices[split]][["size", "weight"]]
        expected = scaler.transform(imputer.transform(raw))
        got = getattr(ds, f"X_{split}")[:, [ds.feature_names.index("size"), ds.feature_names.index("weight")]]
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=split)
    assert columns["size"]["missing"] == 7 and columns["weight"]["missing"] == 4


def test_drop_rows_drops_every_row_missing_a_number_before_the_split(tmp_path):
    frame = holey_frame()
    ds = load_dataset(write(tmp_path, frame), "y", missing=Missing(numeric="drop_rows"))
    kept = frame.dropna(subset=["size", "weight"])
    assert sum(ds.rows.values()) == len(kept) == 60 - 11
    assert set(np.concatenate(list(ds.indices.values()))) == set(kept.index)
    assert ds.dropped_rows == {"numeric_missing": 11}
    # The string holes are still filled by the categorical default, not dropped.
    assert ds.columns()["colour"]["missing"] == frame.loc[kept.index, "colour"].isna().sum() > 0


def test_missing_indicator_matches_simple_imputer_add_indicator(tmp_path):
    frame = holey_frame()
    frame.loc[frame.index[-12:], "size"] = frame["size"].iloc[-12:].fillna(1.0)  # holes only early on
    ds = load_dataset(write(tmp_path, frame), "y", missing=Missing(numeric="median", indicator=True),
                      shuffle=False)
    train = frame.iloc[ds.indices["train"]][["size", "weight"]]
    imputer = SimpleImputer(strategy="median", add_indicator=True).fit(train)
    flagged = [["size", "weight"][i] for i in imputer.indicator_.features_]
    assert [n for n in ds.feature_names if n.endswith("_missing")] == [f"{n}_missing" for n in flagged]
    for split in ("train", "test"):
        raw = frame.iloc[ds.indices[split]][["size", "weight"]]
        expected = imputer.transform(raw)[:, 2:]  # the indicator columns come after the two values
        got = getattr(ds, f"X_{split}")[:, [ds.feature_names.index(f"{n}_missing") for n in flagged]]
        np.testing.assert_array_equal(got, expected)
    assert "colour_missing" not in ds.feature_names  # indicators are for numeric columns only


# --- categorical strategies -------------------------------------------------------------------


def test_missing_category_matches_constant_imputer_then_one_hot(tmp_path):
    frame = holey_frame()
    ds = load_dataset(write(tmp_path, frame), "y", seed=5)
    train = frame.iloc[ds.indices["train"]][["colour"]]
    imputer = SimpleImputer(strategy="constant", fill_value="<missing>").fit(train)
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(imputer.transform(train))
    names, *blocks = block(ds, "colour")
    assert names == [f"colour={c}" for c in encoder.categories_[0]] == [
        "colour=<missing>", "colour=blue", "colour=green", "colour=red"]
    for split, got in zip(("train", "val", "test"), blocks):
        raw = frame.iloc[ds.indices[split]][["colour"]]
        np.testing.assert_array_equal(got, encoder.transform(imputer.transform(raw)), err_msg=split)


def test_two_valued_text_with_holes_becomes_three_categories_and_most_frequent_keeps_it_binary(tmp_path):
    frame = holey_frame()
    path = write(tmp_path, frame)
    as_category = load_dataset(path, "y")
    assert [n for n in as_category.feature_names if n.startswith("shape")] == [
        "shape=<missing>", "shape=round", "shape=square"]
    filled = load_dataset(path, "y", missing=Missing(categorical="most_frequent"))
    train = frame.iloc[filled.indices["train"]][["shape"]]
    imputer = SimpleImputer(strategy="most_frequent").fit(train)
    assert filled.columns()["shape"]["fill"] == imputer.statistics_[0] == "round"
    expected = np.where(imputer.transform(frame.iloc[filled.indices["test"]][["shape"]])[:, 0] == "square", 1.0, -1.0)
    np.testing.assert_array_equal(filled.X_test[:, filled.feature_names.index("shape")], expected)


def test_most_frequent_breaks_ties_like_simple_imputer(tmp_path):
    frame = holey_frame(40)
    frame["colour"] = np.array(["red", "blue"])[np.arange(40) % 2]  # 20 each: a tie
    frame.loc[[0, 5], "colour"] = np.nan
    ds = load_dataset(write(tmp_path, frame), "y", missing=Missing(categorical="most_frequent"), shuffle=False)
    train = frame.iloc[ds.indices["train"]][["colour"]]
    counts = train["colour"].value_counts()
    assert counts["red"] == counts["blue"]  # the training rows keep the tie
    assert ds.columns()["colour"]["fill"] == SimpleImputer(strategy="most_frequent").fit(train).statistics_[0] == "blue"


def test_categorical_drop_rows_and_error(tmp_path):
    frame = holey_frame()
    path = write(tmp_path, frame)
    ds = load_dataset(path, "y", missing=Missing(categorical="drop_rows"))
    assert ds.dropped_rows == {"categorical_missing": 11}
    assert sum(ds.rows.values()) == len(frame.dropna(subset=["colour", "shape"]))
    with pytest.raises(DataError, match=r"columns 'colour' \(6\), 'shape' \(5\) have missing values and "
                                        r"data\.missing\.categorical=error; set data\.missing\.categorical to") as caught:
        load_dataset(path, "y", missing=Missing(categorical="error"))
    assert "\n" not in str(caught.value)


def test_error_strategy_names_every_column_with_holes_in_one_line(tmp_path):
    frame = holey_frame()
    frame.loc[5, "y"] = np.nan  # a missing target is dropped, never an error
    with pytest.raises(DataError) as caught:
        load_dataset(write(tmp_path, frame), "y", missing=Missing(numeric="error", categorical="error"))
    message = str(caught.value)
    assert "\n" not in message
    for column in ("'size' (7)", "'weight' (4)", "'colour' (6)", "'shape' (5)"):
        assert column in message
    assert "data.missing.numeric=error" in message and "data.missing.categorical=error" in message


def test_rows_without_a_target_are_dropped_and_counted(tmp_path):
    frame = holey_frame()
    frame.loc[[0, 7, 59], "y"] = np.nan
    ds = load_dataset(write(tmp_path, frame), "y")
    assert ds.dropped_rows == {"target_missing": 3} and ds.rows_in_file == 60
    assert not {0, 7, 59} & set(np.concatenate(list(ds.indices.values())))
    assert "3 without y" in ds.summary()[0]


def test_unknown_strategy_names_its_key():
    with pytest.raises(ConfigError, match=r"data\.missing\.numeric: unknown value 'zero'; allowed: median, mean, drop_rows, error"):
        Missing(numeric="zero")
    with pytest.raises(ConfigError, match=r"data\.missing\.categorical: unknown value 'mode'"):
        Missing(categorical="mode")


# --- grouping rare categories -----------------------------------------------------------------


@pytest.mark.parametrize("max_categories", [2, 4, 6])
def test_max_categories_groups_like_one_hot_encoder_infrequent(tmp_path, max_categories):
    rng = np.random.default_rng(3)
    n = 200
    # Frequencies with ties, so the tie rule is exercised: a, b 40 each; c, d, e 25 each; f..i 10-ish.
    labels = np.array(list("a" * 40 + "b" * 40 + "c" * 25 + "d" * 25 + "e" * 25 + "f" * 15 + "g" * 12 + "h" * 10 + "i" * 8))
    frame = pd.DataFrame({"city": rng.permutation(labels), "x": rng.normal(size=n)})
    frame["y"] = frame["x"] + (frame["city"] == "a")
    frame.loc[n - 1, "city"] = "zz"  # unseen in training (unshuffled: a test row)
    ds = load_dataset(write(tmp_path, frame), "y", max_categories=max_categories, shuffle=False, categorical=["city"])
    train = frame.iloc[ds.indices["train"]][["city"]]
    encoder = OneHotEncoder(max_categories=max_categories, handle_unknown="infrequent_if_exist",
                            sparse_output=False).fit(train)
    names, *blocks = block(ds, "city")
    assert len(names) == max_categories
    kept = [c for c in encoder.categories_[0] if c not in encoder.infrequent_categories_[0]]
    assert names == [f"city={c}" for c in kept] + ["city=<other>"]
    for split, got in zip(("train", "val", "test"), blocks):
        raw = frame.iloc[ds.indices[split]][["city"]]
        np.testing.assert_array_equal(got, encoder.transform(raw), err_msg=split)
    assert ds.columns()["city"]["grouped_as_other"] == len(encoder.infrequent_categories_[0])


def test_free_text_column_is_refused_with_data_drop_and_every_bad_column_is_named(tmp_path):
    n = 120
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"name": [f"car {i}" for i in range(n)], "x": rng.normal(size=n),
                          "code": [f"id-{i}" for i in range(n)], "note": np.nan})
    frame["mileage"] = rng.normal(size=n).astype(object)
    frame.loc[9, "mileage"] = "lots"
    frame["y"] = rng.normal(size=n)
    path = write(tmp_path, frame)
    with pytest.raises(DataError) as caught:
        load_dataset(path, "y")
    message = str(caught.value)
    assert "\n" not in message
    assert "column 'mileage' has 1 non-numeric value(s) (first: 'lots' in row 10)" in message
    assert "column 'note' is empty; leave out with data.drop=[note]" in message
    assert ("columns 'name' (120 distinct values in 120 rows), 'code' (120 distinct values in 120 rows) look "
            "like identifiers or free text") in message and "data.drop=[name,code]" in message
    frame.loc[9, "mileage"] = "1.5"
    ds = load_dataset(write(tmp_path, frame), "y", drop=["name", "code", "note"])
    assert ds.feature_names == ("x", "mileage") and ds.dropped_columns == ("name", "code", "note")


def test_drop_settings_name_their_key(tmp_path):
    path = write(tmp_path, holey_frame())
    with pytest.raises(DataError, match=r"data\.drop: columns 'nope', 'nada' are not in holes\.csv; available: 'size'"):
        load_dataset(path, "y", drop=["nope", "nada"])
    with pytest.raises(ConfigError, match=r"data\.drop: 'y' is the target"):
        load_dataset(path, "y", drop=["y"])
    with pytest.raises(ConfigError, match=r"data\.max_categories: 1 is out of range; allowed: an integer >= 2"):
        load_dataset(path, "y", max_categories=1)


def test_constant_target_and_duplicate_header_are_one_line_each(tmp_path):
    frame = holey_frame()
    frame["y"] = 3.5
    with pytest.raises(DataError, match=r"^data\.target: column 'y' has the same value \(3\.5\) in every row"):
        load_dataset(write(tmp_path, frame), "y")
    path = tmp_path / "dup.csv"
    path.write_text("Mileage,Price,Mileage\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match=r"dup\.csv has the column name 'Mileage' twice \(columns 1 and 3\)"):
        read_csv(path)


# --- rows that do not match their header ------------------------------------------------------


def test_a_first_row_with_an_extra_field_is_refused_with_its_line_not_realigned(tmp_path):
    """pandas makes a first data row's extra leading fields the index (which was dropped): the
    run trained on shifted columns, Price really the Doors column. Refused, with the line."""
    lines = (ROOT / "data" / "car_prices.csv").read_text().splitlines()
    header = lines[0].split(",")
    lines[1] = "17," + lines[1]
    path = tmp_path / "shifted.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        load_dataset(path, "Price")
    assert str(caught.value) == (f"data.path: shifted.csv line 2 has {len(header) + 1} fields, its header "
                                 f"{len(header)}; the row is refused, not realigned (read as ','-separated, sniffed)")


@pytest.mark.parametrize("text, line, fields", [
    ("a,b,c\n1,2,3\n4,5,6\n7,8\n", 4, 2),                 # a short row: its last cell is not "missing"
    ("a,b,c\n1,2,3\n\n4,5,6,7\n", 4, 4),                  # a blank line is skipped, and counted
    ('a,b,c\n"x\ny",2,3\n1,2,3,4\n', 4, 4),               # a quoted line break is part of its row
])
def test_a_row_with_more_or_fewer_fields_than_the_header_names_its_line(tmp_path, text, line, fields):
    path = tmp_path / "rows.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=rf"^data\.path: rows\.csv line {line} has {fields} fields, its header 3; "
                                        r"the row is refused, not realigned"):
        read_csv(path)


def test_a_refused_row_names_the_separator_that_would_fit(tmp_path):
    """A semicolon file with decimal commas read with data.sep=comma: the hint names data.sep."""
    path = tmp_path / "semi.csv"
    path.write_text("x;y;z\n1;2;3\n4;5,5;6\n")
    with pytest.raises(DataError, match=r"line 3 has 2 fields, its header 1; the row is refused, not realigned "
                                        r"\(read as ','-separated; data\.sep=semicolon splits both into as many fields\)$"):
        read_csv(path, sep=",")
    assert list(read_csv(path).columns) == ["x", "y", "z"]  # sniffed, it reads as it should


def test_a_delimiter_ending_only_the_header_still_reads(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_text("a,b,\n1,2\n3,4,\n")
    frame = read_csv(path)
    assert list(frame.columns) == ["a", "b"] and frame.to_dict("list") == {"a": [1, 3], "b": [2, 4]}


# --- dates and dialects -----------------------------------------------------------------------


def test_iso_dates_become_days_since_1970(tmp_path):
    frame = holey_frame(30)
    frame["sold"] = pd.date_range("1970-01-01", periods=30, freq="7D").strftime("%Y-%m-%d")
    frame.loc[3, "sold"] = np.nan
    ds = load_dataset(write(tmp_path, frame), "y", shuffle=False)
    assert ds.columns()["sold"]["kind"] == "date"
    days = (pd.to_datetime(frame["sold"]) - pd.Timestamp("1970-01-01")).dt.days.astype(float)
    train_days = days.iloc[ds.indices["train"]]
    fill = train_days.median()
    assert ds.columns()["sold"]["fill"] == fill
    filled = train_days.fillna(fill)
    expected = (filled - filled.mean()) / filled.std(ddof=0)
    np.testing.assert_allclose(ds.X_train[:, ds.feature_names.index("sold")], expected, rtol=1e-12)
    assert [n for n in ds.feature_names if n.startswith("sold")] == ["sold"]  # one input, not 30


def test_semicolon_latin1_file_with_decimal_commas_reads_without_settings(tmp_path):
    frame = holey_frame(30).dropna()
    frame["town"] = np.where(np.arange(len(frame)) % 2, "Zürich", "Genève")
    path = tmp_path / "export.csv"
    frame.to_csv(path, sep=";", decimal=",", encoding="latin-1", index=False)
    assert b"," in path.read_bytes().split(b"\n")[1]  # decimal commas really are in the file
    ds = load_dataset(path, "y")
    assert ds.dialect == {"sep": ";", "encoding": "latin-1", "decimal_comma": ["size", "weight", "y"], "na_values": []}
    assert ds.columns()["town"]["levels"] == ["Genève", "Zürich"]
    np.testing.assert_allclose(
        ds.preprocessor.inverse_target(ds.y_train)[:, 0], frame["y"].to_numpy()[ds.indices["train"]], rtol=1e-12)
    with pytest.raises(DataError, match=r"data\.encoding: file '.*export\.csv' is not utf-8 text"):
        load_dataset(path, "y", encoding="utf-8")


def test_na_values_adds_tokens_to_pandas_own(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("a,b,y\n" + "".join(f"{'?' if i % 7 == 0 else i},{'NA' if i % 5 == 0 else i % 3},{i}\n"
                                        for i in range(1, 41)))
    with pytest.raises(DataError, match=r"column 'a' has 5 non-numeric value\(s\) \(first: '\?' in row 7\)"):
        load_dataset(path, "y")
    ds = load_dataset(path, "y", na_values=["?"])
    assert ds.missing == {"a": 5, "b": 8}


def test_bad_dialect_settings_name_their_key(tmp_path):
    path = write(tmp_path, holey_frame())
    with pytest.raises(ConfigError, match=r"data\.sep: ';;' is not a one-character delimiter"):
        load_dataset(path, "y", sep=";;")
    with pytest.raises(ConfigError, match=r"data\.encoding: 'klingon' is not an encoding"):
        load_dataset(path, "y", encoding="klingon")


# --- the saved state --------------------------------------------------------------------------


def test_saved_state_fills_new_rows_exactly_as_training_did(tmp_path):
    frame = holey_frame()
    ds = load_dataset(write(tmp_path, frame), "y", missing=Missing(indicator=True), max_categories=3)
    np.savez(tmp_path / "model.npz", **ds.preprocessor.to_arrays())
    with np.load(tmp_path / "model.npz", allow_pickle=False) as saved:
        restored = Preprocessor.from_arrays(saved)
    raw = pd.read_csv(tmp_path / "holes.csv")
    for split in ("train", "test"):
        rows = raw.iloc[ds.indices[split]].drop(columns="y")
        np.testing.assert_array_equal(restored.transform(rows), getattr(ds, f"X_{split}"))
    assert restored.describe() == ds.preprocessor.describe()
    new = pd.DataFrame({"size": [np.nan], "weight": [1.0], "colour": [None], "shape": ["triangle"]})
    x = restored.transform(new)[0]
    names = restored.feature_names
    assert x[names.index("size_missing")] == 1.0 and x[names.index("weight_missing")] == 0.0
    assert x[names.index("size")] == pytest.approx((ds.columns()["size"]["fill"] - restored.columns[0].mean)
                                                   / restored.columns[0].scale)
    colour = [i for i, n in enumerate(names) if n.startswith("colour=")]
    # Three columns for colour: its two most frequent training values, blue and green, and
    # <other>, where red and <missing> went; a missing cell is <missing>, so it lands in <other>.
    assert [names[i] for i in colour] == ["colour=blue", "colour=green", "colour=<other>"]
    assert x[colour].tolist() == [0.0, 0.0, 1.0]
    assert restored.describe()["colour"]["grouped_as_other"] == 2


def test_penguins_loads_with_defaults():
    ds = load_dataset(PENGUINS, "body_mass_g")
    assert ds.rows_in_file == 344 and sum(ds.rows.values()) == 342
    assert ds.dropped_rows == {"target_missing": 2}
    assert ds.columns()["sex"]["missing"] == 9
    assert np.isfinite(ds.X_train).all() and np.isfinite(ds.X_test).all()


def test_a_model_without_fills_names_every_column_with_holes_and_its_strategy(tmp_path):
    frame = holey_frame()
    ds = load_dataset(write(tmp_path, frame), "y", missing=Missing(numeric="drop_rows", categorical="drop_rows"))
    rows = frame.drop(columns="y").head(13)
    with pytest.raises(DataError) as caught:
        ds.preprocessor.transform(rows)
    assert str(caught.value) == (
        "input: missing cells in 'size' (2), 'weight' (2), 'colour' (2), 'shape' (2), and this model (trained with "
        "data.missing.categorical=drop_rows, data.missing.numeric=drop_rows) has no value to fill them with; "
        "fill or drop those rows")
    assert ds.preprocessor.transform(rows.iloc[:0]).shape == (0, ds.n_inputs)  # no rows, no error


def test_separator_names_and_a_missing_marker_hint(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\ty\n" + "".join(f"{i}\t{i % 3}\t{2 * i}\n" for i in range(1, 31)))
    assert load_dataset(path, "y", sep="tab").dialect["sep"] == "\t"
    assert load_dataset(path, "y", sep="\\t").dialect["sep"] == "\t"
    marked = tmp_path / "q.csv"
    marked.write_text("a,y\n" + "".join(f"{'?' if i % 9 == 0 else i},{i}\n" for i in range(1, 41)))
    with pytest.raises(DataError, match=r"first: '\?' in row 9\); if that marks a missing cell, add data\.na_values=\[\?\]"):
        load_dataset(marked, "y")
