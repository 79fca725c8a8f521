"""``data.target_scaling=log``: the network learns a standardised ln y, everything else sees y."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from sweeper.data import Preprocessor, load_dataset
from sweeper.data.columns import LARGEST
from sweeper.errors import DataError

CAR_PRICES = Path(__file__).resolve().parents[1] / "data" / "car_prices.csv"
Y = np.array([0.5, 2.0, 3.0, 40.0, 1250.0, 7.25])


def log_preprocessor(y: np.ndarray = Y) -> Preprocessor:
    frame = pd.DataFrame({"x": np.arange(len(y), dtype=float), "y": y})
    return Preprocessor("y", ["x"], target_scaling="log").fit(frame)


def test_log_scaling_is_the_standardised_log_of_training_targets_and_inverts_it():
    prep = log_preprocessor()
    ln = np.log(Y)
    assert (prep.target_shift, prep.target_scale) == pytest.approx((ln.mean(), ln.std()), rel=1e-15)
    scaled = prep.transform_target(Y)
    np.testing.assert_allclose(scaled[:, 0], (ln - ln.mean()) / ln.std(), rtol=1e-12)
    np.testing.assert_allclose(prep.inverse_target(scaled)[:, 0], Y, rtol=1e-12)


def test_log_scaled_predictions_stay_finite_for_huge_network_outputs():
    predictions = log_preprocessor().inverse_target(np.array([[1e300], [-1e300], [np.float64(1e5)]]))
    assert np.isfinite(predictions).all() and predictions.max() == pytest.approx(LARGEST) and predictions.min() > 0


def test_a_non_positive_target_is_refused_in_one_line_naming_setting_column_count_and_smallest(tmp_path):
    frame = pd.DataFrame({"x": np.arange(20.0), "price": np.linspace(1, 20, 20)})
    frame.loc[[3, 15], "price"] = [0.0, -2.5]
    frame.to_csv(tmp_path / "prices.csv", index=False)
    with pytest.raises(DataError) as caught:
        load_dataset(tmp_path / "prices.csv", target="price", target_scaling="log")
    assert str(caught.value) == (
        "data.target_scaling=log: target column 'price' has 2 value(s) <= 0 in the rows of prices.csv "
        "(smallest: -2.5); log needs every target > 0: use data.target_scaling=standard, or drop those rows"
    )
    load_dataset(tmp_path / "prices.csv", target="price", target_scaling="standard")  # fine without log
    # Rows given to a fitted preprocessor are checked too, named as the caller says.
    with pytest.raises(DataError, match=r"has 1 value\(s\) <= 0 in the validation rows \(smallest: 0\)"):
        log_preprocessor().transform_target([3.0, 0.0], what="validation rows")


def test_a_saved_log_scaled_model_predicts_raw_rows_in_original_units(tmp_path):
    from sweeper.nn import Network
    from sweeper.tracking.model_file import load_model, predict, save_model

    ds = load_dataset(CAR_PRICES, target="Price", target_scaling="log")
    net = Network([ds.n_inputs, 1], activation="identity", output_activation="identity", init="he", seed=0)
    X = np.hstack([ds.X_train, np.ones((len(ds.X_train), 1))])
    solution = np.linalg.lstsq(X, ds.y_train, rcond=None)[0]  # least squares on the scaled ln(Price)
    net.set_params([solution[:-1]], [solution[-1]])
    model_cfg = OmegaConf.create({"activation": "identity", "output_activation": "identity", "init": "he",
                                  "dtype": "float64", "leaky_slope": 0.01, "elu_alpha": 1.0})
    save_model(tmp_path / "model.npz", net, ds.preprocessor, model_cfg)

    loaded_net, loaded = load_model(tmp_path / "model.npz")
    assert loaded.target_scaling == "log"
    rows = pd.read_csv(CAR_PRICES).iloc[ds.indices["test"]]
    train_ln = np.log(pd.read_csv(CAR_PRICES)["Price"].to_numpy()[ds.indices["train"]])
    expected = np.exp(net.forward(ds.X_test)[:, 0] * train_ln.std() + train_ln.mean())
    predicted = predict(loaded_net, loaded, rows)
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)
    # Dollars, not log dollars: a fair fit is within a few thousand of the price.
    assert np.sqrt(np.mean((predicted - rows["Price"].to_numpy()) ** 2)) < 0.5 * rows["Price"].std()
