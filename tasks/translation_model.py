"""The translation model: a recurrent encoder (``RecurrentStack``) and an attention decoder.

source ids → embedding → ``RecurrentStack`` encoder (bidirectional by default)
→ its last layer's final states, one ``tanh`` bridge per state → the decoder's
initial states; target ids → embedding → one recurrent decoder layer →
attention over the encoder outputs → ``tanh(W [h_t; c_t])`` → vocabulary logits
(Luong et al., 2015). Teacher-forced training runs the decoder over all target
steps at once; decoding runs its cell one step at a time (:meth:`Seq2Seq.step`).

Every state count comes from the cells (``cell.num_states``, the stack's
``states_per_layer``).
"""

from __future__ import annotations

import warnings

import keras
from keras import ops

import seqkit.layers as sk

__all__ = ["Seq2Seq", "START", "END", "START_ID", "END_ID"]

START, END = "[START]", "[END]"
START_ID, END_ID = 2, 3  # target ids; 0 is padding, 1 out-of-vocabulary
# Seq2Seq's arguments before seqkit 0.2 -> now (a .keras file may hold the old ones).
_RENAMED = {"encoder_layers": "layers", "bidirectional_encoder": "bidirectional"}


def _last_cell(stack: sk.RecurrentStack):
    """The (forward) cell of a stack's last layer: what its final states are made of."""
    last = stack.rnns[-1]
    return last.forward_layer.cell if stack.bidirectional else last.cell


@keras.saving.register_keras_serializable(package="seqkit")
class Seq2Seq(keras.Model):
    """Encoder-decoder with attention on seqkit layers.

    Args:
        source_vocabulary, target_vocabulary: vocabulary sizes (ids).
        embedding_dim: word vector size (source and target).
        cell: "gru", "lstm" or "rnn", for the encoder and the decoder.
        units: encoder units per direction; the decoder has twice as many with
            a bidirectional encoder (its states start from both directions').
        layers: stacked encoder layers.
        bidirectional: read the source both ways.
        dropout: on the embeddings and before the output layer.
        attention: "luong" (multiplicative) or "bahdanau" (additive) scores.

    Call arguments:
        inputs: ``(source_ids (batch, S), target_in (batch, T))``, 0 = padding.

    Returns:
        logits ``(batch, T, target_vocabulary)``.

    Example:

    >>> model = Seq2Seq(50, 40, embedding_dim=8, units=8)
    >>> model((np.ones((2, 5), "int32"), np.ones((2, 3), "int32"))).shape
    TensorShape([2, 3, 40])
    """

    def __init__(
        self,
        source_vocabulary,
        target_vocabulary,
        embedding_dim=256,
        cell="gru",
        units=256,
        layers=1,
        bidirectional=True,
        dropout=0.2,
        attention="luong",
        **kwargs,
    ):
        old_names = {old: kwargs.pop(old) for old in _RENAMED if old in kwargs}
        for old in old_names:
            warnings.warn(
                f"`{old}` is now called `{_RENAMED[old]}`; the old name will be removed.",
                FutureWarning,
                stacklevel=2,
            )
        layers = old_names.get("encoder_layers", layers)
        bidirectional = old_names.get("bidirectional_encoder", bidirectional)
        super().__init__(**kwargs)
        self.config = dict(
            source_vocabulary=source_vocabulary,
            target_vocabulary=target_vocabulary,
            embedding_dim=embedding_dim,
            cell=cell,
            units=units,
            layers=layers,
            bidirectional=bidirectional,
            dropout=dropout,
            attention=attention,
        )
        # (Built in this order: it fixes which seed each initializer draws.)
        self.source_embedding = keras.layers.Embedding(source_vocabulary, embedding_dim)
        self.target_embedding = keras.layers.Embedding(target_vocabulary, embedding_dim)
        self.encoder = sk.RecurrentStack(
            cell, units, layers, bidirectional, return_state=True, name="encoder"
        )
        self.n_states = _last_cell(self.encoder).num_states  # LSTM: h, c; GRU, RNN: h
        self.dec_units = 2 * units if bidirectional else units
        self.bridges = [
            keras.layers.Dense(self.dec_units, activation="tanh", name=f"bridge_{k}")
            for k in range(self.n_states)
        ]
        self.decoder = sk.get(cell)(
            self.dec_units, return_sequences=True, return_state=True, name="decoder"
        )
        self.attention = sk.DecoderAttention(self.dec_units, score=attention, name="attention")
        self.combine = keras.layers.Dense(self.dec_units, activation="tanh", name="combine")
        self.head = keras.layers.Dense(target_vocabulary, name="logits")
        self.drop = keras.layers.Dropout(dropout)

    def encode(self, source_ids, training=False):
        """-> (encoder outputs (batch, S, D), source mask (batch, S), decoder states)."""
        mask = ops.not_equal(source_ids, 0)  # (batch, S)
        x = self.drop(self.source_embedding(source_ids), training=training)  # (batch, S, E)
        memory, *states = self.encoder(x, mask=mask, training=training)  # (batch, S, D)
        finals = states[len(states) - self.encoder.states_per_layer[-1] :]  # the last layer's
        if self.encoder.bidirectional:  # forward states, then backward: joined per state
            n = self.n_states
            finals = [ops.concatenate([finals[k], finals[n + k]], axis=-1) for k in range(n)]
        states = [bridge(s) for bridge, s in zip(self.bridges, finals)]  # (batch, dec_units)
        return memory, mask, states

    def decode(self, target_in, memory, mask, states, training=False):
        """Teacher-forced decoding: -> (logits (batch, T, V), attention (batch, T, S))."""
        y = self.drop(self.target_embedding(target_in), training=training)  # (batch, T, E)
        out = self.decoder(
            y, initial_state=states, mask=ops.not_equal(target_in, 0), training=training
        )
        h = out[0]  # (batch, T, dec_units)
        context, weights = self.attention(h, memory, mask)  # (batch, T, dec_units), (batch, T, S)
        z = self.combine(ops.concatenate([h, context], axis=-1))
        return self.head(self.drop(z, training=training)), weights

    def step(self, token_ids, states, memory, mask, keys):
        """One decoding step: -> (logits (batch, V), new states, attention (batch, S))."""
        y = self.target_embedding(token_ids)  # (batch, embedding_dim)
        h, new_states = self.decoder.cell(y, list(states), training=False)  # (batch, dec_units)
        context, weights = self.attention(h, memory, mask, keys=keys)
        z = self.combine(ops.concatenate([h, context], axis=-1))
        return self.head(z), list(new_states), weights

    def call(self, inputs, training=False):
        source_ids, target_in = inputs
        memory, mask, states = self.encode(source_ids, training)
        return self.decode(target_in, memory, mask, states, training)[0]

    def get_config(self):
        return {**super().get_config(), **self.config}

    @classmethod
    def from_config(cls, config):
        config = {_RENAMED.get(k, k): v for k, v in config.items()}  # old .keras files: silent
        return cls(**config)
