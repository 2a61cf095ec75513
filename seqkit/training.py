"""The one training engine every pipeline uses: compile, reseed, epochs, checkpoints, resume.

Defaults (the pipelines pass them through; all overridable in their ``fit``):

- Adam with gradient clipping (``clipnorm=1.0``) against exploding gradients;
- early stopping on validation loss, restoring the best epoch's weights;
- a checkpoint after every epoch, so that a killed run restarted with the same
  arguments resumes after the last finished epoch and ends with the same
  weights as an uninterrupted run (``checkpoint_dir="auto"`` keeps them under
  ``~/.cache/seqkit/checkpoints`` (``$SEQKIT_CACHE_DIR``) and deletes them at
  the end; a folder keeps them there; ``None`` writes none);
- Ctrl-C (KeyboardInterrupt) prints one line to stderr (the epoch, where the
  last checkpoint is, how to resume) and raises KeyboardInterrupt with that
  line, without TensorFlow's frames;
- ``stage_seed``: the data order and dropout of epoch *k* depend only on the
  seed and *k*, so CPU runs repeat exactly, resumed or not;
- ``strategy``: any ``tf.distribute.Strategy`` (the model is built in its scope);
  under ``MultiWorkerMirroredStrategy`` the datasets are sharded by data, only
  the chief writes checkpoints, and the workers agree on the run key, the
  resume epoch and the time limit (:mod:`seqkit.distributed`).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
import warnings

import numpy as np

from seqkit import distributed
from seqkit.errors import UsageError

__all__ = [
    "DEFAULTS",
    "check_training_args",
    "check_schedule_args",
    "check_fraction",
    "check_schedule",
    "compile_model",
    "reseed",
    "run_key",
    "weights_digest",
    "train_epochs",
    "Checkpoints",
    "interrupted_message",
]


# The engine's defaults beside epochs, batch_size and learning_rate (the tasks'
# fit and fine_tune share them).
DEFAULTS = dict(
    validation_split=0.1,
    patience=2,
    clipnorm=1.0,
    checkpoint_dir="auto",
    strategy=None,
    verbose=1,
    lr_decay=1.0,
    time_limit=None,
)


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, float | int | np.integer | np.floating)


def check_training_args(epochs, batch_size, patience) -> tuple[int, int, int]:
    """``(epochs, batch_size, patience)`` as ints, or a UsageError naming the bad one."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise UsageError(f"Received `{name}={value!r}`; expected a positive integer.")
    return int(epochs), int(batch_size), int(patience)


def check_schedule_args(lr_decay, time_limit) -> tuple[float, float | None]:
    """``lr_decay`` in (0, 1] and ``time_limit`` (minutes) positive or None."""
    if not _is_number(lr_decay) or not 0 < lr_decay <= 1:
        raise UsageError(f"Received `lr_decay={lr_decay!r}`; expected a number in (0, 1].")
    if time_limit is not None and (not _is_number(time_limit) or time_limit <= 0):
        raise UsageError(
            f"Received `time_limit={time_limit!r}`; expected a positive number of minutes or None."
        )
    return float(lr_decay), time_limit


def check_schedule(epochs, batch_size, patience, lr_decay, time_limit) -> dict:
    """The checked schedule arguments of a task's ``fit`` / ``fine_tune``, as a dict."""
    epochs, batch_size, patience = check_training_args(epochs, batch_size, patience)
    lr_decay, time_limit = check_schedule_args(lr_decay, time_limit)
    return dict(
        epochs=epochs,
        batch_size=batch_size,
        patience=patience,
        lr_decay=lr_decay,
        time_limit=time_limit,
    )


def check_fraction(name: str, value) -> float:
    """A number strictly between 0 and 1 (a validation split)."""
    if not _is_number(value) or not 0 < value < 1:
        raise UsageError(
            f"Received `{name}={value!r}`; expected a number between 0 and 1 (exclusive)."
        )
    return float(value)


