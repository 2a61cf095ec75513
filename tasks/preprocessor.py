"""The Preprocessor contract every task's preprocessing follows."""

from __future__ import annotations

__all__ = ["Preprocessor"]


class Preprocessor:
    """Raw inputs -> model inputs, fitted on training data and saved with the pipeline.

    Subclasses implement ``fit(data)`` (learn a vocabulary, labels, scalers;
    return self), ``__call__(inputs)``, ``get_config()`` (constructor
    arguments), ``get_assets()`` / ``set_assets(assets)`` (the learned state as
    JSON) and ``fitted``.
    """

    def fit(self, data):
        raise NotImplementedError

    def __call__(self, inputs):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    def get_assets(self) -> dict:
        return {}

    def set_assets(self, assets: dict) -> None:
        return None

    @property
    def fitted(self) -> bool:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
