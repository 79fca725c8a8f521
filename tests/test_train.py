"""The epoch loop: early stopping, divergence, collapse, callbacks, and a real dataset."""
import re

import numpy as np
import pandas as pd
import pytest

from sweeper.nn import SGD, Network, make_schedule
from sweeper.train import (CLASSIFICATION_METRICS, COLLAPSED, COMPLETED, DIVERGED, EARLY_STOPPED, STOPPED,
                           EarlyStopping, accuracy, classification_metrics, collapsed, f1_macro, fit, log_loss,
                           mae, r2, rmse, roc_auc)

from .paths import DATA


def test_early_stopping_stops_at_documented_epoch_and_restores_best_weights():
    net = Network([1, 1], seed=0)
    stopper = EarlyStopping(patience=3, min_delta=0.05, restore_best=True)
    curve = [1.0, 0.6, 0.58, 0.5, 0.49, 0.47, 0.46, 0.3]
    # epoch 4 (0.5) improves on 0.6 by > 0.05; 5, 6, 7 do not -> stop at epoch 7.
    stopped_at = None
    for epoch, loss in enumerate(curve, start=1):
        net.weights[0][:] = epoch  # the weights remember which epoch they belong to
        if stopper.update(epoch, loss, net):
            stopped_at = epoch
            break
    assert (stopped_at, stopper.best_epoch) == (7, 4)
    stopper.restore(net)
    assert net.weights[0][0, 0] == 4


def test_fit_with_early_stopping_returns_the_best_validation_weights():
    rng = np.random.default_rng(0)
    X, X_val = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    y, y_val = X[:, :1] + rng.normal(scale=1.0, size=(40, 1)), X_val[:, :1]
    net = Network([3, 64, 64, 1], seed=0)
    stopper = EarlyStopping(patience=5)
    result = fit(net, X, y, epochs=500, batch_size=8, eval_sets={"val": (X_val, y_val)},
                 optimizer=SGD(net.params(), momentum=0.9), schedule=make_schedule("constant", 0.05),
                 early_stopping=stopper)
    assert result.status == EARLY_STOPPED
    assert result.epochs_run == result.best_epoch + 5
    val = result.history["val_loss"]
    assert result.best_epoch == int(np.argmin(val)) + 1
    assert 0.5 * np.mean((net.forward(X_val) - y_val) ** 2) == pytest.approx(min(val), rel=1e-12)


def test_divergence_stops_with_a_clear_status_and_no_warning_storm():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 2)) * 10, rng.normal(size=(50, 1)) * 100
    net = Network([2, 8, 1], seed=0)
    with np.errstate(all="raise"):  # any leaked floating-point warning would raise here
        result = fit(net, X, y, epochs=100, optimizer=SGD(net.params(), momentum=0.9),
                     schedule=make_schedule("constant", 5.0))
    assert result.status == DIVERGED
    assert result.epochs_run < 100
    assert "train_loss became" in result.reason and f"epoch {result.epochs_run}" in result.reason


def test_callback_sees_each_epoch_and_can_stop_training():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 1))
    seen = []

    def callback(log):
        seen.append((log.epoch, log.lr, sorted(log.losses), log.predictions["val"].shape))
        return log.epoch == 4

    net = Network([2, 4, 1], seed=0)
    result = fit(net, X, y, epochs=50, eval_sets={"val": (X[:10], y[:10])}, callbacks=[callback],
                 schedule=make_schedule("exponential", 0.1, gamma=0.5))
    assert result.status == STOPPED and result.epochs_run == 4
    assert [s[0] for s in seen] == [1, 2, 3, 4]
    assert [s[1] for s in seen] == [0.1, 0.05, 0.025, 0.0125] == result.history["lr"]
    assert seen[0][2:] == (["train", "val"], (10, 1))


