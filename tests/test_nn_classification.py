"""Classification: softmax and sigmoid outputs with cross-entropy, against finite differences
and scikit-learn's MLPClassifier and log_loss."""
import itertools
import warnings

import numpy as np
import pytest
import sklearn.metrics as sklearn_metrics
import sklearn.neural_network as sklearn_nn

from sweeper.nn import ACTIVATIONS, SGD, Network, gradient_check, make_schedule
from sweeper.nn.activations import Softmax
from sweeper.train import classification_metrics, fit

EPS = np.finfo(np.float64).eps
NO_OVERFLOW = {"over": "raise", "invalid": "raise", "divide": "raise"}  # underflow to 0 is fine


def classifier(sizes, **kwargs) -> Network:
    """A cross-entropy network: softmax output for K ≥ 2 classes, sigmoid for one output."""
    output = "softmax" if sizes[-1] > 1 else "sigmoid"
    return Network(sizes, output_activation=output, loss="cross_entropy", **kwargs)


def one_hot(codes: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes)[codes]


@pytest.mark.parametrize("activation,n_outputs", list(itertools.product(ACTIVATIONS, [3, 1])))
def test_gradient_check_cross_entropy_every_hidden_activation_with_l1_and_l2(activation, n_outputs):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(6, 4))
    codes = rng.integers(0, max(n_outputs, 2), size=6)
    y = one_hot(codes, n_outputs) if n_outputs > 1 else codes
    net = classifier([4, 5, n_outputs], activation=activation, init="xavier", seed=2, l1=0.1, l2=0.2)
    for b in net.biases:
        b[:] = rng.normal(scale=0.1, size=b.shape)
    # |W| has a kink at 0: keep every weight further from it than the step h.
    for W in net.weights:
        W[:] = np.sign(W) * (np.abs(W) + 0.05)
    assert gradient_check(net, X, y) < 1e-7


def test_gradient_check_softmax_with_dropout():
    rng = np.random.default_rng(1)
    X, codes = rng.normal(size=(8, 3)), rng.integers(0, 4, size=8)
    net = classifier([3, 6, 4], activation="tanh", dropout=0.3, seed=0)
    assert gradient_check(net, X, one_hot(codes, 4)) < 1e-7


def test_softmax_jacobian_matches_centred_finite_differences():
    rng = np.random.default_rng(0)
    z, h = rng.normal(size=(4, 5)) * 3, 1e-5
    softmax = Softmax()
    numeric = np.empty((4, 5, 5))
    for j in range(5):
        step = np.zeros(5)
        step[j] = h
        numeric[:, :, j] = (softmax.forward(z + step) - softmax.forward(z - step)) / (2 * h)
    np.testing.assert_allclose(Softmax.jacobian(softmax.forward(z)), numeric, rtol=0, atol=1e-9)


def test_softmax_is_stable_and_rows_sum_to_one():
    z = np.array([[1000.0, 0.0, -1000.0], [-800.0, -800.0, -800.0], [0.0, 1.0, 2.0]])
    with np.errstate(**NO_OVERFLOW):
        s = Softmax().forward(z)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(s[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(s[1], 1 / 3, rtol=0, atol=1e-15)


def test_training_never_forms_the_softmax_jacobian(monkeypatch):
    def refuse(a):
        raise AssertionError("the training path used Softmax.jacobian")

    monkeypatch.setattr(Softmax, "jacobian", staticmethod(refuse))
    rng = np.random.default_rng(0)
    net = classifier([3, 4, 3], seed=0)
    X, y = rng.normal(size=(5, 3)), one_hot(rng.integers(0, 3, size=5), 3)
    _, _, db = net.loss_and_grad(X, y)
    np.testing.assert_allclose(db[-1], (net.forward(X) - y).mean(axis=0), rtol=0, atol=1e-15)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("nesterov", [False, True])
def test_plain_and_nesterov_momentum_match_sklearn_classifier_updates(n_classes, nesterov):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 6))
    codes = np.argmax(X @ rng.normal(size=(6, n_classes)) + rng.normal(scale=0.3, size=(90, n_classes)), axis=1)
    mlp = sklearn_nn.MLPClassifier(
        hidden_layer_sizes=(16, 8), activation="tanh", solver="sgd", shuffle=False, alpha=0.0,
        batch_size=32, learning_rate_init=0.05, momentum=0.9, nesterovs_momentum=nesterov,
        max_iter=1, n_iter_no_change=1000, tol=0.0, warm_start=True, random_state=0,
    )
    # scikit-learn one-hot encodes with LabelBinarizer: one 0/1 column for two classes.
    n_outputs = 1 if n_classes == 2 else n_classes
    y = codes if n_classes == 2 else one_hot(codes, n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(X, codes)  # builds and initialises the layers; its weights are our start
        net = classifier([6, 16, 8, n_outputs], activation="tanh", seed=0)
        net.set_params(mlp.coefs_, mlp.intercepts_)
        start = net.get_params()
        mlp.set_params(max_iter=5)
        mlp.fit(X, codes)  # warm start: same weights, fresh velocities, 5 epochs
    assert mlp.out_activation_ == net.output_activation.name.replace("sigmoid", "logistic")
    fit(net, X, y, epochs=5, batch_size=32, shuffle=False,
        optimizer=SGD(net.params(), momentum=0.9, nesterov=nesterov), schedule=make_schedule("constant", 0.05))
    for ours, theirs in zip(net.weights + net.biases, mlp.coefs_ + mlp.intercepts_):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    # The comparison means something only if training moved the weights from the shared start.
    for ours, before in zip(net.weights + net.biases, start[0] + start[1]):
        assert np.abs(ours - before).max() > 1e-3


def test_data_loss_is_sklearn_log_loss_for_softmax_and_sigmoid_outputs():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 5))
    codes = rng.integers(0, 3, size=40)
    softmax_net = classifier([5, 6, 3], seed=0)
    proba = softmax_net.forward(X)
    assert softmax_net.data_loss(proba, one_hot(codes, 3)) == pytest.approx(
        sklearn_metrics.log_loss(codes, proba, labels=[0, 1, 2]), rel=1e-12)
    sigmoid_net = classifier([5, 6, 1], seed=0)
    p = sigmoid_net.forward(X)
    assert sigmoid_net.data_loss(p, codes % 2) == pytest.approx(
        sklearn_metrics.log_loss(codes % 2, p.ravel()), rel=1e-12)


