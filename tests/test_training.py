"""seqkit.training: the one engine every pipeline trains with (on a tiny Dense model)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from seqkit import training
from seqkit.errors import SeqkitError, UsageError


def _data(n=64, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, 3).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5], "float32"))[:, None]
    return x, y


def _build():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.1), keras.layers.Dense(1)])


def _make_dataset(x, y):
    def make(shuffle_seed):
        order = np.random.RandomState(shuffle_seed).permutation(len(x))
        return tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(16)

    return make


def _run(checkpoint_dir, epochs=4, callbacks=(), key="k"):
    x, y = _data()
    model = training.compile_model(_build, seed=0, learning_rate=0.05, clipnorm=1.0, loss="mse")
    val = tf.data.Dataset.from_tensor_slices(_data(16, 1)).batch(16)
    history = training.train_epochs(
        model,
        _make_dataset(x, y),
        val,
        key=key,
        stage_seed=3,
        epochs=epochs,
        learning_rate=0.05,
        patience=10,
        checkpoint_dir=checkpoint_dir,
        verbose=0,
        callbacks=callbacks,
    )
    return model, history


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: training.check_training_args(0, 8, 2), "Received `epochs=0`; expected a positive"),
        (lambda: training.check_training_args(2, 1.5, 2), "Received `batch_size=1.5`"),
        (lambda: training.check_training_args(2, 8, True), "Received `patience=True`"),
        (lambda: training.check_schedule_args(0, None), "Received `lr_decay=0`; expected a number"),
        (lambda: training.check_schedule_args(1, -1), "Received `time_limit=-1`; expected a pos"),
        (lambda: training.check_fraction("validation_split", 1), "expected a number between 0"),
    ],
)
def test_bad_training_arguments_name_the_argument(call, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")) as info:
        call()
    assert isinstance(info.value, SeqkitError) and isinstance(info.value, ValueError)


def test_same_seed_same_weights_and_training_lowers_the_loss(tmp_path):
    a, history = _run(None)
    b, _ = _run(None)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert len(history["epoch_seconds"]) == 4


def test_a_killed_run_resumes_from_its_checkpoint_and_ends_on_the_same_weights(tmp_path):
    reference, _ = _run(None)

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(str(tmp_path), callbacks=[Kill()])
    state = json.loads((tmp_path / "k" / "state.json").read_text())
    assert state["epoch"] == 1  # epoch 0 finished and was checkpointed
    resumed, history = _run(str(tmp_path))
    for wa, wb in zip(reference.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(wa, wb, atol=1e-6)
    assert len(history["val_loss"]) == 4


def test_auto_checkpoints_are_removed_when_training_ends(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQKIT_CACHE_DIR", str(tmp_path))
    _run("auto", epochs=1, key="auto-key")
    assert not os.path.exists(tmp_path / "checkpoints" / "auto-key")


def test_a_damaged_checkpoint_warns_and_training_starts_over(tmp_path):
    folder = tmp_path / "k"
    folder.mkdir()
    (folder / "state.json").write_text('{"epoch": 1}')
    (folder / "last.weights.h5").write_bytes(b"not hdf5")
    with pytest.warns(UserWarning, match="Ignoring an unreadable checkpoint"):
        _, history = _run(str(tmp_path), epochs=2)
    assert len(history["val_loss"]) == 2


def test_divergence_is_reported_with_the_fix():
    model = training.compile_model(_build, seed=0, learning_rate=0.1, clipnorm=None, loss="mse")
    x = np.full((8, 3), np.inf, "float32")
    with pytest.raises(UsageError, match="Training diverged at epoch 1 .* lower the learning_rate"):
        training.train_epochs(
            model,
            lambda seed: tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(8),
            None,
            key="d",
            stage_seed=0,
            epochs=2,
            learning_rate=0.1,
            patience=2,
            checkpoint_dir=None,
            verbose=0,
        )


def test_run_key_changes_with_what_sets_the_result():
    base = {"epochs": 2, "config": {"units": 8}}
    assert training.run_key(base) == training.run_key(dict(base))
    assert training.run_key(base) != training.run_key({**base, "epochs": 3})
    assert len(training.run_key(base)) == 20


def test_reseed_puts_every_seed_generator_in_a_state_set_by_seed_and_epoch():
    model = _build()
    gen = model.layers[0].seed_generator
    training.reseed(model, 11, 2)
    first = np.array(gen.state.numpy())
    training.reseed(model, 11, 3)
    training.reseed(model, 11, 2)
    np.testing.assert_array_equal(first, gen.state.numpy())
    np.testing.assert_array_equal(first, [11, 2])
