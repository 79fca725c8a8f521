"""The data layer: CSV → split, encoded arrays, and the saved state that encodes new rows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweeper.data import Preprocessor, load_dataset, sha256_file, split_indices
from sweeper.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
CAR_PRICES = ROOT / "data" / "car_prices.csv"
DIAMONDS = ROOT / "data" / "diamonds.csv"


def mixed_frame(n: int = 40) -> pd.DataFrame:
    """Small data with every column kind: numbers, yes/no, 0/1, true/false, two strings,
    many strings, a numeric code meant as categorical and a constant column."""
    rng = np.random.default_rng(7)
    regions = np.array(["north", "south", "east", "west"])
    frame = pd.DataFrame(
        {
            "size": rng.normal(50, 10, n).round(2),
            "smoker": np.where(np.arange(n) % 3 == 0, "yes", "no"),
            "flag": np.arange(n) % 2,
            "member": np.where(np.arange(n) % 4 == 0, "true", "false"),
            "grade": np.where(np.arange(n) % 5 == 0, "beta", "alpha"),
            "region": regions[np.arange(n) % 4],
            "code": np.array([3, 5, 7])[np.arange(n) % 3],
            "constant": np.full(n, 5.1),
        }
    )
    frame["price"] = (3 * frame["size"] + 20 * (frame["smoker"] == "yes") + rng.normal(0, 1, n)).round(2)
    return frame


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "mixed.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def write_text(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- numeric standardisation -------------------------------------------------------------


def test_standardisation_stats_come_from_training_rows_only() -> None:
    ds = load_dataset(CAR_PRICES, target="Price", seed=3)
    raw = pd.read_csv(CAR_PRICES)
    train = raw.iloc[ds.indices["train"]]
    for name in ("Mileage", "Cylinder"):
        j = ds.feature_names.index(name)
        mean, std = train[name].mean(), train[name].std(ddof=0)
        assert mean != pytest.approx(raw[name].mean(), rel=1e-6)  # the pins below can tell them apart
        np.testing.assert_allclose(ds.X_train[:, j], (train[name] - mean) / std, rtol=1e-12)
        test = raw.iloc[ds.indices["test"]][name]
        np.testing.assert_allclose(ds.X_test[:, j], (test - mean) / std, rtol=1e-12)
    assert ds.X_train[:, ds.feature_names.index("Mileage")].mean() == pytest.approx(0, abs=1e-12)
    assert ds.X_train[:, ds.feature_names.index("Mileage")].std() == pytest.approx(1, rel=1e-12)


def test_constant_column_encodes_as_zero_not_nan(tmp_path: Path) -> None:
    ds = load_dataset(write(tmp_path, mixed_frame()), target="price")
    j = ds.feature_names.index("constant")
    for X in (ds.X_train, ds.X_val, ds.X_test):
        assert np.all(X[:, j] == 0.0)
    assert np.isfinite(ds.X_train).all()


# --- binary and one-hot columns ----------------------------------------------------------


def test_two_valued_columns_map_smaller_value_to_minus_one(tmp_path: Path) -> None:
    frame = mixed_frame()
    ds = load_dataset(write(tmp_path, frame), target="price", shuffle=False)
    train = frame.iloc[ds.indices["train"]]
    expected = {
        "smoker": np.where(train["smoker"] == "yes", 1.0, -1.0),
        "flag": np.where(train["flag"] == 1, 1.0, -1.0),
        "member": np.where(train["member"] == "true", 1.0, -1.0),
        "grade": np.where(train["grade"] == "beta", 1.0, -1.0),
    }
    for name, values in expected.items():
        np.testing.assert_array_equal(ds.X_train[:, ds.feature_names.index(name)], values, err_msg=name)


def test_car_prices_dummies_become_plus_minus_one() -> None:
    ds = load_dataset(CAR_PRICES, target="Price")
    raw = pd.read_csv(CAR_PRICES).iloc[ds.indices["train"]]
    j = ds.feature_names.index("Leather")
    np.testing.assert_array_equal(ds.X_train[:, j], np.where(raw["Leather"] == 1, 1.0, -1.0))
    assert ds.n_inputs == 17


def test_string_columns_are_one_hot_encoded_with_sorted_training_categories(tmp_path: Path) -> None:
    frame = mixed_frame()
    ds = load_dataset(write(tmp_path, frame), target="price", categorical=["code"])
    region = [n for n in ds.feature_names if n.startswith("region=")]
    assert region == ["region=east", "region=north", "region=south", "region=west"]
    assert [n for n in ds.feature_names if n.startswith("code=")] == ["code=3", "code=5", "code=7"]
    block = ds.X_train[:, [ds.feature_names.index(n) for n in region]]
    train_region = frame["region"].iloc[ds.indices["train"]].to_numpy()
    np.testing.assert_array_equal(block.sum(axis=1), 1.0)
    np.testing.assert_array_equal(np.array(region)[block.argmax(axis=1)], "region=" + train_region)


def test_unseen_category_in_test_rows_encodes_as_all_zeros(tmp_path: Path) -> None:
    frame = mixed_frame(20)
    frame.loc[19, "region"] = "mars"  # unshuffled, the last row lands in the test split
    ds = load_dataset(write(tmp_path, frame), target="price", shuffle=False, test_size=0.2, val_size=0.1)
    assert ds.indices["test"][-1] == 19
    assert "region=mars" not in ds.feature_names
    cols = [ds.feature_names.index(n) for n in ds.feature_names if n.startswith("region=")]
    np.testing.assert_array_equal(ds.X_test[-1, cols], 0.0)
    np.testing.assert_array_equal(ds.X_test[:-1, cols].sum(axis=1), 1.0)


def test_diamonds_encodes_to_26_inputs() -> None:
    """(Its speed against scikit-learn's encoders: benchmarks/load_speed.py.)"""
    ds = load_dataset(DIAMONDS, target="price")
    assert ds.n_inputs == 26 == ds.X_train.shape[1]
    assert sum(n.startswith("cut=") for n in ds.feature_names) == 5
    assert sum(n.startswith("color=") for n in ds.feature_names) == 7
    assert sum(n.startswith("clarity=") for n in ds.feature_names) == 8
    assert sum(ds.rows.values()) == 53_940


# --- target scaling ----------------------------------------------------------------------


@pytest.mark.parametrize("scaling", ["standard", "minmax", "none", "log"])
def test_inverse_target_returns_original_units(scaling: str) -> None:
    ds = load_dataset(CAR_PRICES, target="Price", target_scaling=scaling)
    price = pd.read_csv(CAR_PRICES)["Price"].to_numpy()
    for split, y in (("train", ds.y_train), ("val", ds.y_val), ("test", ds.y_test)):
        assert y.shape == (ds.rows[split], 1)
        np.testing.assert_allclose(ds.preprocessor.inverse_target(y)[:, 0], price[ds.indices[split]], rtol=1e-12)
    train = price[ds.indices["train"]]
    if scaling == "standard":
        assert ds.y_train.mean() == pytest.approx(0, abs=1e-12) and ds.y_train.std() == pytest.approx(1)
    elif scaling == "minmax":
        assert ds.y_train.min() == 0.0 and ds.y_train.max() == 1.0
    elif scaling == "log":
        np.testing.assert_allclose(ds.y_train[:, 0], (np.log(train) - np.log(train).mean()) / np.log(train).std(),
                                   rtol=1e-12)
    else:
        np.testing.assert_array_equal(ds.y_train[:, 0], train)


# --- splitting ---------------------------------------------------------------------------


def test_split_sizes_are_disjoint_cover_all_rows_and_are_deterministic() -> None:
    parts = split_indices(804, test_size=0.2, val_size=0.1, seed=5)
    assert {k: len(v) for k, v in parts.items()} == {"train": 563, "val": 80, "test": 161}
    everything = np.concatenate(list(parts.values()))
    assert len(np.unique(everything)) == 804 and set(everything) == set(range(804))
    again = split_indices(804, test_size=0.2, val_size=0.1, seed=5)
    for k in parts:
        np.testing.assert_array_equal(parts[k], again[k])
    other = split_indices(804, test_size=0.2, val_size=0.1, seed=6)
    assert not np.array_equal(parts["test"], other["test"])
    expected = np.random.default_rng(5).permutation(804)
    np.testing.assert_array_equal(np.concatenate([parts["train"], parts["val"], parts["test"]]), expected)


def test_unshuffled_split_keeps_file_order() -> None:
    parts = split_indices(10, test_size=0.2, val_size=0.3, shuffle=False)
    np.testing.assert_array_equal(parts["train"], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(parts["val"], [5, 6, 7])
    np.testing.assert_array_equal(parts["test"], [8, 9])


def test_same_inputs_give_identical_arrays() -> None:
    a = load_dataset(CAR_PRICES, target="Price", seed=11)
    b = load_dataset(CAR_PRICES, target="Price", seed=11)
    for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = load_dataset(CAR_PRICES, target="Price", seed=12)
    assert not np.array_equal(a.y_test, c.y_test)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_arrays_have_requested_dtype_and_layout(dtype: str) -> None:
    ds = load_dataset(CAR_PRICES, target="Price", dtype=dtype)
    for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        array = getattr(ds, name)
        assert array.dtype == np.dtype(dtype) and array.ndim == 2 and array.flags.c_contiguous, name
    assert ds.X_train.shape == (ds.rows["train"], 17) and ds.y_val.shape == (ds.rows["val"], 1)


def test_dataset_records_absolute_path_and_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, mixed_frame())
    monkeypatch.chdir(tmp_path)
    ds = load_dataset("mixed.csv", target="price")
    assert ds.path == str(path.resolve())
    assert ds.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)
    assert ds.info()["rows"] == ds.rows == {"train": 28, "val": 4, "test": 8}


