"""The NumPy network against the seed tutorial's worked example and finite differences."""
import itertools

import numpy as np
import pytest

from sweeper.nn import ACTIVATIONS, LOSSES, SGD, Network, gradient_check

X_SEED = np.array([[1.4, -1, 0.4], [0.4, -1, 0.1], [5.4, -1, 4], [1.5, -1, 1], [1.8, 1, 1]])
Y_SEED = np.array([0.45, 0.8, 0.2, 0.5, 0.55])


@pytest.fixture
def seed_net() -> Network:
    net = Network([3, 3, 2, 1], activation="tanh", output_activation="tanh", init="xavier", seed=0)
    net.set_params(
        [
            np.array([[0.01, 0.05, 0.07], [0.20, 0.041, 0.11], [0.04, 0.56, 0.13]]),
            np.array([[0.04, 0.78], [0.40, 0.45], [0.65, 0.23]]),
            np.array([[0.04], [0.41]]),
        ],
        [np.full(3, 0.1), np.full(2, 0.1), np.full(1, 0.1)],
    )
    return net


def test_worked_example_forward(seed_net):
    expected = [0.202354302599, 0.144933682554, 0.381054078721, 0.262494787219, 0.368818057375]
    np.testing.assert_allclose(seed_net.forward(X_SEED).ravel(), expected, rtol=0, atol=1e-10)


def test_worked_example_loss_and_gradients_are_the_summed_ones_over_m(seed_net):
    loss, dW, db = seed_net.loss_and_grad(X_SEED, Y_SEED)
    m = 5
    assert loss * m == pytest.approx(0.306228236773, abs=1e-11)
    np.testing.assert_allclose(dW[2].ravel() * m, [-0.25659878177, -0.194693013848], atol=1e-11)
    np.testing.assert_allclose(db[2] * m, [-1.101723420312], atol=1e-11)
    np.testing.assert_allclose(
        dW[0][0] * m, [-0.171920111136, -0.159054126528, -0.089384580861], atol=1e-11
    )


def test_worked_example_one_gradient_step(seed_net):
    _, dW, db = seed_net.loss_and_grad(X_SEED, Y_SEED)
    SGD(seed_net.params()).update_params([*dW, *db], learning_rate=0.1)
    np.testing.assert_allclose(
        seed_net.weights[0][0], [0.013438402223, 0.053181082531, 0.071787691617], atol=1e-11
    )
    np.testing.assert_allclose(
        seed_net.biases[0], [0.106686409704, 0.103984583986, 0.102562630231], atol=1e-11
    )
    np.testing.assert_allclose(seed_net.weights[2].ravel(), [0.045131975635, 0.413893860277], atol=1e-11)
    np.testing.assert_allclose(seed_net.biases[2], [0.122034468406], atol=1e-11)


def test_worked_example_gradient_check(seed_net):
    assert gradient_check(seed_net, X_SEED, Y_SEED) == pytest.approx(1.157e-8, abs=1e-10)


REGRESSION_OUTPUTS = LOSSES["squared_error"]().output_activations(1)
REGULARISERS = {
    "none": {},
    "l2": {"l2": 0.3},
    "l1": {"l1": 0.2},
    "dropout": {"dropout": 0.25},
}


@pytest.mark.parametrize(
    "activation,output_activation,regulariser",
    list(itertools.product(ACTIVATIONS, REGRESSION_OUTPUTS, REGULARISERS)),
)
def test_gradient_check_every_activation_and_regulariser(activation, output_activation, regulariser):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(6, 4))
    y = rng.uniform(0.1, 0.9, size=(6, 1))
    net = Network([4, 5, 3, 1], activation=activation, output_activation=output_activation,
                  init="xavier", seed=3, **REGULARISERS[regulariser])
    for b in net.biases:
        b[:] = rng.normal(scale=0.1, size=b.shape)
    if regulariser == "l1":
        # |W| has a kink at 0: keep every weight further from it than the step h.
        for W in net.weights:
            W[:] = np.sign(W) * (np.abs(W) + 0.05)
    assert gradient_check(net, X, y) < 1e-7


def test_gradient_check_leaves_network_unchanged():
    net = Network([2, 3, 1], activation="elu", dropout=0.3, seed=1)
    X, y = np.ones((4, 2)), np.zeros(4)
    before = net.get_params()
    state = net.rng.bit_generator.state
    gradient_check(net, X, y)
    for a, b in zip(before[0] + before[1], net.params()):
        np.testing.assert_array_equal(a, b)
    assert net.rng.bit_generator.state == state


def test_linear_model_has_one_layer_and_exact_least_squares_gradient():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 3)), rng.normal(size=(10, 1))
    net = Network([3, 1], activation="relu", seed=0)
    assert net.n_layers == 1
    _, dW, db = net.loss_and_grad(X, y)
    residual = X @ net.weights[0] + net.biases[0] - y
    np.testing.assert_allclose(dW[0], X.T @ residual / 10, atol=1e-15)
    np.testing.assert_allclose(db[0], residual.mean(axis=0), atol=1e-15)


