"""The shape every seqkit task shares: a Preprocessor, a model, and the Task around them.

A task (``SentimentPipeline``, ``TextGenPipeline``, ``TranslationPipeline``,
``ForecastPipeline``) is

- a :class:`Preprocessor` (``task.preprocessor``): ``fit(data)`` learns the
  vocabulary, labels or scalers from training data; calling it turns raw
  inputs into model inputs; it saves with the pipeline;
- a Keras model built from ``seqkit.layers.RecurrentStack`` (the backbone)
  and a task head;
- the :class:`Task` itself, which writes ``fit``, ``fine_tune``, ``save``,
  ``from_folder`` and ``export`` once, over a few hooks each task supplies.

Training runs on ``seqkit.training`` (one engine: clipping, early stopping,
checkpoints and resume, seeds, ``tf.distribute`` strategies); writing runs on
``seqkit.export`` (atomic folders, float16 weights, export tracing).

Saved pipelines are folders holding ``pipeline.json`` (task, hyperparameters,
format version, the seqkit version that wrote it), ``assets.json`` (the
preprocessor's state and the task's extras), ``model.weights.h5`` and
``CHECKSUMS.sha256`` (:mod:`tasks.integrity`, checked by load). Nothing is
unpickled and no class named in a file is imported: loading rebuilds the model
from the task's own code and reads only weights. Folders of seqkit 0.1.0
(format 1) load too, mapped onto the new layout (``seqkit upgrade`` re-saves one).
"""

from __future__ import annotations

import os

import numpy as np

import seqkit
from seqkit import distributed, training
from seqkit.export import atomic_file, atomic_folder, halve_weights
from tasks.arguments import (
    PipelineError,
    bool_arg,
    cell_arg,
    choice,
    int_arg,
    rate_arg,
    renamed_arguments,
)
from tasks.integrity import write_checksums
from tasks.legacy import load_legacy_weights
from tasks.preprocessor import Preprocessor
from tasks.registry import check_inside, read_json, register, write_json

__all__ = [
    "Task",
    "Pipeline",
    "Preprocessor",
    "PipelineError",
    "register",
    "renamed_arguments",
    "int_arg",
    "bool_arg",
    "cell_arg",
    "rate_arg",
    "choice",
    "atomic_folder",
    "atomic_file",
]

FORMAT_VERSION = 3  # 1: 0.1.0 (before RecurrentStack); 2: 0.2.0; 3: + tokenizers
CONFIG_FILE = "pipeline.json"
WEIGHTS_FILE = "model.weights.h5"
ASSETS_FILE = "assets.json"