def reseed(model, stage_seed: int, epoch: int) -> None:
    """Puts every random generator in ``model`` in a state set by ``(stage_seed, epoch)``."""
    import keras

    keras.utils.set_random_seed(stage_seed + epoch)
    for layer in model._flatten_layers(include_self=True):
        for gen in getattr(layer, "_seed_generators", []):
            state = gen.state
            state.assign(np.array([stage_seed % 2**31, epoch], dtype=state.dtype))


def compile_model(
    build_model,
    model=None,
    *,
    seed: int,
    strategy=None,
    learning_rate: float,
    clipnorm: float | None,
    loss,
    metrics=(),
    jit_compile: bool = False,
):
    """Builds (under ``strategy``) and compiles a model for training.

    Args:
        build_model: a function returning a fresh Keras model.
        model: the current model, if any: its weights carry over. Under a
            strategy the model is rebuilt in the strategy's scope.
        seed: seeds the initial weights of a new model.
        strategy: a ``tf.distribute.Strategy`` or None.
        learning_rate, clipnorm: Adam's settings.
        loss, metrics: passed to ``compile``.
        jit_compile: XLA-compile the train step (never over several replicas:
            XLA cannot place a step over mirrored variables on several CPUs).

    Returns:
        The compiled model, its optimizer's slots built (so checkpoints restore them).
    """
    import keras

    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    old_weights = model.get_weights() if model is not None else None
    with scope:
        if model is None or strategy is not None:
            keras.utils.set_random_seed(seed)
            model = build_model()
            if old_weights is not None:
                model.set_weights(old_weights)
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm)
        jit = jit_compile and (strategy is None or strategy.num_replicas_in_sync == 1)
        model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics), jit_compile=jit)
        optimizer.build(model.trainable_variables)
    distributed.prepare_model(model, strategy)
    return model


