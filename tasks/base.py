"""The shape every seqkit pipeline shares: fit, evaluate, predict, fine_tune, save, load, export.

A pipeline = a preprocessor fitted on the training data (vocabulary, label
names, scalers) + a Keras model built from seqkit layers + a postprocessor
that turns model outputs into plain Python. Subclasses supply those three
parts through a few hooks; this module writes the training loop, the
checkpoints, saving and loading once.

Training defaults (all overridable in ``fit``):

- Adam with gradient clipping (``clipnorm=1.0``) against exploding gradients;
- early stopping on validation loss, restoring the best epoch's weights;
- checkpoints after every epoch, so that a killed ``fit`` rerun with the same
  arguments resumes after the last finished epoch (``checkpoint_dir="auto"``
  keeps them under ``~/.cache/seqkit/checkpoints`` and deletes them when
  ``fit`` ends; pass a folder to keep them elsewhere, ``None`` for none);
- ``seed``: the data order and dropout of epoch *k* depend only on the seed
  and *k*, so CPU runs repeat exactly, resumed or not;
- ``strategy``: any ``tf.distribute.Strategy`` (the model is built in its scope);
- Keras progress bars; ``verbose=0`` silences them.

Saved pipelines are folders holding ``pipeline.json`` (task, hyperparameters,
format version), JSON assets (vocabulary, labels) and ``model.weights.h5``.
Nothing is unpickled and no class named in a file is imported: ``load``
rebuilds the model from the task's own code and reads only weights.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import tempfile
import uuid
import warnings

import numpy as np

__all__ = [
    "Pipeline",
    "PipelineError",
    "load",
    "register",
    "SHIPPED",
    "atomic_folder",
    "atomic_file",
]

FORMAT_VERSION = 1
CONFIG_FILE = "pipeline.json"
WEIGHTS_FILE = "model.weights.h5"
ASSETS_FILE = "assets.json"

_REGISTRY: dict[str, type] = {}
# Names accepted by `tasks.load(name)` -> folder under saved_models/.
SHIPPED = {
    "sentiment": "sentiment-imdb",
    "textgen": "textgen-shakespeare",
    "forecasting": "forecast-stocks",
    "translation": "translate-spa-eng",
}


class PipelineError(ValueError):
    """A pipeline was used wrongly (not fitted, bad argument); the message says how to fix it."""


INT32_MAX = 2**31 - 1


def int_arg(name: str, value, minimum: int = 1, maximum: int = INT32_MAX) -> int:
    """``value`` as an int, or a PipelineError naming the argument and what was expected.

    ``maximum`` defaults to the largest int32: sizes and counts end up in tensors.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise PipelineError(f"Received `{name}={value!r}`; expected an integer >= {minimum}.")
    if value > maximum:
        raise PipelineError(f"Received `{name}={value!r}`; expected an integer <= {maximum}.")
    return int(value)


def rate_arg(name: str, value) -> float:
    """``value`` as a float in [0, 1) (a dropout rate), or a PipelineError saying so."""
    if isinstance(value, bool) or not isinstance(value, float | int) or not 0 <= value < 1:
        raise PipelineError(f"Received `{name}={value!r}`; expected a number in [0, 1).")
    return float(value)


def choice(name: str, value, options):
    """``value`` if it is one of ``options``, else a PipelineError listing them."""
    if value not in options:
        raise PipelineError(f"Received `{name}={value!r}`; expected one of {options}.")
    return value