def test_a_confidently_wrong_prediction_costs_a_large_finite_loss():
    binary, softmax = classifier([1, 1], seed=0), classifier([1, 3], seed=0)
    with np.errstate(**NO_OVERFLOW):
        assert binary.data_loss(np.array([[1.0], [0.0]]), np.array([0, 1])) == pytest.approx(-np.log(EPS))
        assert softmax.data_loss(np.array([[1.0, 0.0, 0.0]]), np.array([[0, 1, 0]])) == pytest.approx(-np.log(EPS))


def test_training_loss_of_a_saturated_output_is_finite_and_exact():
    # z = ±800 rounds p to exactly 0 or 1; the training loss works from z: softplus(800) = 800.
    binary = classifier([1, 1], seed=0)
    binary.weights[0][:] = 800.0
    softmax = classifier([1, 3], seed=0)
    softmax.weights[0][:] = [[1000.0, 0.0, -1000.0]]
    with np.errstate(**NO_OVERFLOW):
        assert binary.forward(np.array([[1.0], [-1.0]])).ravel().tolist() == [1.0, 0.0]
        assert binary.loss_and_grad(np.array([[1.0], [-1.0]]), np.array([0, 1]))[0] == pytest.approx(800.0)
        assert softmax.loss_and_grad(np.array([[1.0]]), np.array([[0, 0, 1]]))[0] == pytest.approx(2000.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_regression_data_loss_is_the_trainers_former_half_mse_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2)).astype(dtype)
    net = Network([3, 4, 2], dtype=dtype, l2=0.1, seed=0)
    y_pred = net.forward(X)
    diff = y_pred.astype(np.float64) - y  # what trainer._half_mse computed
    assert net.data_loss(y_pred, y) == 0.5 * float(np.vdot(diff, diff)) / len(diff)
    residual = y_pred.astype(np.float64) - y
    assert net.data_loss(y_pred, y) == pytest.approx(0.5 * np.mean(np.sum(residual**2, axis=1)), rel=1e-12)
    J, _, _ = net.loss_and_grad(X, y)  # no dropout: training mode computes the same data loss
    assert J == pytest.approx(net.data_loss(y_pred, y) + net.penalty(), rel=1e-12 if dtype == "float64" else 1e-6)


def test_float32_classifier_stays_float32_and_its_loss_is_float64():
    net = classifier([3, 4, 3], dtype="float32", l2=0.1, seed=0)
    X, y = np.ones((5, 3)), one_hot(np.arange(5) % 3, 3)
    _, dW, db = net.loss_and_grad(X, y)
    assert all(g.dtype == np.float32 for g in dW + db)
    proba = net.forward(X)
    assert proba.dtype == np.float32
    p_true = proba.astype(np.float64)[np.arange(5), np.arange(5) % 3]
    assert net.data_loss(proba, y) == pytest.approx(-np.mean(np.log(p_true)), rel=1e-12)


def test_fit_separates_three_gaussian_blobs_and_reports_cross_entropies():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 3.0], [-3.0, -2.0], [3.0, -2.0]])
    codes = rng.integers(0, 3, size=300)
    X = centres[codes] + rng.normal(size=(300, 2))
    train, val = slice(0, 200), slice(200, 300)
    Y = one_hot(codes, 3)
    net = classifier([2, 8, 3], activation="relu", seed=0)
    untrained = net.data_loss(net.forward(X[train]), Y[train])
    result = fit(net, X[train], Y[train], epochs=30, batch_size=16, eval_sets={"val": (X[val], Y[val])},
                 optimizer=SGD(net.params(), momentum=0.9), schedule=make_schedule("constant", 0.05))
    proba = net.forward(X[val])
    metrics = classification_metrics(codes[val], proba)
    assert metrics["accuracy"] >= 0.95
    assert result.history["val_loss"][-1] == pytest.approx(
        sklearn_metrics.log_loss(codes[val], proba), rel=1e-12)
    assert result.history["train_loss"][-1] == pytest.approx(
        sklearn_metrics.log_loss(codes[train], net.forward(X[train])), rel=1e-12)
    assert result.history["train_loss"][-1] < 0.1 * untrained