# --- saving the fitted state -------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_npz_round_trip_without_pickle_reproduces_inputs_exactly(tmp_path: Path, dtype: str) -> None:
    frame = mixed_frame()
    frame.loc[39, "region"] = "mars"
    ds = load_dataset(write(tmp_path, frame), target="price", categorical=["code"], dtype=dtype, shuffle=False)
    arrays = ds.preprocessor.to_arrays()
    assert all(a.dtype != object for a in arrays.values())
    np.savez(tmp_path / "model.npz", weights=np.ones(3), **arrays)
    with np.load(tmp_path / "model.npz", allow_pickle=False) as saved:
        restored = Preprocessor.from_arrays(saved)
    new_rows = pd.read_csv(tmp_path / "mixed.csv")  # raw cells, as a user would bring them
    X = restored.transform(new_rows.iloc[ds.indices["test"]], dtype=dtype)
    np.testing.assert_array_equal(X, ds.X_test)
    assert restored.feature_names == list(ds.feature_names)
    np.testing.assert_array_equal(restored.inverse_target(ds.y_test), ds.preprocessor.inverse_target(ds.y_test))


def test_transforming_new_rows_checks_their_values() -> None:
    ds = load_dataset(CAR_PRICES, target="Price")
    rows = pd.read_csv(CAR_PRICES).head(3).astype({"Mileage": object})
    rows.loc[1, "Mileage"] = "lots"
    with pytest.raises(DataError, match=r"column 'Mileage' has 1 non-numeric value\(s\) \(first: 'lots' in row 2\)"):
        ds.preprocessor.transform(rows)
    with pytest.raises(DataError, match="'Cruise' is not in"):
        ds.preprocessor.transform(rows.drop(columns="Cruise"))


