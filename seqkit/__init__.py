"""seqkit: recurrent layers and sequence-task building blocks for Keras 3."""

from seqkit import layers

__version__ = "0.2.0"

__all__ = ["layers", "__version__"]
