"""Layer-test setup shared by every backend.

Under the PyTorch backend a layer's output is a tensor that requires a
gradient (the weights are `torch.nn.Parameter`s), and `np.asarray` refuses
such a tensor ("Can't call numpy() on Tensor that requires grad"). The tests
read outputs with `np.asarray` on every backend, so here a tensor is
detached before NumPy reads it (the same as `keras.ops.convert_to_numpy`).
"""

from __future__ import annotations

import keras
import pytest

if keras.backend.backend() == "torch":
    import torch

    _array = torch.Tensor.__array__

    def _detached_array(self, *args, **kwargs):
        return _array(self.detach().cpu(), *args, **kwargs)

    @pytest.fixture(autouse=True)
    def _numpy_reads_torch_tensors(monkeypatch):
        monkeypatch.setattr(torch.Tensor, "__array__", _detached_array)