# --- bad input ---------------------------------------------------------------------------

GOOD = "a,b,y\n" + "".join(f"{i},{i % 3},{2 * i}\n" for i in range(20))


def _bad(tmp_path: Path, case: str) -> dict:
    """load_dataset keywords for one kind of bad input."""
    lines = GOOD.splitlines()
    edit = {
        "empty file": "",
        "header only": "a,b,y\n",
        "feature inf": "\n".join(lines[:5] + ["inf,1,8"] + lines[6:]),
        "non-numeric": "\n".join(lines[:17] + ["abc,1,8"] + lines[18:]),
        "non-numeric target": "\n".join(lines[:3] + ["4,1,cheap"] + lines[4:]),
    }
    if case in edit:
        return {"path": write_text(tmp_path, edit[case]), "target": "y"}
    good = write_text(tmp_path, GOOD)
    return {
        "missing file": {"path": tmp_path / "nope.csv", "target": "y"},
        "missing target": {"path": good, "target": "price"},
        "missing feature": {"path": good, "target": "y", "features": ["a", "zz"]},
        "categorical not a feature": {"path": good, "target": "y", "features": ["a"], "categorical": ["b"]},
        "target as feature": {"path": good, "target": "y", "features": ["a", "y"]},
        "repeated feature": {"path": good, "target": "y", "features": ["a", "b", "a"]},
        "val split empty": {"path": good, "target": "y", "val_size": 0.01},
        "test split empty": {"path": good, "target": "y", "test_size": 0.01},
    }[case]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing file", r"data\.path: file '.*nope\.csv' does not exist"),
        ("empty file", r"data\.path: file '.*bad\.csv' is empty"),
        ("header only", r"data\.path: file '.*bad\.csv' has a header but no data rows"),
        ("missing target", r"data\.target: column 'price' is not in bad\.csv; available: 'a', 'b', 'y'"),
        ("missing feature", r"data\.features: column 'zz' is not in bad\.csv; available: 'a', 'b', 'y'"),
        ("categorical not a feature", r"data\.categorical: column 'b' is not a feature; features: 'a'"),
        ("target as feature", r"data\.features: the target column 'y' cannot also be a feature"),
        ("repeated feature", r"data\.features: column 'a' is listed more than once"),
        ("feature inf", r"column 'a' has 1 infinite value\(s\) \(first: inf in row 5\)"),
        ("non-numeric", r"column 'a' has 1 non-numeric value\(s\) \(first: 'abc' in row 17\); if that marks a missing "
                        r"cell, add data\.na_values=\[abc\]; else list it in data\.categorical"),
        ("non-numeric target", r"target column 'y' has 1 non-numeric value\(s\) \(first: 'cheap' in row 3\)"),
        ("val split empty", r"split\.val_size=0\.01 gives 0 val rows out of 20"),
        ("test split empty", r"split\.test_size=0\.01 gives 0 test rows out of 20"),
    ],
)
def test_bad_input_raises_one_line_data_error_naming_the_culprit(tmp_path: Path, case: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as caught:
        load_dataset(**_bad(tmp_path, case))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"target_scaling": "sqrt"},
         r"data\.target_scaling: unknown value 'sqrt'; allowed: standard, minmax, none, log"),
        ({"dtype": "float16"}, r"dtype: unknown value 'float16'; allowed: float64, float32"),
        ({"test_size": 1.5}, r"split\.test_size: 1\.5 is out of range; allowed: a fraction in \(0, 1\)"),
        ({"val_size": 0}, r"split\.val_size: 0 is out of range"),
        ({"test_size": 0.6, "val_size": 0.4},
         r"split\.test_size \+ split\.val_size: 1\.0 is out of range; allowed: a sum below 1"),
        ({"seed": -1}, r"split\.seed: -1 is out of range; allowed: an integer >= 0"),
    ],
)
def test_settings_out_of_range_raise_one_line_config_error(tmp_path: Path, keywords: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_dataset(write_text(tmp_path, GOOD), target="y", **keywords)
    assert "\n" not in str(caught.value)


def test_a_sweeps_repeated_load_reuses_the_dataset_and_no_one_can_write_into_it(tmp_path):
    path = tmp_path / "data.csv"
    mixed_frame().to_csv(path, index=False)
    first = load_dataset(path, "price", categorical=["region"], seed=3)
    again = load_dataset(path, "price", categorical=["region"], seed=3)
    assert again is first
    for array in (first.X_train, first.y_val, first.indices["test"]):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0
    other_split = load_dataset(path, "price", categorical=["region"], seed=4)
    assert other_split is not first
    assert not np.array_equal(other_split.indices["train"], first.indices["train"])


def test_a_changed_file_is_read_again(tmp_path):
    path = tmp_path / "data.csv"
    frame = mixed_frame()
    frame.to_csv(path, index=False)
    before = load_dataset(path, "price", shuffle=False)
    frame.loc[0, "size"] = 1000.0
    frame.to_csv(path, index=False)
    after = load_dataset(path, "price", shuffle=False)
    assert after is not before and after.sha256 != before.sha256
    assert not np.array_equal(after.X_train, before.X_train)