def register(name: str):
    """Class decorator: makes a pipeline loadable by its task name."""

    def wrap(cls):
        cls.task = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def saved_models_dir() -> str:
    """Where shipped pretrained pipelines live (``saved_models/`` beside ``tasks``)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("SEQKIT_MODELS_DIR", os.path.join(os.path.dirname(here), "saved_models"))


# --------------------------------------------------------------------------- files
@contextlib.contextmanager
def atomic_folder(path: str):
    """Yields a temporary folder that replaces ``path`` only when the block succeeds.

    The new copy is written beside ``path`` and moved into place with renames,
    so a crash at any moment leaves either the old folder or the new one. If a
    crash falls between the two renames, the old copy survives as
    ``<path>.old-*`` and :func:`load` falls back to it.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(path) + ".tmp-", dir=parent)
    try:
        yield tmp
        for root, _, files in os.walk(tmp):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    os.fsync(f.fileno())
        old = None
        if os.path.exists(path):
            old = f"{path}.old-{uuid.uuid4().hex[:8]}"
            os.rename(path, old)
        os.rename(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str):
    """Yields a temporary path beside ``path`` that replaces it only when the block succeeds."""
    path = os.fspath(path)
    tmp = os.path.join(
        os.path.dirname(os.path.abspath(path)),
        f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:8]}",
    )
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)


def _read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _halve_weights(path: str) -> None:
    """Rewrites a Keras ``.weights.h5`` file with its float32 arrays as float16.

    A fresh file is written and renamed over the old one: HDF5 never gives back
    the space of a deleted dataset, so converting in place would not shrink it.
    """
    import h5py

    def copy(src, dst):
        dst.attrs.update(dict(src.attrs))
        for name, item in src.items():
            if isinstance(item, h5py.Group):
                copy(item, dst.create_group(name))
                continue
            values = item[()]
            if item.dtype == np.float32:
                if np.abs(values).max(initial=0) > np.finfo(np.float16).max:
                    raise PipelineError(
                        f"A weight ({item.name}) exceeds the float16 range; save with "
                        "weights_dtype='float32'."
                    )
                values = values.astype(np.float16)
            dst.create_dataset(name, data=values)
            dst[name].attrs.update(dict(item.attrs))

    with atomic_file(path) as tmp, h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        copy(src, dst)


def _check_inside(folder: str, path: str) -> None:
    """Refuses a file of a saved pipeline that is a link or resolves outside its folder."""
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(path)
    if os.path.islink(path) or os.path.commonpath([real_folder, real]) != real_folder:
        raise PipelineError(
            f"{path} is a link or resolves outside the pipeline folder ({real}); a saved "
            "pipeline must hold its own files. Copy the real file into the folder."
        )


def _resolve_folder(path: str) -> str:
    if os.path.isdir(path):
        return path
    parent = os.path.dirname(os.path.abspath(path)) or "."
    base = os.path.basename(os.path.abspath(path))
    if os.path.isdir(parent):
        olds = sorted(n for n in os.listdir(parent) if n.startswith(base + ".old-"))
        if olds:
            warnings.warn(
                f"{path} is missing but a previous copy ({olds[-1]}) survived an "
                "interrupted save; loading that.",
                stacklevel=3,
            )
            return os.path.join(parent, olds[-1])
    return path


def load(path_or_name: str):
    """Loads a pipeline: a shipped one by name (``"sentiment"``) or a saved folder.

    Args:
        path_or_name: a name from ``tasks.SHIPPED`` or the folder given to ``save``.

    Returns:
        The pipeline, ready for ``predict``, ``evaluate``, ``fine_tune`` and ``export``.

    Example:

    >>> clf = tasks.load("sentiment")
    >>> clf.predict("A wonderful film.")[0]["label"]
    'positive'
    """
    if not isinstance(path_or_name, str | os.PathLike):
        raise PipelineError(
            f"Received `path_or_name={path_or_name!r}`; expected a folder path or one of "
            f"{sorted(SHIPPED)}."
        )
    path = os.fspath(path_or_name)
    if path in SHIPPED:
        path = os.path.join(saved_models_dir(), SHIPPED[path])
        if not os.path.isdir(path):
            raise PipelineError(
                f"The shipped pipeline {path_or_name!r} is not installed (no folder {path})."
            )
    path = _resolve_folder(path)
    if not os.path.isdir(path):
        known = ", ".join(repr(n) for n in sorted(SHIPPED))
        raise PipelineError(
            f"{path_or_name!r} is neither a saved pipeline folder nor a shipped pipeline; "
            f"the shipped ones are {known}."
        )
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise PipelineError(f"{path} is not a saved pipeline: it has no {CONFIG_FILE}.")
    _check_inside(path, config_path)
    try:
        meta = _read_json(config_path)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PipelineError(f"{config_path} is not valid JSON ({error}).") from None
    if not isinstance(meta, dict) or "task" not in meta or "config" not in meta:
        raise PipelineError(f"{config_path} lacks the 'task' and 'config' entries.")
    task = meta["task"]
    if task not in _REGISTRY:
        _import_tasks()
    if task not in _REGISTRY:
        raise PipelineError(
            f"{config_path} names an unknown task {task!r}; known tasks are {sorted(_REGISTRY)}."
        )
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise PipelineError(
            f"{path} was saved by a newer seqkit (format {meta['format_version']}); "
            "upgrade seqkit to load it."
        )
    return _REGISTRY[task]._from_folder(path, meta)