def test_every_step_of_an_epoch_uses_the_schedules_rate_for_that_epoch():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(24, 3)), rng.normal(size=(24, 1))
    trained, by_hand = Network([3, 5, 1], seed=0), Network([3, 5, 1], seed=0)
    fit(trained, X, y, epochs=3, batch_size=8, shuffle=False, optimizer=SGD(trained.params(), momentum=0.9),
        schedule=make_schedule("step", 0.1, step_size=1, gamma=0.5))
    optimizer = SGD(by_hand.params(), momentum=0.9)
    for lr in (0.1, 0.05, 0.025):
        for start in range(0, 24, 8):
            _, dW, db = by_hand.loss_and_grad(X[start : start + 8], y[start : start + 8])
            optimizer.update_params([*dW, *db], lr)
    for ours, expected in zip(trained.params(), by_hand.params()):
        np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_shuffled_fit_is_a_hand_written_loop_over_gathered_batches_bit_for_bit(dtype):
    """fit's epoch copy of the permuted rows gives each batch the rows X[order[start:start + b]]
    of that epoch's permutation, the last batch shorter; two fits in a row give the same."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(45, 3)), rng.normal(size=(45, 2))
    runs = []
    for _ in range(2):
        net = Network([3, 6, 2], seed=0, dtype=dtype, l2=0.01, dropout=0.2)
        fit(net, X, y, epochs=3, batch_size=16, seed=7, optimizer=SGD(net.params(), momentum=0.9),
            schedule=make_schedule("constant", 0.05))
        runs.append(net.params())
    by_hand = Network([3, 6, 2], seed=0, dtype=dtype, l2=0.01, dropout=0.2)
    optimizer, order_rng = SGD(by_hand.params(), momentum=0.9), np.random.default_rng(7)
    for _ in range(3):
        order = order_rng.permutation(45)
        for start in range(0, 45, 16):
            rows = order[start : start + 16]
            _, dW, db = by_hand.loss_and_grad(X[rows], y[rows])
            optimizer.update_params([*dW, *db], 0.05)
    for first, second, expected in zip(*runs, by_hand.params()):
        np.testing.assert_array_equal(first, expected)
        np.testing.assert_array_equal(second, expected)


def test_a_callback_stop_still_lets_early_stopping_record_the_last_epoch():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 1))
    net = Network([2, 4, 1], seed=0)
    stopper = EarlyStopping(patience=50)
    result = fit(net, X, y, epochs=50, eval_sets={"val": (X, y)}, early_stopping=stopper,
                 schedule=make_schedule("constant", 0.05), callbacks=[lambda log: log.epoch == 3])
    val = result.history["val_loss"]
    assert result.status == STOPPED and len(val) == 3
    assert val[2] < val[1] < val[0]  # still improving when stopped
    assert result.best_epoch == 3
    assert 0.5 * np.mean((net.forward(X) - y) ** 2) == pytest.approx(val[2], rel=1e-12)


def test_reshuffling_is_seeded():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 3)), rng.normal(size=(64, 1))
    runs = []
    for seed in (1, 1, 2):
        net = Network([3, 8, 1], seed=0)
        fit(net, X, y, epochs=3, batch_size=8, seed=seed, schedule=make_schedule("constant", 0.05))
        runs.append(net.weights[0].copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_metrics_match_their_definitions():
    y, y_hat = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0])
    assert rmse(y, y_hat) == pytest.approx(np.sqrt((0.25 + 1) / 3))
    assert mae(y, y_hat) == pytest.approx(0.5)
    assert r2(y, y_hat) == pytest.approx(1 - 1.25 / (((y - y.mean()) ** 2).sum()))


def random_classification(n_classes: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Codes (n,) and probabilities (n, K) made of small integers, so scores tie often."""
    rng = np.random.default_rng(n_classes)
    y_true = rng.integers(0, n_classes, size=n)
    raw = rng.integers(1, 4, size=(n, n_classes)) + 2 * np.eye(n_classes, dtype=int)[y_true]
    if n_classes == 2:  # ties in the one score the binary AUC reads
        p = raw[:, 1] / 6.0
        return y_true, np.column_stack([1 - p, p])
    return y_true, raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_classification_metrics_match_sklearn(n_classes):
    import sklearn.metrics as sk
    y_true, proba = random_classification(n_classes)
    y_pred = proba.argmax(axis=1)
    assert len(np.unique(proba[:, 1])) < len(proba) // 5  # the AUC sees many ties
    assert accuracy(y_true, y_pred) == sk.accuracy_score(y_true, y_pred)
    assert log_loss(y_true, proba) == pytest.approx(sk.log_loss(y_true, proba), rel=1e-12)
    assert f1_macro(y_true, y_pred) == pytest.approx(
        sk.f1_score(y_true, y_pred, average="macro", zero_division=0), rel=1e-12)
    expected_auc = (sk.roc_auc_score(y_true, proba[:, 1]) if n_classes == 2 else
                    sk.roc_auc_score(y_true, proba, multi_class="ovr", average="macro"))
    assert roc_auc(y_true, proba) == pytest.approx(expected_auc, rel=1e-12)
    assert 0.5 < expected_auc < 1.0
    assert classification_metrics(y_true, proba) == {
        name: fn(y_true, proba) for name, fn in CLASSIFICATION_METRICS.items()}
    assert list(classification_metrics(y_true, proba)) == ["accuracy", "log_loss", "f1_macro", "roc_auc"]
    assert classification_metrics(y_true, proba)["f1_macro"] == f1_macro(y_true, y_pred)


