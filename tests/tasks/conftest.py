"""Tiny, self-made sentiment data: a sentiment word hidden among neutral filler."""

import numpy as np
import pytest

POSITIVE = ["good", "great", "lovely", "superb", "wonderful"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring"]
FILLER = "the a film movie plot actor scene was is and it this".split()


def make_reviews(n, seed=0, labels=("negative", "positive")):
    rng = np.random.RandomState(seed)
    texts, out = [], []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(FILLER, 8))
        words.insert(rng.randint(9), rng.choice(POSITIVE if label else NEGATIVE))
        texts.append(" ".join(words))
        out.append(labels[label])
    return texts, out


SMALL = dict(units=8, embedding_dim=8, max_tokens=64, max_length=24, dropout=0.1)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    from tasks.sentiment import SentimentPipeline

    texts, labels = make_reviews(600)
    clf = SentimentPipeline(**SMALL, seed=3)
    clf.fit((texts, labels), epochs=6, verbose=0, checkpoint_dir=None, learning_rate=1e-2)
    return clf