def _import_tasks() -> None:
    import importlib

    for module in ("tasks.sentiment", "tasks.textgen", "tasks.translation", "tasks.forecasting"):
        importlib.import_module(module)


# --------------------------------------------------------------------------- pipeline
class Pipeline:
    """Base class of the four task pipelines. Subclasses implement the hooks below.

    Hooks:
        _read(data, need_labels): reads user data into the task's own structure.
        _fit_preprocessor(train): fits vocabulary / labels / scalers on training data.
        _build_model(): returns a Keras model on preprocessed inputs.
        _dataset(data, batch_size, shuffle_seed): a ``tf.data.Dataset`` of (x, y).
        _get_assets() / _set_assets(assets): the preprocessor's state as JSON.
        _check_fine_tune_data(data): refuses data the fitted preprocessor cannot take.
    """

    task = "base"
    default_learning_rate = 1e-3

    def __init__(self, seed: int = 0, **config):
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise PipelineError(f"Received `seed={seed!r}`; expected a non-negative integer.")
        self.seed = int(seed)
        self.model = None
        self.history: dict[str, list] = {}
        self._fitted = False

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict:
        """The constructor arguments; ``type(self)(**config)`` builds an unfitted twin."""
        return {"seed": self.seed}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def _require_fitted(self, what: str) -> None:
        if not self._fitted:
            raise PipelineError(
                f"{type(self).__name__}.{what}() needs a trained pipeline; call fit() first "
                "or load one with tasks.load()."
            )

    # ----------------------------------------------------------------- training
    def fit(
        self,
        data,
        validation_data=None,
        *,
        epochs: int = 10,
        batch_size: int = 64,
        learning_rate: float | None = None,
        validation_split: float = 0.1,
        patience: int = 2,
        clipnorm: float | None = 1.0,
        checkpoint_dir: str | None = "auto",
        strategy=None,
        verbose: int = 1,
        lr_decay: float = 1.0,
        time_limit: float | None = None,
        **read_kwargs,
    ):
        """Fits the preprocessor on ``data`` and trains the model from scratch.

        Args:
            data: training data in any form the task accepts.
            validation_data: data for early stopping; if None, ``validation_split``
                of ``data`` is held out (a seeded random split).
            epochs: most epochs to train.
            batch_size: examples per step.
            learning_rate: Adam's learning rate (the task's default if None).
            validation_split: fraction held out when ``validation_data`` is None.
            patience: epochs without a better validation loss before stopping.
            clipnorm: gradient norm clipping (None disables it).
            checkpoint_dir: "auto", a folder, or None (see the module docstring).
            strategy: a ``tf.distribute.Strategy`` to train under.
            verbose: 0 silent, 1 progress bars, 2 one line per epoch.
            lr_decay: the learning rate of epoch k is ``learning_rate * lr_decay**k``.
            time_limit: minutes; no new epoch starts once this much time has
                passed (None: no limit). The best epoch's weights are kept.
            **read_kwargs: passed to the reader (e.g. ``text_column``).

        Returns:
            self.
        """
        epochs, batch_size = self._check_training_args(epochs, batch_size, patience)
        lr_decay, time_limit = self._check_schedule_args(lr_decay, time_limit)
        if not isinstance(validation_split, float | int) or not 0 < validation_split < 1:
            raise PipelineError(
                f"Received `validation_split={validation_split!r}`; expected a number "
                "between 0 and 1 (exclusive)."
            )
        train = self._read(data, need_labels=True, **read_kwargs)
        if validation_data is None:
            train, val = self._split(train, validation_split)
        else:
            val = self._read(validation_data, need_labels=True, **read_kwargs)
        self._fit_preprocessor(train)
        self._check_fine_tune_data(val, "validation_data")
        self.model = None
        self._fitted = True
        return self._train(
            train,
            val,
            stage="fit",
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate or self.default_learning_rate,
            patience=patience,
            clipnorm=clipnorm,
            checkpoint_dir=checkpoint_dir,
            strategy=strategy,
            verbose=verbose,
            lr_decay=lr_decay,
            time_limit=time_limit,
        )

    def fine_tune(
        self,
        data,
        validation_data=None,
        *,
        epochs: int = 2,
        learning_rate: float | None = None,
        batch_size: int = 32,
        validation_split: float = 0.1,
        patience: int = 2,
        clipnorm: float | None = 1.0,
        checkpoint_dir: str | None = "auto",
        strategy=None,
        verbose: int = 1,
        lr_decay: float = 1.0,
        time_limit: float | None = None,
        **read_kwargs,
    ):
        """Continues training from the current weights on new data.

        The preprocessor is kept: the vocabulary does not change (unseen words
        map to the out-of-vocabulary id) and labels must be ones the pipeline
        knows. The default learning rate is a tenth of ``fit``'s.

        Returns:
            self.
        """
        self._require_fitted("fine_tune")
        epochs, batch_size = self._check_training_args(epochs, batch_size, patience)
        lr_decay, time_limit = self._check_schedule_args(lr_decay, time_limit)
        train = self._read(data, need_labels=True, require_two_classes=False, **read_kwargs)
        self._check_fine_tune_data(train, "data")
        if validation_data is None and len(train) >= 20:
            train, val = self._split(train, validation_split)
        elif validation_data is None:
            val = None
        else:
            val = self._read(
                validation_data, need_labels=True, require_two_classes=False, **read_kwargs
            )
            self._check_fine_tune_data(val, "validation_data")
        return self._train(
            train,
            val,
            stage="fine_tune",
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate or self.default_learning_rate / 10,
            patience=patience,
            clipnorm=clipnorm,
            checkpoint_dir=checkpoint_dir,
            strategy=strategy,
            verbose=verbose,
            lr_decay=lr_decay,
            time_limit=time_limit,
        )

    @staticmethod
    def _check_schedule_args(lr_decay, time_limit):
        if (
            isinstance(lr_decay, bool)
            or not isinstance(lr_decay, float | int)
            or not 0 < lr_decay <= 1
        ):
            raise PipelineError(f"Received `lr_decay={lr_decay!r}`; expected a number in (0, 1].")
        if time_limit is not None and (
            isinstance(time_limit, bool)
            or not isinstance(time_limit, float | int)
            or time_limit <= 0
        ):
            raise PipelineError(
                f"Received `time_limit={time_limit!r}`; expected a positive number of minutes "
                "or None."
            )
        return float(lr_decay), time_limit

    @staticmethod
    def _check_training_args(epochs, batch_size, patience):
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise PipelineError(f"Received `{name}={value!r}`; expected a positive integer.")
        if isinstance(patience, bool) or not isinstance(patience, int | np.integer) or patience < 1:
            raise PipelineError(f"Received `patience={patience!r}`; expected a positive integer.")
        return int(epochs), int(batch_size)

    def _build_compiled(self, strategy, learning_rate, clipnorm):
        import keras

        scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
        old_weights = self.model.get_weights() if self.model is not None else None
        with scope:
            if self.model is None or strategy is not None:
                keras.utils.set_random_seed(self.seed)
                self.model = self._build_model()
                if old_weights is not None:
                    self.model.set_weights(old_weights)
            optimizer = keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm)
            # XLA cannot place a train step over mirrored variables on several CPUs.
            jit = self._jit_compile and (strategy is None or strategy.num_replicas_in_sync == 1)
            self.model.compile(
                optimizer=optimizer, loss=self._loss(), metrics=self._metrics(), jit_compile=jit
            )
            # Build the optimizer's slots now so that checkpoints can restore them.
            optimizer.build(self.model.trainable_variables)

    def _reseed(self, stage_seed: int, epoch: int) -> None:
        """Puts every random generator in the model in a state set by (seed, epoch)."""
        import keras

        keras.utils.set_random_seed(stage_seed + epoch)
        for layer in self.model._flatten_layers(include_self=True):
            for gen in getattr(layer, "_seed_generators", []):
                state = gen.state
                state.assign(np.array([stage_seed % 2**31, epoch], dtype=state.dtype))

    def _train(
        self,
        train,
        val,
        *,
        stage,
        epochs,
        batch_size,
        learning_rate,
        patience,
        clipnorm,
        checkpoint_dir,
        strategy,
        verbose,
        lr_decay=1.0,
        time_limit=None,
    ):
        import time

        import keras

        class StopAfterOneEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                self.model.stop_training = True

        self._build_compiled(strategy, learning_rate, clipnorm)
        run = {
            "stage": stage,
            "config": self.get_config(),
            "assets": self._get_assets(),
            "data": self._fingerprint(train) + self._fingerprint(val),
            "start_weights": _weights_digest(self.model) if stage != "fit" else "",
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "clipnorm": clipnorm,
        }
        if lr_decay != 1.0:  # (kept out of the key when unused: older checkpoints still resume)
            run["lr_decay"] = lr_decay
        key = hashlib.sha256(json.dumps(run, sort_keys=True, default=str).encode()).hexdigest()
        ckpt = _Checkpoints(checkpoint_dir, key[:20], verbose)
        stage_seed = (self.seed * 1_000_003 + (0 if stage == "fit" else 7919)) % 2**31
        state = ckpt.restore(self.model)
        history = state["history"] if state else {}
        start = state["epoch"] if state else 0
        best = state["best"] if state else float("inf")
        wait = state["wait"] if state else 0
        best_weights = ckpt.best_weights(self.model) if state else None
        val_ds = self._dataset(val, batch_size, shuffle_seed=None) if val is not None else None
        stopped = state.get("stopped", False) if state else False
        started = time.monotonic()
        for epoch in range(start, epochs):
            if stopped:
                break
            over_time = time_limit is not None and time.monotonic() - started > 60 * time_limit
            if over_time and epoch > start:  # at least one epoch per call
                if verbose:
                    print(f"Time limit of {time_limit} minutes reached after epoch {epoch}.")
                break
            epoch_start = time.monotonic()
            self._reseed(stage_seed, epoch)
            self.model.optimizer.learning_rate.assign(learning_rate * lr_decay**epoch)
            train_ds = self._dataset(train, batch_size, shuffle_seed=stage_seed + epoch)
            # One epoch per call (its data order is set by (seed, epoch)); passing the
            # full `epochs` keeps Keras's progress line reading "Epoch k/epochs".
            result = self.model.fit(
                train_ds,
                validation_data=val_ds,
                initial_epoch=epoch,
                epochs=epochs,
                callbacks=[StopAfterOneEpoch()] + self._callbacks(val),
                shuffle=False,  # the task's dataset is already shuffled by (seed, epoch)
                verbose=verbose,
            )
            for name, values in result.history.items():
                history.setdefault(name, []).extend(float(v) for v in values)
            history.setdefault("epoch_seconds", []).append(round(time.monotonic() - epoch_start, 2))
            monitor = history["val_loss" if val is not None else "loss"][-1]
            if not np.isfinite(monitor):
                raise PipelineError(
                    f"Training diverged at epoch {epoch + 1} (loss {monitor}); lower the "
                    "learning_rate or keep clipnorm on."
                )
            if monitor < best:
                best, wait = monitor, 0
                best_weights = [w.copy() for w in self.model.get_weights()]
                ckpt.save_best(self.model)
            else:
                wait += 1
            stopped = wait >= patience
            ckpt.save(self.model, epoch + 1, best, wait, history, stopped)
            if stopped and verbose:
                print(
                    f"Early stopping: no better validation loss for {patience} epochs; "
                    f"restoring the best epoch (loss {best:.4f})."
                )
        if best_weights is not None:
            self.model.set_weights(best_weights)
        self.history = history
        self._after_training(val)
        ckpt.finish()
        return self

    # ----------------------------------------------------------------- data helpers
    def _split(self, data, fraction):
        if hasattr(data, "split") and hasattr(data, "chunks"):  # a stream (seqkit.data.TextStream)
            return data.split(fraction)
        n = len(data)
        n_val = max(1, int(round(n * fraction)))
        if n - n_val < 1:
            raise PipelineError(
                f"Only {n} examples: too few to hold out a validation split; pass "
                "validation_data=... or more data."
            )
        order = np.random.RandomState(self.seed).permutation(n)
        return self._subset(data, order[n_val:]), self._subset(data, order[:n_val])

    @staticmethod
    def _fingerprint(data) -> str:
        if data is None:
            return "none"
        if hasattr(data, "fingerprint"):  # a stream: never read whole
            return data.fingerprint()
        h = hashlib.sha256()
        for text in data.texts:
            h.update(text.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
        h.update(json.dumps(data.labels, default=str).encode())
        return h.hexdigest()

    # ----------------------------------------------------------------- save / load
    def save(self, path: str, weights_dtype: str = "float32") -> str:
        """Saves the pipeline into the folder ``path``, atomically.

        The folder is written beside ``path`` and renamed into place, so an
        interrupted save leaves the previous copy loadable.

        Args:
            path: the folder.
            weights_dtype: "float32" (exact) or "float16" (half the size; the
                weights load back into float32, rounded to 11 significant bits).

        Returns:
            ``path``.
        """
        self._require_fitted("save")
        choice("weights_dtype", weights_dtype, ["float32", "float16"])
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise PipelineError(f"Received `path={path!r}`; expected a folder path.")
        path = os.fspath(path)
        if os.path.isfile(path):
            raise PipelineError(f"{path} is a file; save() writes a folder.")
        import seqkit

        with atomic_folder(path) as tmp:
            _write_json(
                os.path.join(tmp, CONFIG_FILE),
                {
                    "task": self.task,
                    "format_version": FORMAT_VERSION,
                    "seqkit_version": seqkit.__version__,
                    "config": self.get_config(),
                    "history": self.history,
                    "weights_dtype": weights_dtype,
                },
            )
            _write_json(os.path.join(tmp, ASSETS_FILE), self._get_assets())
            # A model without an optimizer: the saved weights hold no Adam slots
            # (a third of the size; fine_tune starts a fresh optimizer anyway).
            self._bare_model().save_weights(os.path.join(tmp, WEIGHTS_FILE))
            if weights_dtype == "float16":
                _halve_weights(os.path.join(tmp, WEIGHTS_FILE))
        return path

    def _bare_model(self):
        """A copy of the model with the same weights and no optimizer, loss or metrics."""
        bare = self._build_model()
        bare.set_weights(self.model.get_weights())
        return bare

    @classmethod
    def _from_folder(cls, path: str, meta: dict):
        config = meta["config"]
        if not isinstance(config, dict):
            raise PipelineError(f"{path}: the 'config' entry must be a JSON object.")
        try:
            pipeline = cls(**config)
        except TypeError as error:
            raise PipelineError(
                f"{path}: the saved config does not fit {cls.__name__} ({error})."
            ) from None
        assets_path = os.path.join(path, ASSETS_FILE)
        weights_path = os.path.join(path, WEIGHTS_FILE)
        for needed in (assets_path, weights_path):
            if not os.path.isfile(needed):
                raise PipelineError(f"{path} is incomplete: {os.path.basename(needed)} is missing.")
            _check_inside(path, needed)
        try:
            assets = _read_json(assets_path)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise PipelineError(f"{assets_path} is not valid JSON ({error}).") from None
        if not isinstance(assets, dict):
            raise PipelineError(f"{assets_path} must hold a JSON object.")
        try:
            pipeline._set_assets(assets)
        except PipelineError:
            raise
        except (KeyError, TypeError, ValueError) as error:
            raise PipelineError(
                f"{assets_path} does not fit the saved config ({type(error).__name__}: {error})."
            ) from None
        pipeline.model = pipeline._build_model()
        try:
            pipeline.model.load_weights(weights_path)
        except (ValueError, OSError, KeyError) as error:
            raise PipelineError(
                f"{weights_path} does not match the saved config ({error})."
            ) from None
        pipeline.history = meta.get("history", {})
        pipeline._fitted = True
        return pipeline

    # ----------------------------------------------------------------- hooks
    def _read(self, data, need_labels, **kwargs):
        raise NotImplementedError

    def _subset(self, data, index):
        raise NotImplementedError

    def _fit_preprocessor(self, train) -> None:
        raise NotImplementedError

    def _check_fine_tune_data(self, data, name) -> None:
        return None

    # Whether Keras compiles the whole train step with XLA. Off by default (the
    # recurrent layers compile their own loops); forecasting turns it on because
    # its un-compiled step is not bitwise repeatable with parallel inter-op threads.
    _jit_compile = False

    def _build_model(self):
        raise NotImplementedError

    def _dataset(self, data, batch_size, shuffle_seed):
        raise NotImplementedError

    def _loss(self):
        raise NotImplementedError

    def _metrics(self):
        return []

    def _get_assets(self) -> dict:
        return {}

    def _after_training(self, val) -> None:
        """Runs once the best weights are back (e.g. to fit something on ``val``)."""

    def _callbacks(self, val) -> list:
        """Extra Keras callbacks for each training epoch (e.g. a validation metric)."""
        return []

    def _set_assets(self, assets: dict) -> None:
        return None


def _weights_digest(model) -> str:
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


class _Checkpoints:
    """Per-epoch training state on disk: last weights (with optimizer), best weights, JSON."""

    def __init__(self, directory, key, verbose):
        self.verbose = verbose
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
        if self.dir is None or not os.path.isfile(os.path.join(self.dir, "state.json")):
            return None
        state_path, last_path, _ = self._paths()
        try:
            state = _read_json(state_path)
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
        if self.dir is None:
            return
        os.makedirs(self.dir, exist_ok=True)
        self._atomic_weights(model, self._paths()[2])

    def save(self, model, epoch, best, wait, history, stopped):
        if self.dir is None:
            return
        os.makedirs(self.dir, exist_ok=True)
        state_path, last_path, _ = self._paths()
        self._atomic_weights(model, last_path)
        tmp = f"{state_path}.tmp"
        _write_json(
            tmp,
            {
                "epoch": epoch,
                "best": best,
                "wait": wait,
                "history": copy.deepcopy(history),
                "stopped": stopped,
            },
        )
        os.replace(tmp, state_path)

    def finish(self):
        if self.dir is not None and self.auto:
            shutil.rmtree(self.dir, ignore_errors=True)
