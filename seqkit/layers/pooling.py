"""Pooling over time that honours the mask (padding never counts)."""

from __future__ import annotations

import keras
from keras import ops

_MODES = ("max", "mean", "max_mean")


@keras.saving.register_keras_serializable(package="seqkit")
class MaskedGlobalPooling(keras.layers.Layer):
    """Max and/or mean over the unmasked time steps of a sequence.

    Rows whose every step is masked (an empty text) pool to zeros rather than
    to the padding's values or to -inf.

    Args:
        mode: "max", "mean" or "max_mean" (the two concatenated, max first).

    Call arguments:
        inputs: (batch, time, features). mask: optional (batch, time) booleans.

    Returns:
        (batch, features), or (batch, 2 * features) for "max_mean".

    Example:

    >>> x = np.array([[[1.0], [5.0], [9.0]]], "float32")
    >>> MaskedGlobalPooling("max_mean")(x, mask=np.array([[True, True, False]]))
    array([[5., 3.]])  # max and mean of the first two steps
    """

    def __init__(self, mode: str = "max_mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in _MODES:
            raise ValueError(f"Received `mode={mode!r}`; expected one of {_MODES}.")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        # (batch, time, 1); expand_dims, not [..., None]: TFLite has no built-in
        # strided slice with an ellipsis (it would need the Flex runtime)
        m = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        count = ops.sum(m, axis=1)  # (batch, 1)
        parts = []
        if self.mode in ("max", "max_mean"):
            lowest = ops.min(inputs) - 1.0
            masked = ops.where(m > 0, inputs, lowest)
            parts.append(ops.where(count > 0, ops.max(masked, axis=1), 0.0))
        if self.mode in ("mean", "max_mean"):
            parts.append(ops.sum(inputs * m, axis=1) / ops.maximum(count, 1.0))
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        features = input_shape[-1]
        if self.mode == "max_mean" and features is not None:
            features = 2 * features
        return (input_shape[0], features)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
