"""seqkit.search: BeamSampler and the reading of search settings (the searches
themselves are checked against a trained model in tests/tasks/test_translation.py)."""

import numpy as np
import pytest
import tensorflow as tf

from seqkit.errors import UsageError
from seqkit.samplers import GreedySampler, TopPSampler, search_settings
from seqkit.search import BeamSampler, beam_search, greedy_search


def _toy_step(tokens, state):
    """A fixed 4-token model: the next-token logits depend only on the last token."""
    table = tf.constant(
        [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 2.0, 1.9, -9.0], [0.0, 0.0, 0.0, 5.0]]
    )
    return tf.gather(table, tokens), state, tf.zeros([tf.shape(tokens)[0], 0])


@pytest.mark.parametrize("beams", [1, 3])
def test_beam_sampler_runs_the_search_it_names(beams):
    state = tf.zeros([2, 1])
    got = BeamSampler(beams, length_penalty=0.0)(_toy_step, state, 2, 4, 2, 3)
    if beams == 1:
        want = greedy_search(_toy_step, state, 2, 4, 2, 3)
    else:
        want = beam_search(_toy_step, state, 2, beams, 4, 2, 3, length_penalty=0.0)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_search_settings_from_either_form():
    assert search_settings(None, None, None) == (1, 0.6)
    assert search_settings(None, None, None, default_width=4) == (4, 0.6)
    assert search_settings(None, 3, 0.0) == (3, 0.0)
    assert search_settings(BeamSampler(5, 1.0), None, None) == (5, 1.0)
    assert search_settings(GreedySampler(), None, None) == (1, 0.6)
    assert repr(BeamSampler(2)) == "BeamSampler(num_beams=2, length_penalty=0.6)"


@pytest.mark.parametrize(
    "args, message",
    [
        ((BeamSampler(2), 2, None), r"Received both `sampler=BeamSampler\(num_beams=2, length"),
        ((BeamSampler(2), None, 0.5), r"and `length_penalty=`; pass one of them"),
        ((TopPSampler(0.9), None, None), r"a search takes BeamSampler\(num_beams, length_pen"),
        ((None, 0, None), r"Received `beam_width=0`; expected an integer >= 1\."),
        ((None, 2.5, None), r"Received `beam_width=2.5`; expected an integer >= 1\."),
        ((None, None, -1), r"Received `length_penalty=-1`; expected a number >= 0\."),
    ],
)
def test_bad_search_settings_are_named(args, message):
    with pytest.raises(UsageError, match=message):
        search_settings(*args)


@pytest.mark.parametrize("kwargs", [{"num_beams": 0}, {"num_beams": True}, {"length_penalty": "x"}])
def test_bad_beam_sampler(kwargs):
    with pytest.raises(UsageError, match=r"Received `(num_beams|length_penalty)="):
        BeamSampler(**kwargs)
