"""``model.npz``: a trained network and its data preprocessing, loadable without pickle.

Keys (every value is a plain numeric or unicode array, so ``np.load(..., allow_pickle=False)``
reads it):

- ``model.sizes`` (int64, ``[n_inputs, hidden..., n_outputs]``), ``model.activation``,
  ``model.output_activation``, ``model.init``, ``model.dtype``, ``model.loss`` (unicode
  scalars; ``squared_error`` when absent, in files written before classification),
  ``model.leaky_slope``, ``model.elu_alpha`` (float64 scalars);
- ``weights.{i}`` ``(fan_in, fan_out)`` and ``biases.{i}`` ``(fan_out,)`` per layer i; a bag of
  K networks (a cross-validated run's fold networks, ``sweeper.nn.Bag``) stacks them:
  ``(K, fan_in, fan_out)`` and ``(K, fan_out)``;
- ``data.*``: the fitted scalers and category lists (``Preprocessor.to_arrays``).

An ensemble of N models (a sweep's top N trials, ``hydra.sweeper.ensemble``) holds
``ensemble.size`` (int64 N) and each member's keys above prefixed ``member.{j}.``; it predicts
the members' mean in the target's original units (a classifier: their mean probabilities).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: The model's names (``Network`` arguments) kept as unicode scalars.
MODEL_KEYS = ("activation", "output_activation", "init", "dtype")


def save_model(path: str | Path, net: Any, preprocessor: Any, model_cfg: Any) -> None:
    """Write ``net`` (a ``sweeper.nn.Network`` or ``Bag``) and ``preprocessor`` to ``path``.

    ``model_cfg`` is the run's ``model`` config node (activation names, dtype, ...).
    """
    arrays: dict[str, np.ndarray] = {
        "model.sizes": np.asarray(net.sizes, dtype=np.int64),
        "model.leaky_slope": np.asarray(float(model_cfg.leaky_slope)),
        "model.elu_alpha": np.asarray(float(model_cfg.elu_alpha)),
        "model.loss": np.asarray(net.loss_function.name),
    }
    for key in MODEL_KEYS:
        arrays[f"model.{key}"] = np.asarray(str(model_cfg[key]))
    members = getattr(net, "members", None)
    for i in range(len(net.sizes) - 1):
        arrays[f"weights.{i}"] = np.stack([m.weights[i] for m in members]) if members else np.asarray(net.weights[i])
        arrays[f"biases.{i}"] = np.stack([m.biases[i] for m in members]) if members else np.asarray(net.biases[i])
    arrays.update(preprocessor.to_arrays())
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def load_model(path: str | Path) -> tuple[Any, Any]:
    """``(Network or Bag, Preprocessor)`` from a ``model.npz`` of one model (`load_members`
    reads an ensemble's).

    ``net.forward(preprocessor.transform(frame))`` predicts scaled targets;
    ``preprocessor.inverse_target`` turns them into the target's original units.
    """
    return _from_arrays(_read(path))


def load_members(path: str | Path) -> list[tuple[Any, Any]]:
    """``[(Network or Bag, Preprocessor)]`` of a ``model.npz``: N of an ensemble, else one."""
    arrays = _read(path)
    if "ensemble.size" not in arrays:
        return [_from_arrays(arrays)]
    return [_from_arrays({key.removeprefix(f"member.{j}."): value for key, value in arrays.items()
                          if key.startswith(f"member.{j}.")}) for j in range(int(arrays["ensemble.size"]))]


def save_ensemble(path: str | Path, member_files: list[str | Path]) -> None:
    """Write the ensemble of the ``model.npz`` files ``member_files`` (each a single model) to ``path``."""
    arrays: dict[str, np.ndarray] = {"ensemble.size": np.asarray(len(member_files), dtype=np.int64)}
    for j, member in enumerate(member_files):
        arrays.update({f"member.{j}.{key}": value for key, value in _read(member).items()})
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def predict_members(members: list[tuple[Any, Any]], frame: Any) -> np.ndarray:
    """`predict` of the members' mean: (n_rows,) in original units, or a classifier's most
    probable class of their mean probabilities."""
    first = members[0][1]
    if first.classifies:
        return first.labels.decode(np.argmax(predict_proba_members(members, frame), axis=1))
    return np.mean([predict(net, preprocessor, frame) for net, preprocessor in members], axis=0)


def predict_proba_members(members: list[tuple[Any, Any]], frame: Any) -> np.ndarray:
    """The members' mean class probabilities (n_rows, K) (`predict_proba`)."""
    return np.mean([predict_proba(net, preprocessor, frame) for net, preprocessor in members], axis=0)


def _read(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def _from_arrays(arrays: dict[str, np.ndarray]) -> tuple[Any, Any]:
    from sweeper.data import Preprocessor
    from sweeper.nn import Bag, Network

    sizes = [int(s) for s in arrays["model.sizes"]]
    n_layers = len(sizes) - 1
    bagged = arrays["weights.0"].ndim == 3

    def stacked(key: str) -> np.ndarray:  # one network's array as a stack of one
        return arrays[key] if bagged else arrays[key][None]

    weights = [stacked(f"weights.{i}") for i in range(n_layers)]
    biases = [stacked(f"biases.{i}") for i in range(n_layers)]
    nets = []
    for k in range(len(weights[0])):
        net = Network(sizes, **{key: str(arrays[f"model.{key}"]) for key in MODEL_KEYS},
                      loss=str(arrays.get("model.loss", "squared_error")),
                      leaky_slope=float(arrays["model.leaky_slope"]), elu_alpha=float(arrays["model.elu_alpha"]))
        net.set_params([w[k] for w in weights], [b[k] for b in biases])
        nets.append(net)
    return Bag(nets) if bagged else nets[0], Preprocessor.from_arrays(arrays)


def predict(net: Any, preprocessor: Any, frame: Any) -> np.ndarray:
    """Predictions in the target's original units, shape (n_rows,), float64, for the raw rows of
    ``frame`` (a pandas DataFrame with the training CSV's feature columns; the target column and
    any other column are ignored): ŷ = inverse_target(net.forward(preprocessor.transform(frame))).
    For a classifier, the most probable class's label per row (`predict_proba` gives all)."""
    if preprocessor.classifies:
        return preprocessor.labels.decode(np.argmax(predict_proba(net, preprocessor, frame), axis=1))
    X = _inputs(net, preprocessor, frame)
    if not len(X):
        return np.zeros(0)
    return preprocessor.inverse_target(net.forward(X))[:, 0]


def predict_proba(net: Any, preprocessor: Any, frame: Any) -> np.ndarray:
    """A classifier's class probabilities (n_rows, K), float64, columns in the order of
    ``preprocessor.labels.classes`` (one sigmoid output p gives the columns [1 − p, p])."""
    from sweeper.nn import class_probabilities

    X = _inputs(net, preprocessor, frame)
    if not len(X):
        return np.zeros((0, len(preprocessor.labels.classes)))
    return class_probabilities(net.forward(X))


def _inputs(net: Any, preprocessor: Any, frame: Any) -> np.ndarray:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    return preprocessor.transform(frame, dtype=str(net.dtype))