@pytest.mark.parametrize("init,std", [("he", lambda i, o: np.sqrt(2 / i)),
                                      ("xavier", lambda i, o: np.sqrt(2 / (i + o))),
                                      ("lecun", lambda i, o: np.sqrt(1 / i)),
                                      ("normal", lambda i, o: 0.01)])
def test_initialisers_have_the_documented_spread_and_zero_biases(init, std):
    net = Network([400, 300, 1], init=init, seed=0)
    assert net.weights[0].std() == pytest.approx(std(400, 300), rel=0.01)
    assert all(not b.any() for b in net.biases)


def test_same_seed_gives_bit_identical_weights_and_another_seed_does_not():
    a, b, c = (Network([5, 8, 1], seed=s) for s in (11, 11, 12))
    for Wa, Wb, Wc in zip(a.weights, b.weights, c.weights):
        np.testing.assert_array_equal(Wa, Wb)
        assert not np.array_equal(Wa, Wc)


def test_float32_stays_float32_end_to_end():
    net = Network([3, 4, 1], dtype="float32", l1=0.1, l2=0.1, dropout=0.2, seed=0)
    X = np.ones((5, 3))  # float64 input is cast, not propagated
    assert net.forward(X).dtype == np.float32
    _, dW, db = net.loss_and_grad(X, np.ones(5))
    assert all(g.dtype == np.float32 for g in dW + db)
    SGD(net.params(), momentum=0.9, nesterov=True).update_params([*dW, *db], learning_rate=0.1)
    assert all(p.dtype == np.float32 for p in net.params())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh"])
def test_a_reused_workspace_gives_the_gradients_of_a_fresh_one_batch_after_batch(activation, dtype):
    """The workspace's buffers (δ, f', the L1/L2 term, the ones of 1ᵀδ, cut to a shorter batch)
    carry nothing from one batch to the next: every call equals a call with new arrays."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 2))
    settings = dict(activation=activation, dtype=dtype, l1=0.01, l2=0.1, dropout=0.3)
    reused, fresh = Network([4, 16, 8, 2], seed=0, **settings), Network([4, 16, 8, 2], seed=0, **settings)
    workspace = reused.workspace(20)
    for rows in [slice(0, 20), slice(20, 40), slice(40, 50), slice(0, 20), slice(5, 12)]:
        J, dW, db = reused.loss_and_grad(X[rows], y[rows], workspace=workspace)
        J_fresh, dW_fresh, db_fresh = fresh.loss_and_grad(X[rows], y[rows])
        assert J == J_fresh
        for ours, expected in zip(dW + db, dW_fresh + db_fresh):
            np.testing.assert_array_equal(ours, expected)


def test_bias_gradient_is_the_row_sum_of_the_output_error():
    """∂J/∂b = Σ_rows δ for the output layer, δ = (ŷ − y)/m with an identity output and squared error."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    net = Network([3, 5, 2], seed=0)
    _, _, db = net.loss_and_grad(X, y, workspace=net.workspace(7))
    np.testing.assert_allclose(db[-1], ((net.forward(X) - y) / 7).sum(axis=0), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_leaky_relu_derivative_is_one_or_the_slope_in_the_input_dtype_even_over_its_input(dtype):
    z = np.array([[-2.0, 0.0, -0.0, 3.0, np.nan]], dtype=dtype)
    expected = np.array([[0.1, 0.1, 0.1, 1.0, 0.1]], dtype=dtype)
    d = ACTIVATIONS["leaky_relu"](0.1).derivative(z, z)
    assert d.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(d, expected)
    ACTIVATIONS["leaky_relu"](0.1).derivative(z, z, out=z)  # what backprop does: f'(z) over z
    np.testing.assert_array_equal(z, expected)


def test_a_numpy_float64_learning_rate_steps_a_float32_network_like_a_python_float():
    """The step is computed in the parameters' dtype whatever the type of η."""
    steps = []
    for lr in (0.1, np.float64(0.1)):
        net = Network([3, 4, 1], dtype="float32", seed=0)
        _, dW, db = net.loss_and_grad(np.ones((5, 3)), np.arange(5.0))
        SGD(net.params(), momentum=0.9, nesterov=True).update_params([*dW, *db], lr)
        steps.append([p.copy() for p in net.params()])
    for a, b in zip(*steps):
        np.testing.assert_array_equal(a, b)


def test_sigmoid_is_stable_for_huge_inputs():
    net = Network([1, 1], output_activation="sigmoid", seed=0)
    net.weights[0][:] = 1.0
    with np.errstate(all="raise"):
        out = net.forward(np.array([[-800.0], [800.0], [0.0]])).ravel()
    np.testing.assert_array_equal(out, [0.0, 1.0, 0.5])


def test_dropout_keeps_expected_activation_and_is_off_in_forward():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 4))
    net = Network([4, 30, 1], activation="relu", dropout=0.5, seed=0)
    plain = Network([4, 30, 1], activation="relu", seed=0)
    plain.set_params(*net.get_params())
    np.testing.assert_array_equal(net.forward(X), plain.forward(X))
    hidden = np.maximum(X @ net.weights[0] + net.biases[0], 0)
    dropped = np.mean([net._forward_train(X)[0][1] for _ in range(4000)], axis=0)
    assert dropped.sum() == pytest.approx(hidden.sum(), rel=0.01)
    kept = net._forward_train(X)[0][1]
    assert set(np.unique(np.round(kept / np.where(hidden > 0, hidden, 1), 12))) <= {0.0, 2.0}


