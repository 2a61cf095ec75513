"""The forecaster's model pieces and its serving graph.

- :class:`MonotoneQuantiles`: raw outputs -> quantiles that never cross;
- :class:`PinballLoss`: the quantile loss it trains on;
- :class:`Forecaster`: raw windows -> quantiles in the target's own units (the
  preprocessor's transform, the model, and the way back), as one
  ``tf.function``: ``ForecastPipeline.predict`` runs it in process and
  ``export`` saves it.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from seqkit.series import transform_windows

__all__ = ["MonotoneQuantiles", "PinballLoss", "Forecaster"]


@keras.saving.register_keras_serializable(package="seqkit")
class MonotoneQuantiles(keras.layers.Layer):
    """Raw outputs (batch, horizon, Q) -> quantiles that never cross.

    The quantile nearest 0.5 is taken as is; each quantile above it adds a
    softplus (positive) step to the one below, each below subtracts one.

    Args:
        quantiles: the increasing quantile levels, in (0, 1).

    Example:

    >>> q = MonotoneQuantiles([0.1, 0.5, 0.9])(np.zeros((2, 5, 3), "float32"))
    >>> q.shape  # (batch, horizon, Q), increasing along the last axis
    (2, 5, 3)
    """

    def __init__(self, quantiles, **kwargs):
        super().__init__(**kwargs)
        self.quantiles = [float(q) for q in quantiles]
        self.middle = int(np.argmin([abs(q - 0.5) for q in self.quantiles]))

    def call(self, raw):
        m = self.middle
        columns = [None] * len(self.quantiles)
        columns[m] = raw[..., m]  # (batch, horizon)
        for j in range(m + 1, len(self.quantiles)):
            columns[j] = columns[j - 1] + ops.softplus(raw[..., j]) + 1e-4
        for j in range(m - 1, -1, -1):
            columns[j] = columns[j + 1] - ops.softplus(raw[..., j]) - 1e-4
        return ops.stack(columns, axis=-1)  # (batch, horizon, Q)

    def get_config(self):
        return {**super().get_config(), "quantiles": self.quantiles}


@keras.saving.register_keras_serializable(package="seqkit")
class PinballLoss(keras.losses.Loss):
    """Mean pinball (quantile) loss: y_true (batch, horizon), y_pred (batch, horizon, Q).

    Args:
        quantiles: the quantile level of each of the Q outputs.
    """

    def __init__(self, quantiles=(0.1, 0.5, 0.9), name="pinball", **kwargs):
        super().__init__(name=name, **kwargs)
        self.quantiles = [float(q) for q in quantiles]

    def call(self, y_true, y_pred):
        tau = ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
        diff = ops.expand_dims(ops.cast(y_true, y_pred.dtype), -1) - y_pred  # (batch, horizon, Q)
        return ops.mean(ops.maximum(tau * diff, (tau - 1.0) * diff), axis=(-1, -2))

    def get_config(self):
        return {"quantiles": self.quantiles, "name": self.name}


class Forecaster(tf.Module):
    """Raw windows -> quantiles in the target's units: the same graph in process and exported.

    ``serve(window: float32[None, lookback, n_columns])`` returns
    ``{"quantiles": (batch, horizon, Q), "forecast": (batch, horizon)}``; the
    columns are the preprocessor's ``columns`` (target first).

    Args:
        preprocessor: a fitted ``ForecastPreprocessor`` (its transform and
            scalers become constants of the graph).
        model: the Keras model on the transformed windows.
        point_index: which quantile is the point forecast.
    """

    def __init__(self, preprocessor, model, point_index: int):
        super().__init__()
        self.model = model
        self.log_target = preprocessor.target_transform == "log_return"
        self.log_columns = list(preprocessor.log_columns)
        self.mean = tf.constant(preprocessor.mean)
        self.std = tf.constant(preprocessor.std)
        self.point = point_index
        n = len(preprocessor.columns)
        self.serve = tf.function(
            self._serve,
            input_signature=[
                tf.TensorSpec([None, preprocessor.lookback, n], tf.float32, name="window")
            ],
        )

    def _serve(self, window):
        inputs, scale, last = transform_windows(window, self.log_columns, self.mean, self.std)
        q = tf.cast(self.model(inputs, training=False), tf.float32)  # (batch, horizon, Q)
        if self.log_target:
            prices = last[:, None, None] * tf.exp(scale[:, None, None] * q)
        else:
            prices = last[:, None, None] + scale[:, None, None] * q
        return {"quantiles": prices, "forecast": prices[:, :, self.point]}
