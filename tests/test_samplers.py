"""seqkit.samplers: greedy, temperature, top-k, top-p on TensorFlow tensors."""

import re

import numpy as np
import pytest
import tensorflow as tf

from seqkit.samplers import (
    GreedySampler,
    Sampler,
    TemperatureSampler,
    TopKSampler,
    TopPSampler,
    get_sampler,
    sample_logits,
    top_p_filter,
)

RNG = np.random.RandomState(0)
LOGITS = tf.constant(RNG.normal(size=(16, 40)) * 2.0, tf.float32)  # (batch, vocabulary)


def draws(sampler, n=60, logits=LOGITS):
    return np.stack([sampler(logits, tf.constant([3, s])).numpy() for s in range(n)])  # (n, batch)


def test_greedy_is_the_argmax():
    np.testing.assert_array_equal(GreedySampler()(LOGITS).numpy(), np.argmax(LOGITS, -1))
    # temperature 0 in any sampler is greedy too, and ignores the seed
    np.testing.assert_array_equal(
        draws(TopKSampler(5, temperature=0.0), n=3), np.tile(np.argmax(LOGITS, -1), (3, 1))
    )


def test_top_k_never_leaves_the_k_most_likely():
    k = 3
    ids = draws(TopKSampler(k))
    top = np.argsort(-LOGITS.numpy(), axis=-1)[:, :k]  # (batch, k)
    for row in range(LOGITS.shape[0]):
        assert set(ids[:, row]) <= set(top[row])
    # ...and it does draw more than the argmax
    assert len(set(ids[:, 0])) > 1


def test_top_p_stays_inside_the_nucleus():
    p = 0.6
    ids = draws(TopPSampler(p))
    probs = tf.nn.softmax(LOGITS).numpy()
    for row in range(probs.shape[0]):
        order = np.argsort(-probs[row])
        mass_before = np.concatenate([[0.0], np.cumsum(probs[row][order])[:-1]])
        nucleus = set(order[mass_before < p])  # smallest set reaching p
        assert set(ids[:, row]) <= nucleus
        assert probs[row][sorted(nucleus)].sum() >= p - 1e-6


def test_top_p_keeps_at_least_the_most_likely_token():
    logits = tf.constant([[10.0, 0.0, 0.0]])
    filtered = top_p_filter(logits, 0.01).numpy()
    assert filtered[0, 0] == 10.0 and (filtered[0, 1:] < -1e8).all()


def test_seeded_draws_repeat_and_seeds_differ():
    sampler = TemperatureSampler(1.0)
    a = sampler(LOGITS, tf.constant([1, 2])).numpy()
    b = sampler(LOGITS, tf.constant([1, 2])).numpy()
    c = sampler(LOGITS, tf.constant([1, 3])).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_low_temperature_concentrates_on_the_argmax():
    cold = draws(TemperatureSampler(0.05))
    top2 = np.sort(LOGITS.numpy(), axis=-1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1.0  # rows whose best logit leads by > 1 (e^20 at T=0.05)
    assert clear.sum() >= 5
    argmax = np.argmax(LOGITS, -1)
    np.testing.assert_array_equal(cold[:, clear], np.tile(argmax[clear], (len(cold), 1)))


def test_temperature_follows_the_softmax():
    logits = tf.constant([[np.log(0.7), np.log(0.2), np.log(0.1)]] * 2000, tf.float32)
    ids = TemperatureSampler(1.0)(logits, tf.constant([0, 1])).numpy()
    freq = np.bincount(ids, minlength=3) / len(ids)
    np.testing.assert_allclose(freq, [0.7, 0.2, 0.1], atol=0.03)


def test_samplers_run_inside_a_graph_with_tensor_parameters():
    fn = tf.function(
        lambda logits, t, k, p, seed: sample_logits(logits, seed, t, k, p),
        input_signature=[
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([2], tf.int32),
        ],
    )
    seed = tf.constant([5, 6])
    greedy = fn(LOGITS, 0.0, 0, 1.0, seed).numpy()
    np.testing.assert_array_equal(greedy, np.argmax(LOGITS, -1))
    eager = Sampler(0.9, 4, 0.8)(LOGITS, seed).numpy()
    np.testing.assert_array_equal(fn(LOGITS, 0.9, 4, 0.8, seed).numpy(), eager)


def test_get_sampler_picks_the_simplest_object():
    assert isinstance(get_sampler(0), GreedySampler)
    assert isinstance(get_sampler(0.7), TemperatureSampler)
    assert isinstance(get_sampler(0.7, top_k=5), TopKSampler)
    assert isinstance(get_sampler(0.7, top_p=0.9), TopPSampler)
    both = get_sampler(0.7, top_k=5, top_p=0.9)
    assert both.get_config() == {"temperature": 0.7, "top_k": 5, "top_p": 0.9}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(temperature=-0.1), "Received `temperature=-0.1`; expected a number >= 0"),
        (dict(top_k=0), "Received `top_k=0`; expected a positive integer or None."),
        (dict(top_k=2.5), "Received `top_k=2.5`; expected a positive integer or None."),
        (dict(top_p=0.0), "Received `top_p=0.0`; expected a number in (0, 1] or None."),
        (dict(top_p=1.5), "Received `top_p=1.5`; expected a number in (0, 1] or None."),
    ],
)
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        get_sampler(**kwargs)


def test_the_parameter_checks_are_public_and_pass_tensors_through():
    from seqkit.samplers import check_temperature, check_top_k, check_top_p

    assert (check_temperature(1), check_top_k(None), check_top_k(5)) == (1.0, 0, 5)
    assert (check_top_p(None), check_top_p(0.9)) == (1.0, 0.9)
    t = tf.constant(0.5)
    assert check_temperature(t) is t and check_top_k(t) is t and check_top_p(t) is t
    with pytest.raises(ValueError, match=r"Received `top_k=True`; expected a positive integer"):
        check_top_k(True)


def test_every_sampler_exposes_the_parameters_a_generation_graph_takes():
    for sampler, params in [
        (GreedySampler(), (0.0, 0, 1.0)),
        (TemperatureSampler(0.7), (0.7, 0, 1.0)),
        (TopKSampler(4, temperature=0.5), (0.5, 4, 1.0)),
        (TopPSampler(0.9), (1.0, 0, 0.9)),
        (Sampler(0.8, 3, 0.95), (0.8, 3, 0.95)),
    ]:
        assert (sampler.temperature, sampler.top_k, sampler.top_p) == params
        seed = tf.constant([2, 9])
        np.testing.assert_array_equal(
            sampler(LOGITS, seed).numpy(), sample_logits(LOGITS, seed, *params).numpy()
        )
