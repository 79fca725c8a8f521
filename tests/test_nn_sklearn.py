"""SGD with (Nesterov) momentum against scikit-learn's MLPRegressor as the oracle."""
import warnings

import numpy as np
import pytest
import sklearn.neural_network as sklearn

from sweeper.nn import SGD, Network, make_schedule
from sweeper.train import fit


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("nesterov", [False, True])
def test_nesterov_and_plain_momentum_match_sklearn_updates(activation, nesterov):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 6))
    y = X @ rng.normal(size=6) + 0.3 * np.sin(X[:, 0]) + rng.normal(scale=0.1, size=90)
    mlp = sklearn.MLPRegressor(
        hidden_layer_sizes=(16, 8), activation=activation, solver="sgd", shuffle=False,
        alpha=0.0, batch_size=32, learning_rate_init=0.01, momentum=0.9,
        nesterovs_momentum=nesterov, max_iter=1, n_iter_no_change=1000, tol=0.0,
        warm_start=True, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(X, y)  # builds and initialises the layers; its weights are our start
        net = Network([6, 16, 8, 1], activation=activation, seed=0)
        net.set_params(mlp.coefs_, mlp.intercepts_)
        start = net.get_params()
        mlp.set_params(max_iter=5)
        mlp.fit(X, y)  # warm start: same weights, fresh velocities, 5 epochs
    fit(net, X, y, epochs=5, batch_size=32, shuffle=False,
        optimizer=SGD(net.params(), momentum=0.9, nesterov=nesterov), schedule=make_schedule("constant", 0.01))
    for ours, theirs in zip(net.weights + net.biases, mlp.coefs_ + mlp.intercepts_):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    # The comparison means something only if training moved the weights from the shared start.
    for ours, before in zip(net.weights + net.biases, start[0] + start[1]):
        assert np.abs(ours - before).max() > 1e-3