def weights_digest(model) -> str:
    """A sha256 of the model's weights (a resume key for fine-tuning runs)."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def run_key(run: dict) -> str:
    """The checkpoint key of a run: a hash of everything that sets its result."""
    return hashlib.sha256(json.dumps(run, sort_keys=True, default=str).encode()).hexdigest()[:20]


def train_epochs(
    model,
    make_dataset,
    val_dataset,
    *,
    key: str,
    stage_seed: int,
    epochs: int,
    learning_rate: float,
    patience: int,
    checkpoint_dir="auto",
    verbose: int = 1,
    lr_decay: float = 1.0,
    time_limit: float | None = None,
    callbacks=(),
    strategy=None,
    own_parts=False,
) -> dict:
    """Trains ``model`` epoch by epoch with early stopping, checkpoints and resume.

    Args:
        model: a compiled Keras model.
        make_dataset: ``make_dataset(shuffle_seed)`` -> the training ``tf.data.Dataset``
            of one epoch, shuffled by that seed.
        val_dataset: the validation dataset, or None (then the training loss is monitored).
        key: the run's checkpoint key (:func:`run_key`).
        stage_seed: sets the data order and dropout of every epoch.
        epochs, learning_rate, patience, lr_decay: the schedule; the learning
            rate of epoch k is ``learning_rate * lr_decay**k``.
        checkpoint_dir: "auto", a folder, or None (see the module docstring).
        verbose: 0 silent, 1 progress bars, 2 one line per epoch.
        time_limit: minutes; no new epoch starts after this long (at least one runs).
        callbacks: extra Keras callbacks for each epoch.
        strategy: the ``tf.distribute.Strategy`` the model was built under, if any.
        own_parts: under a multi-worker strategy, ``make_dataset`` gives this
            worker's own part (``distributed.worker_part``), not the whole data.

    Returns:
        The history (a dict of lists, with ``epoch_seconds``). The best epoch's
        weights are in ``model`` when it returns.
    """
    import keras

    class StopAfterOneEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    cluster = distributed.cluster_of(strategy)
    if cluster is not None:
        distributed.activate(cluster)
        distributed.agree(strategy, key, "the run (its arguments, data and fitted preprocessing)")
        dataset_of = make_dataset
        if own_parts:  # (this worker's chunks of a stream: distributed as they are)
            make_dataset = lambda seed: distributed.own_batches(dataset_of(seed), strategy)  # noqa: E731
        else:
            make_dataset = lambda seed: distributed.shard(dataset_of(seed), cluster)  # noqa: E731
        val_dataset = distributed.shard(val_dataset, cluster) if val_dataset is not None else None
    ckpt = Checkpoints(checkpoint_dir, key, verbose, cluster)
    state = ckpt.restore(model)
    if cluster is not None:
        resumed = state["epoch"] if state else 0
        if distributed.agree_max(strategy, resumed) != resumed:
            raise UsageError(
                f"Worker {cluster.index} found no checkpoint the chief resumes from; under "
                "multi-worker training checkpoint_dir must be a folder every worker reads."
            )
    history = state["history"] if state else {}
    start = state["epoch"] if state else 0
    best = state["best"] if state else float("inf")
    wait = state["wait"] if state else 0
    best_weights = ckpt.best_weights(model) if state else None
    stopped = state.get("stopped", False) if state else False
    started = time.monotonic()
    for epoch in range(start, epochs):
        if stopped:
            break
        over_time = time_limit is not None and time.monotonic() - started > 60 * time_limit
        if cluster is not None and time_limit is not None:  # one worker over: all stop
            over_time = distributed.agree_max(strategy, float(over_time)) > 0
        if over_time and epoch > start:  # at least one epoch per call
            if verbose:
                print(f"Time limit of {time_limit} minutes reached after epoch {epoch}.")
            break
        epoch_start = time.monotonic()
        reseed(model, stage_seed, epoch)
        model.optimizer.learning_rate.assign(learning_rate * lr_decay**epoch)
        # One epoch per call (its data order is set by (seed, epoch)); passing the
        # full `epochs` keeps Keras's progress line reading "Epoch k/epochs".
        try:
            result = model.fit(
                make_dataset(stage_seed + epoch),
                validation_data=val_dataset,
                initial_epoch=epoch,
                epochs=epochs,
                callbacks=[StopAfterOneEpoch(), *callbacks],
                shuffle=False,  # the dataset is already shuffled by (seed, epoch)
                verbose=verbose,
            )
        except KeyboardInterrupt:
            message = interrupted_message(ckpt, epoch, epochs)
            print(f"\n{message}", file=sys.stderr, flush=True)
            # Ctrl-C again, with the one line and without TensorFlow's 40 frames.
            raise KeyboardInterrupt(message) from None
        for name, values in result.history.items():
            history.setdefault(name, []).extend(float(v) for v in values)
        history.setdefault("epoch_seconds", []).append(round(time.monotonic() - epoch_start, 2))
        monitor = history["val_loss" if val_dataset is not None else "loss"][-1]
        if not np.isfinite(monitor):
            raise UsageError(
                f"Training diverged at epoch {epoch + 1} (loss {monitor}); lower the "
                "learning_rate or keep clipnorm on."
            )
        if monitor < best:
            best, wait = monitor, 0
            best_weights = [w.copy() for w in model.get_weights()]
            ckpt.save_best(model)
        else:
            wait += 1
        stopped = wait >= patience
        ckpt.save(model, epoch + 1, best, wait, history, stopped)
        if stopped and verbose:
            print(
                f"Early stopping: no better validation loss for {patience} epochs; "
                f"restoring the best epoch (loss {best:.4f})."
            )
    if best_weights is not None:
        model.set_weights(best_weights)
    ckpt.finish()
    return history


def interrupted_message(ckpt: Checkpoints, epoch: int, epochs: int) -> str:
    """The one line shown when Ctrl-C stops training in ``epoch`` (0-based): where to resume."""
    head = f"Interrupted in epoch {epoch + 1}/{epochs}"
    if ckpt.dir is None:
        return (
            f"{head}; no checkpoints were written (checkpoint_dir=None), so a rerun starts "
            "over; pass checkpoint_dir='auto' or a folder to be able to resume."
        )
    if not os.path.isfile(ckpt._paths()[0]):
        return (
            f"{head}; no epoch had finished, so there is no checkpoint yet in {ckpt.dir}; "
            "a rerun starts from epoch 1."
        )
    return (
        f"{head}; the last checkpoint (after epoch {epoch}) is in {ckpt.dir}; "
        "rerun the same call to resume."
    )


def _write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)


class Checkpoints:
    """Per-epoch training state on disk: last weights (with optimizer), best weights, JSON.

    Args:
        directory: "auto" (the cache, removed by :meth:`finish`), a folder, or None.
        key: the run's key; its files live in ``<directory>/<key>/``.
        verbose: print a line when resuming.
        cluster: the multi-worker cluster (:func:`seqkit.distributed.cluster_of`),
            if any: only its chief writes.
    """

    def __init__(self, directory, key: str, verbose: int = 1, cluster=None):
        self.verbose = verbose
        # Under multi-worker training every worker reads the chief's checkpoints
        # (a folder they share); only the chief writes them.
        self.writes = cluster is None or cluster.is_chief
        self.auto = directory == "auto"
        if directory is None:
            self.dir = None
        elif self.auto:
            root = os.environ.get(
                "SEQKIT_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "seqkit")
            )
            self.dir = os.path.join(root, "checkpoints", key)
        else:
            self.dir = os.path.join(os.fspath(directory), key)
        self.key = key

    def _paths(self):
        return (
            os.path.join(self.dir, "state.json"),
            os.path.join(self.dir, "last.weights.h5"),
            os.path.join(self.dir, "best.weights.h5"),
        )

    def restore(self, model):
        """The saved state (and the last weights loaded into ``model``), or None."""
        if self.dir is None or not os.path.isfile(os.path.join(self.dir, "state.json")):
            return None
        state_path, last_path, _ = self._paths()
        try:
            with open(state_path, encoding="utf-8") as f:
                state = json.load(f)
            model.load_weights(last_path)
        except Exception as error:  # a damaged checkpoint must not block training
            warnings.warn(
                f"Ignoring an unreadable checkpoint in {self.dir} ({error}).", stacklevel=3
            )
            return None
        if self.verbose:
            print(f"Resuming from the checkpoint after epoch {state['epoch']} ({self.dir}).")
        return state

    def best_weights(self, model):
        """The best epoch's weights as arrays (``model`` is left at the last epoch)."""
        _, last_path, best_path = self._paths()
        if not os.path.isfile(best_path):
            return None
        model.load_weights(best_path)
        best = [w.copy() for w in model.get_weights()]
        model.load_weights(last_path)  # weights and optimizer state back to the last epoch
        return best

    def _atomic_weights(self, model, path):
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}.weights.h5"
        model.save_weights(tmp)
        os.replace(tmp, path)

    def save_best(self, model):
        if self.dir is None or not self.writes:
            return
        os.makedirs(self.dir, exist_ok=True)
        self._atomic_weights(model, self._paths()[2])

    def save(self, model, epoch, best, wait, history, stopped):
        if self.dir is None or not self.writes:
            return
        os.makedirs(self.dir, exist_ok=True)
        state_path, last_path, _ = self._paths()
        self._atomic_weights(model, last_path)
        tmp = f"{state_path}.tmp"
        state = {"epoch": epoch, "best": best, "wait": wait, "stopped": stopped}
        _write_json(tmp, {**state, "history": copy.deepcopy(history)})
        os.replace(tmp, state_path)

    def finish(self):
        """Removes an "auto" run's checkpoints (training ended)."""
        if self.dir is not None and self.auto and self.writes:
            shutil.rmtree(self.dir, ignore_errors=True)