def test_f1_macro_averages_over_classes_in_either_labels_or_predictions():
    import sklearn.metrics as sk
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 3, size=50), rng.integers(1, 4, size=50)  # 0 never predicted, 3 never true
    assert f1_macro(y_true, y_pred) == pytest.approx(
        sk.f1_score(y_true, y_pred, average="macro", zero_division=0), rel=1e-12)


def test_roc_auc_is_nan_with_one_class_and_log_loss_finite_when_confidently_wrong():
    proba = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    assert np.isnan(roc_auc(np.array([2, 2]), proba))
    assert np.isnan(roc_auc(np.array([0, 0]), proba[:, :2] / proba[:, :2].sum(axis=1, keepdims=True)))
    assert log_loss(np.array([0]), np.array([[0.0, 1.0]])) == pytest.approx(-np.log(np.finfo(float).eps))


@pytest.mark.parametrize("y_true,proba", [([0, 3], [[0.5, 0.5], [0.5, 0.5]]), ([0.0, 1.0], [[0.5, 0.5]] * 2),
                                          ([0, 1], [0.5, 0.5]), ([0, 1, 1], [[0.5, 0.5]] * 2)])
def test_classification_metrics_refuse_what_is_not_codes_and_probabilities(y_true, proba):
    with pytest.raises(ValueError):
        log_loss(np.array(y_true), np.array(proba))


def test_car_prices_reaches_test_r2_090_and_float32_agrees_with_float64():
    frame = pd.read_csv(DATA / "car_prices.csv")
    y = frame.pop("Price").to_numpy()[:, None]
    X = frame.to_numpy(dtype=float)
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[: int(0.8 * len(X))], order[int(0.8 * len(X)):]
    X = (X - X[train].mean(axis=0)) / X[train].std(axis=0)
    y_mean, y_std = y[train].mean(), y[train].std()
    scores = {}
    for dtype in ("float64", "float32"):
        net = Network([X.shape[1], 32, 32, 1], activation="relu", seed=0, dtype=dtype)
        fit(net, X[train], (y[train] - y_mean) / y_std, epochs=300, batch_size=32, seed=0,
            optimizer=SGD(net.params(), momentum=0.9), schedule=make_schedule("constant", 0.01))
        scores[dtype] = r2(y[test], net.forward(X[test]) * y_std + y_mean)
    assert scores["float64"] >= 0.90
    assert scores["float32"] == pytest.approx(scores["float64"], abs=1e-3)


def test_divergence_factor_stops_finite_runaway_losses_before_any_callback_sees_them():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 2)) * 10, rng.normal(size=(50, 1)) * 100
    untrained = Network([2, 8, 1], seed=0)
    initial = 0.5 * np.mean((untrained.forward(X) - y) ** 2)  # L₀, the bound's reference
    unbounded = Network([2, 8, 1], seed=0)
    free = fit(unbounded, X, y, epochs=100, optimizer=SGD(unbounded.params(), momentum=0.9),
               schedule=make_schedule("constant", 5.0))
    assert free.history["train_loss"][0] > 1e4 * initial  # finite, and far past the bound

    seen = []
    net = Network([2, 8, 1], seed=0)
    result = fit(net, X, y, epochs=100, optimizer=SGD(net.params(), momentum=0.9),
                 schedule=make_schedule("constant", 5.0),
                 callbacks=[lambda log: seen.append(log.losses["train"])], divergence_factor=1e4)
    assert result.status == DIVERGED and result.epochs_run == 1 and seen == []
    assert result.reason == (f"train_loss {result.history['train_loss'][0]:.3g} at epoch 1 exceeded divergence_factor "
                             f"10000 x the untrained network's {initial:.3g} (lr=5)")


