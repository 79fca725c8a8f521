"""The MLflow Model of a run, written as code (MLflow's "models from code"; nothing is pickled).

MLflow runs this file when the model is loaded (``mlflow.pyfunc.load_model``, ``mlflow models
serve``, ``sweeper.predict``): ``set_model`` names the object that predicts. Its one artifact,
``model``, is the run's ``model.npz`` (weights and fitted preprocessing, read without pickle).
``predict`` takes a pandas DataFrame of raw rows, exactly as in the training CSV (missing
cells, strings; the target column, if present, is ignored) and returns the predictions in the
target's original units, shape (n_rows,); a classifier returns a DataFrame: ``prediction`` (the
most probable class) and ``probability_<class>`` for each class. Rows it cannot use (a feature
column absent, a cell it cannot read) raise ``MlflowException`` with INVALID_PARAMETER_VALUE and
one line naming the column: MLflow's model server answers it with HTTP 400, no stack trace and
that line last in its message (after the rows it got), where any other exception would be its
"unexpected error" and a stack trace.
"""

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel


class NetworkModel(PythonModel):
    """A trained ``sweeper.nn.Network`` (or a bag of fold networks) behind its fitted
    ``sweeper.data.Preprocessor``, or an ensemble of such models predicting their mean."""

    def load_context(self, context) -> None:
        from sweeper.tracking.model_file import load_members

        self.members = load_members(context.artifacts["model"])
        self.preprocessor = self.members[0][1]

    # The pd.DataFrame hint tells MLflow to pass a DataFrame and to leave type checks to us.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray | pd.DataFrame:
        from sweeper.errors import DataError
        from sweeper.tracking.model_file import predict_members, predict_proba_members

        try:
            if not self.preprocessor.classifies:
                return predict_members(self.members, model_input)
            proba = predict_proba_members(self.members, model_input)
        except DataError as error:
            raise MlflowException.invalid_parameter_value(str(error)) from None
        out = pd.DataFrame({"prediction": self.preprocessor.labels.decode(np.argmax(proba, axis=1))})
        for k, name in enumerate(self.preprocessor.labels.names()):
            out[f"probability_{name}"] = proba[:, k]
        return out


mlflow.models.set_model(NetworkModel())
