"""Same seed, same numbers, for every pipeline; exported graphs hold no GPU-only op."""

import os

import numpy as np
import pandas as pd
import pytest

from .conftest import TASKS, build, infer, sample_input


def metrics_of(pipeline, task):
    if task == "sentiment":
        return pipeline.evaluate((["the film was good", "a dull plot"], ["positive", "negative"]))
    if task == "textgen":
        return pipeline.evaluate("the cat sat on the mat.\nthe queen sang to a rose!\n")
    if task == "translation":
        return pipeline.evaluate([("el gato come el pan.", "the cat eats the bread.")])
    return pipeline.evaluate(sample_input(task))


def same(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            same(a[key], b[key])
    elif isinstance(a, np.ndarray | float | int):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("task", TASKS)
def test_the_same_seed_gives_identical_weights_predictions_and_metrics(fitted, task):
    again = build(task)  # the session fixture was built the same way, seed 0
    for a, b in zip(fitted[task].model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    same(infer(fitted[task], task), infer(again, task))
    same(metrics_of(fitted[task], task), metrics_of(again, task))


def test_another_seed_gives_other_weights(fitted):
    other = build("sentiment", seed=1)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(fitted["sentiment"].model.get_weights(), other.model.get_weights())
    )


def graph_ops(export_dir):
    """Every op type in a SavedModel: the top graph and each function in its library."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    ops = set()
    for meta in proto.meta_graphs:
        ops.update(node.op for node in meta.graph_def.node)
        for function in meta.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


@pytest.mark.parametrize("task", TASKS)
def test_exported_graphs_hold_no_cudnn_only_op(fitted, tmp_path, task):
    ops = graph_ops(fitted[task].export(str(tmp_path / task)))
    assert "MatMul" in ops or "BatchMatMulV2" in ops  # the walk reaches the function bodies
    assert {"While", "StatelessWhile"} & ops  # the recurrence is a loop, not a fused kernel
    gpu_only = sorted(op for op in ops if "cudnn" in op.lower())
    assert gpu_only == [], f"{task}: the exported graph needs a GPU for {gpu_only}"