def test_divergence_factor_leaves_a_healthy_run_bit_for_bit_alone():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(60, 3)), rng.normal(size=(60, 1))
    runs = []
    for factor in (None, 1e4):
        net = Network([3, 16, 1], seed=2)
        result = fit(net, X, y, epochs=30, batch_size=8, optimizer=SGD(net.params(), momentum=0.9),
                     schedule=make_schedule("constant", 0.05),
                     divergence_factor=factor)
        runs.append((result.history["train_loss"], [w.copy() for w in net.weights]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def sgd_fit(net, X, y, lr=0.05, **options):
    return fit(net, X, y, epochs=30, batch_size=8, optimizer=SGD(net.params(), momentum=0.9),
               schedule=make_schedule("constant", lr), **options)


@pytest.mark.parametrize("dead_layer", [0, 1])
def test_a_network_whose_hidden_layer_dies_ends_collapsed_before_any_callback_sees_it(dead_layer):
    """Every ReLU of one hidden layer dead on every row after epoch 2 (its biases pushed far below
    what its inputs reach): ŷ is the output bias, the same for every row, a finite loss that no
    divergence bound sees. The run stops at epoch 3, FAIL-like: status, epoch, layer and lr in
    the reason, no callback (an Optuna pruner) told, and early stopping restores nothing."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]])
    net = Network([3, 8, 4, 1], activation="relu", seed=0)
    seen = []

    def kill_after_epoch_2(log):
        seen.append(log.epoch)
        if log.epoch == 2:
            net.biases[dead_layer][:] = -100.0

    result = sgd_fit(net, X, y, eval_sets={"val": (X[:20], y[:20])}, callbacks=[kill_after_epoch_2],
                     early_stopping=EarlyStopping(patience=5), divergence_factor=1e4)
    assert result.status == COLLAPSED and result.epochs_run == 3 and seen == [1, 2]
    assert result.reason == (f"the network's output collapsed to a constant at epoch 3 "
                             f"(every hidden unit of layer {dead_layer + 1} dead; lr=0.05)")
    assert np.ptp(net.forward(X)) == 0.0  # the collapsed weights are kept, not the best epoch's
    assert np.isfinite(result.history["train_loss"]).all()


def test_a_classifier_with_constant_class_probabilities_ends_collapsed():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.eye(3)[np.argmax(X, axis=1)]
    net = Network([3, 8, 3], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0)
    net.biases[0][:] = -100.0
    result = sgd_fit(net, X, y)
    assert result.status == COLLAPSED
    assert result.reason == "the network's output collapsed to a constant at epoch 1 (every hidden unit of layer 1 dead; lr=0.05)"


def test_weights_an_l2_penalty_crushes_to_zero_are_a_collapse_that_says_its_spread():
    """λ₂ = 3 makes W = 0 the minimum: no layer dies whole, but ŷ shrinks to a constant, the
    failure a user sees (R² 0) whatever its cause, so it ends the run as a dead layer does."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + rng.normal(scale=0.3, size=(200, 1))
    net = Network([3, 16, 8, 1], activation="relu", seed=0, l2=3.0)
    result = sgd_fit(net, X, y, lr=0.01)
    assert result.status == COLLAPSED
    assert re.fullmatch(r"the network's output collapsed to a constant at epoch \d+ \(its spread over the training "
                        r"rows \S+ x the target's; hidden units dead: \d+/16, \d+/8; lr=0.01\)", result.reason)
    assert np.std(net.forward(X)) <= 1e-6 * np.std(y)


@pytest.mark.parametrize("sizes, options", [
    ([3, 1], {}),                                      # a linear model
    ([3, 1], {"l2": 10.0}),                            # a heavily penalised linear model: ŷ shrinks, stays a function of x
    ([3, 16, 1], {}),                                  # a tiny ReLU network that fits
    ([3, 16, 1], {"l2": 1.0}),
    ([3, 16, 8, 1], {"dropout": 0.5, "max_norm": 0.5}),
    ([3, 16, 1], {"l1": 0.05}),
])
def test_healthy_and_heavily_regularised_networks_are_not_collapsed(sizes, options):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + rng.normal(scale=0.3, size=(200, 1))
    net = Network(sizes, activation="relu", seed=0, **options)
    result = sgd_fit(net, X, y, lr=0.01, eval_sets={"val": (X[:50], y[:50])})
    assert result.status == COMPLETED and result.epochs_run == 30
    assert np.std(net.forward(X)) > 1e-3 * np.std(y)


def test_a_constant_target_is_met_by_a_constant_output_without_a_collapse():
    X = np.random.default_rng(0).normal(size=(60, 3))
    net = Network([3, 8, 1], activation="relu", seed=0)
    net.biases[0][:] = -100.0
    result = sgd_fit(net, X, np.full((60, 1), 3.0))
    assert result.status == COMPLETED and result.reason is None


def test_the_collapse_rule_is_a_spread_below_a_millionth_of_the_targets_on_every_varying_output():
    rows = np.linspace(-1.0, 1.0, 101)[:, None]  # std 0.58
    spread = np.array([2.0])
    assert collapsed(np.full((101, 1), 0.3), spread)
    assert collapsed(0.3 + 1e-6 * rows, spread)                  # 0.58e-6 <= 1e-6 x 2
    assert not collapsed(0.3 + 1e-5 * rows, spread)
    assert not collapsed(np.full((101, 1), 0.3), np.array([0.0]))  # a constant target: nothing to collapse from
    two = np.hstack([np.full((101, 1), 0.5), 0.5 + rows])         # one class's probability still varies
    assert not collapsed(two, np.array([0.5, 0.5]))
    assert collapsed(np.hstack([np.full((101, 1), 0.5), 0.5 + 1e-9 * rows]), np.array([0.5, 0.0]))