def test_same_seed_gives_same_dropout_masks():
    X, y = np.ones((6, 3)), np.zeros(6)
    a, b, c = (Network([3, 10, 1], dropout=0.5, seed=s) for s in (4, 4, 5))
    ga, gb = a.loss_and_grad(X, y), b.loss_and_grad(X, y)
    np.testing.assert_array_equal(ga[1][0], gb[1][0])
    c.set_params(*a.get_params())
    assert not np.array_equal(ga[1][0], c.loss_and_grad(X, y)[1][0])


def test_max_norm_leaves_no_unit_above_c():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 5)), rng.normal(size=(64, 1)) * 10
    net = Network([5, 16, 8, 1], max_norm=0.5, seed=0)
    opt = SGD(net.params(), momentum=0.9)
    for _ in range(20):
        _, dW, db = net.loss_and_grad(X, y)
        opt.update_params([*dW, *db], learning_rate=0.5)
        net.apply_max_norm()
        for W in net.weights:
            assert np.linalg.norm(W, axis=0).max() <= 0.5 * (1 + 1e-12)
    assert any(np.isclose(np.linalg.norm(W, axis=0), 0.5).any() for W in net.weights)


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"activation": "swish"}, "unknown activation 'swish'; choose one of: elu, identity"),
        ({"init": "orthogonal"}, "unknown init 'orthogonal'; choose one of: he, lecun, normal, xavier"),
        ({"output_activation": "relu"}, "output_activation 'relu'; choose one of: identity, tanh, sigmoid, softmax"),
        ({"loss": "hinge"}, "unknown loss 'hinge'; choose one of: cross_entropy, squared_error"),
        ({"sizes": [3, 4, 3], "output_activation": "softmax"},
         "loss 'squared_error' with 3 outputs needs output_activation identity, tanh or sigmoid, got 'softmax'"),
        ({"loss": "cross_entropy"}, "loss 'cross_entropy' with 1 output needs output_activation sigmoid, got 'identity'"),
        ({"loss": "cross_entropy", "output_activation": "softmax"},
         "loss 'cross_entropy' with 1 output needs output_activation sigmoid, got 'softmax'"),
        ({"sizes": [3, 4, 3], "loss": "cross_entropy", "output_activation": "tanh"},
         "loss 'cross_entropy' with 3 outputs needs output_activation softmax, got 'tanh'"),
        ({"dropout": 1.0}, "dropout must be in [0, 1), got 1.0"),
        ({"l2": -0.1}, "l2 must be >= 0, got -0.1"),
        ({"l1": -1}, "l1 must be >= 0, got -1"),
        ({"max_norm": 0}, "max_norm must be null or > 0"),
        ({"dtype": "float16"}, "unknown dtype 'float16'; choose one of: float64, float32"),
        ({"sizes": [3, 0, 1]}, "sizes must list at least an input and an output width, all >= 1"),
    ],
)
def test_bad_arguments_raise_one_clear_line(kwargs, needle):
    args = {"sizes": [3, 4, 1], **kwargs}
    with pytest.raises(ValueError) as err:
        Network(**args)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_dead_units_counts_per_hidden_layer_the_units_with_one_value_on_every_row():
    net = Network([2, 4, 3, 1], activation="relu", seed=0)
    net.weights[0][:] = np.abs(net.weights[0])
    net.biases[0][:2] = -100.0  # two units of layer 1 below anything their input reaches
    net.biases[1][:] = -100.0   # every unit of layer 2
    X = np.zeros((3000, 2))
    assert net.dead_units(X) == [4, 3]  # zero rows: every unit of layer 1 takes one value
    X[-1] = 1.0  # one row, in the last of the 512-row chunks, wakes the two units with bias 0
    for workspace in (None, net.workspace(512, training=False)):
        assert net.dead_units(X, workspace) == [2, 3]
    np.testing.assert_array_equal(net.forward(X), np.full((3000, 1), net.biases[-1][0]))
    saturated = Network([2, 3, 1], activation="tanh", seed=0)
    saturated.weights[0][:, 0] = 0.0
    saturated.biases[0][0] = 0.5  # tanh(0.5) on every row: not zero, but one value
    assert saturated.dead_units(np.random.default_rng(0).normal(size=(50, 2))) == [1]
