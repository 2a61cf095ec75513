"""seqkit: recurrent layers and sequence-task building blocks for Keras 3.

``seqkit.layers`` (Keras, TensorFlow) loads on first use, so that the light
modules (``seqkit.errors``, ``seqkit.export``, ``seqkit.data``) import quickly.
"""

__version__ = "0.3.0"

__all__ = ["layers", "__version__"]


def __getattr__(name):
    if name == "layers":
        import importlib

        return importlib.import_module("seqkit.layers")
    raise AttributeError(f"module 'seqkit' has no attribute {name!r}")