class Task:
    """Base class of the task pipelines. Subclasses implement the hooks at the end.

    Hooks:
        _read(data, need_labels, **kw), _read_fine_tune(data, **kw): data -> the task's container.
        _subset(data, index): rows of a container.
        _fit_preprocessor(train): fits ``self.preprocessor`` (and task extras).
        _check_fine_tune_data(data, name): refuses data the fitted preprocessor cannot take.
        _build_model(): a Keras model on preprocessed inputs.
        _dataset(data, batch_size, shuffle_seed): a ``tf.data.Dataset`` of (x, y).
        _loss(), _metrics(), _callbacks(val), _after_training(val): training parts.
        _get_assets() / _set_assets(assets): the task's own state beside the preprocessor's.
        _serving(**kwargs) -> (tf.Module, signatures): what ``export`` saves.
        _legacy_weight_path(path): maps a weight of the model to its seqkit 0.1.0 name.
    """

    task = "base"
    default_learning_rate = 1e-3
    # Whether Keras compiles the whole train step with XLA. Off by default (the
    # recurrent layers compile their own loops); forecasting turns it on because
    # its un-compiled step is not bitwise repeatable with parallel inter-op threads.
    _jit_compile = False
    preprocessor: Preprocessor | None = None

    def __init__(self, seed: int = 0):
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
            checkpoint_dir: "auto", a folder, or None (see ``seqkit.training``).
            strategy: a ``tf.distribute.Strategy`` to train under.
            verbose: 0 silent, 1 progress bars, 2 one line per epoch.
            lr_decay: the learning rate of epoch k is ``learning_rate * lr_decay**k``.
            time_limit: minutes; no new epoch starts once this much time has
                passed (None: no limit). The best epoch's weights are kept.
            **read_kwargs: passed to the reader (e.g. ``text_column``).

        Returns:
            self.
        """
        schedule = self._check_schedule(epochs, batch_size, patience, lr_decay, time_limit)
        training.check_fraction("validation_split", validation_split)
        train = self._read(data, need_labels=True, **read_kwargs)
        if validation_data is None:
            train, val = self._split(train, validation_split)
        else:
            val = self._read(validation_data, need_labels=True, **read_kwargs)
        self._fit_preprocessor(train)
        self._check_fine_tune_data(val, "validation_data")
        self.model = None
        self._fitted = True
        lr = learning_rate or self.default_learning_rate
        return self._train(
            train, val, "fit", lr, clipnorm, checkpoint_dir, strategy, verbose, **schedule
        )

    def fine_tune(
        self,
        data,
        validation_data=None,
        *,
        epochs: int = 2,
        learning_rate: float | None = None,
        batch_size: int = 32,
        **options,
    ):
        """Continues training from the current weights on new data.

        The preprocessor is kept: the vocabulary does not change (unseen words
        map to the out-of-vocabulary id) and labels must be ones the pipeline
        knows. The default learning rate is a tenth of ``fit``'s; with fewer
        than 20 examples and no ``validation_data`` nothing is held out.

        Args:
            data, validation_data, epochs, learning_rate, batch_size: as in ``fit``.
            **options: ``fit``'s other training options (``validation_split``,
                ``patience``, ``clipnorm``, ``checkpoint_dir``, ``strategy``,
                ``verbose``, ``lr_decay``, ``time_limit``, same defaults), then
                the reader's keyword arguments.

        Returns:
            self.
        """
        read_kwargs = dict(options)
        o = {k: read_kwargs.pop(k, v) for k, v in training.DEFAULTS.items()}
        self._require_fitted("fine_tune")
        schedule = self._check_schedule(
            epochs, batch_size, o["patience"], o["lr_decay"], o["time_limit"]
        )
        train = self._read_fine_tune(data, **read_kwargs)
        self._check_fine_tune_data(train, "data")
        if validation_data is None and len(train) >= 20:
            train, val = self._split(train, o["validation_split"])
        elif validation_data is None:
            val = None
        else:
            val = self._read_fine_tune(validation_data, **read_kwargs)
            self._check_fine_tune_data(val, "validation_data")
        lr = learning_rate or self.default_learning_rate / 10
        where = (o["clipnorm"], o["checkpoint_dir"], o["strategy"], o["verbose"])
        return self._train(train, val, "fine_tune", lr, *where, **schedule)

    _check_schedule = staticmethod(training.check_schedule)

    def _train(
        self,
        train,
        val,
        stage,
        learning_rate,
        clipnorm,
        checkpoint_dir,
        strategy,
        verbose,
        *,
        epochs,
        batch_size,
        patience,
        lr_decay,
        time_limit,
    ):
        self.model = training.compile_model(
            self._build_model,
            self.model,
            seed=self.seed,
            strategy=strategy,
            learning_rate=learning_rate,
            clipnorm=clipnorm,
            loss=self._loss(),
            metrics=self._metrics(),
            jit_compile=self._jit_compile,
        )
        run = {
            "stage": stage,
            "config": self.get_config(),
            "assets": self._all_assets(),
            "data": self._fingerprint(train) + self._fingerprint(val),
            "start_weights": training.weights_digest(self.model) if stage != "fit" else "",
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "clipnorm": clipnorm,
        }
        if lr_decay != 1.0:  # (kept out of the key when unused: older checkpoints still resume)
            run["lr_decay"] = lr_decay
        stage_seed = (self.seed * 1_000_003 + (0 if stage == "fit" else 7919)) % 2**31
        val_ds = self._dataset(val, batch_size, shuffle_seed=None) if val is not None else None
        part, batch, own = distributed.worker_part(train, batch_size, strategy)
        self.history = training.train_epochs(
            self.model,
            lambda shuffle_seed: self._dataset(part, batch, shuffle_seed=shuffle_seed),
            val_ds,
            key=training.run_key(run),
            stage_seed=stage_seed,
            epochs=epochs,
            learning_rate=learning_rate,
            patience=patience,
            checkpoint_dir=checkpoint_dir,
            verbose=verbose,
            lr_decay=lr_decay,
            time_limit=time_limit,
            callbacks=self._callbacks(val),
            strategy=strategy,
            own_parts=own,
        )
        if distributed.cluster_of(strategy) is not None:
            # Mirrored variables run collectives on every call: predicting, saving
            # and exporting on one worker needs a model of its own.
            self.model = self._bare_model()
        self._after_training(val)
        return self

    def _split(self, data, fraction):
        """A seeded random (train, validation) split; a stream splits itself."""
        if hasattr(data, "split") and hasattr(data, "chunks"):  # a stream: never read whole
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
        return "none" if data is None else data.fingerprint()

    # ----------------------------------------------------------------- save / load
    def _all_assets(self) -> dict:
        return {**self.preprocessor.get_assets(), **self._get_assets()}

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
        meta = {
            "task": self.task,
            "format_version": FORMAT_VERSION,
            "seqkit_version": seqkit.__version__,
            "config": self.get_config(),
            "history": self.history,
            "weights_dtype": weights_dtype,
        }
        with distributed.write_path(path) as target, atomic_folder(target) as tmp:
            write_json(os.path.join(tmp, CONFIG_FILE), meta)
            write_json(os.path.join(tmp, ASSETS_FILE), self._all_assets())
            # No optimizer: no Adam slots saved (a third of the size; fine_tune starts afresh).
            weights = os.path.join(tmp, WEIGHTS_FILE)
            self._bare_model().save_weights(weights)
            if weights_dtype == "float16":
                halve_weights(weights)
            write_checksums(tmp)  # tasks.load names a damaged file
        return path

    def _bare_model(self):
        """A copy of the model with the same weights and no optimizer, loss or metrics."""
        bare = self._build_model()
        bare.set_weights(self.model.get_weights())
        return bare

    @classmethod
    def from_folder(cls, path: str, meta: dict):
        """Rebuilds a pipeline from a folder written by :meth:`save` (``meta``: its pipeline.json)."""
        version = meta.get("format_version", 0)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise PipelineError(
                f"{path} was saved by a newer seqkit ({meta.get('seqkit_version', '?')}, format "
                f"{version}); upgrade seqkit to load it."
            )
        config = meta["config"]
        if not isinstance(config, dict):
            raise PipelineError(f"{path}: the 'config' entry must be a JSON object.")
        renames = getattr(cls.__init__, "renamed_arguments", {})
        config = {renames.get(k, k): v for k, v in config.items()}
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
            check_inside(path, needed)
        assets = read_json(assets_path)
        if not isinstance(assets, dict):
            raise PipelineError(f"{assets_path} must hold a JSON object.")
        try:
            pipeline.preprocessor.set_assets(assets)
            pipeline._set_assets(assets)
        except PipelineError:
            raise
        except (KeyError, TypeError, ValueError) as error:
            raise PipelineError(
                f"{assets_path} does not fit the saved config ({type(error).__name__}: {error})."
            ) from None
        pipeline.model = pipeline._build_model()
        try:
            if version < 2:
                load_legacy_weights(pipeline, weights_path, meta)
            else:
                pipeline.model.load_weights(weights_path)
        except (ValueError, OSError, KeyError) as error:
            if isinstance(error, PipelineError):
                raise
            raise PipelineError(
                f"{weights_path} does not match the saved config ({error})."
            ) from None
        pipeline.history = meta.get("history", {})
        pipeline._fitted = True
        return pipeline

    # ----------------------------------------------------------------- export
    def export(
        self, path: str, format: str = "saved_model", overwrite: bool = False, **kwargs
    ) -> str:
        """Writes a TensorFlow SavedModel that serves raw inputs, atomically.

        The graph holds the preprocessing (tokenization, scaling) and the
        postprocessing; it serves without seqkit through ``tf.saved_model.load``
        and the TF1 session loader (TF Serving, ``saved_model_cli``). The
        signatures are the task's ``_serving`` tf.functions, traced here;
        ``kwargs`` are its export options (e.g. ``beam_width`` for translation).

        ``format="onnx"`` or ``"litert"`` write graphs over token ids (or numbers)
        with the vocabulary files and a README instead (:mod:`tasks.portable`;
        LiteRT takes ``quantize="float16"`` or ``"dynamic_int8"``).

        Args:
            path: the folder to write; an existing one only with ``overwrite=True``
                (replaced once the new copy is complete).
            format: "saved_model" (the default), "onnx" or "litert".

        Returns:
            ``path``.
        """
        self._require_fitted("export")
        from tasks.portable import check_export, export_portable
        from tasks.serving import write_saved_model

        with distributed.write_path(path) as target:  # a worker's copy goes to a temp folder
            check_export(target, format, overwrite)
            if format != "saved_model":
                export_portable(self, target, format, **kwargs)
            else:
                write_saved_model(*self._serving(**kwargs), target)
        return path

    # ----------------------------------------------------------------- hooks
    def _read(self, data, need_labels, **kwargs):
        raise NotImplementedError

    def _read_fine_tune(self, data, **kwargs):
        return self._read(data, need_labels=True, **kwargs)

    def _subset(self, data, index):
        raise NotImplementedError

    def _fit_preprocessor(self, train) -> None:
        self.preprocessor.fit(train)

    def _check_fine_tune_data(self, data, name) -> None:
        return None

    def _build_model(self):
        raise NotImplementedError

    def _dataset(self, data, batch_size, shuffle_seed):
        raise NotImplementedError

    def _loss(self):
        raise NotImplementedError

    def _metrics(self):
        return []

    def _callbacks(self, val) -> list:
        """Extra Keras callbacks for each training epoch (e.g. a validation metric)."""
        return []

    def _after_training(self, val) -> None:
        """Runs once the best weights are back (e.g. to fit something on ``val``)."""

    def _get_assets(self) -> dict:
        return {}

    def _set_assets(self, assets: dict) -> None:
        return None

    def _serving(self, **kwargs):
        raise NotImplementedError

    def _legacy_weight_path(self, path: str) -> str:
        return path


Pipeline = Task
