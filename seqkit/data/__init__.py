"""Readers that turn what users have into the containers the pipelines train on.

One reader per kind of data, one container per reader; every container has a
``fingerprint()`` (sha256 hex of its content, stable across processes) that
checkpoints use to know their data:

- labelled texts (lists, DataFrames, CSV/TSV files, ``<label>/*.txt`` folders,
  ``tf.data``, tensorflow-datasets): :func:`read_text_classification` and
  :func:`read_texts` -> :class:`TextLabelData`;
- a labelled CSV/TSV file larger than memory, streamed in chunks: :class:`TextStream`;
- sentence pairs for translation: :func:`read_pairs` -> :class:`PairData`;
- text for a language model: :func:`read_corpus` -> :class:`TextCorpus`;
- a ``.txt`` file larger than memory, streamed in chunks: :class:`TextFileStream`;
- a CSV file in any encoding, as a DataFrame: :func:`read_csv_file`;
- long-format time series: :func:`read_series` -> series by id, held with their
  split in :class:`SeriesData`.

Modules: ``tables`` (labelled texts), ``streams`` (:class:`TextStream`),
``pairs``, ``corpus`` (corpora and :class:`TextFileStream`), ``series``.
Bad data raises :class:`DataError` (a ``ValueError``; :class:`SeriesError` for
series), saying what was wrong and how to fix it; both are
:class:`~seqkit.errors.SeqkitError`.

Example:

>>> from seqkit.data import read_text_classification
>>> data = read_text_classification((["good", "bad"], ["pos", "neg"]))
>>> data.labels, len(data.fingerprint())
(['pos', 'neg'], 64)
"""

from seqkit.data._common import read_csv_file, repair_surrogates
from seqkit.data.corpus import DOCUMENT_SEPARATOR, TextCorpus, TextFileStream, read_corpus
from seqkit.data.pairs import PairData, read_pairs
from seqkit.data.series import SeriesData, read_series
from seqkit.data.streams import TextStream
from seqkit.data.tables import TextLabelData, read_text_classification, read_texts
from seqkit.errors import DataError, SeqkitError, SeriesError

__all__ = [
    "DOCUMENT_SEPARATOR",
    "DataError",
    "PairData",
    "SeqkitError",
    "SeriesData",
    "SeriesError",
    "TextCorpus",
    "TextFileStream",
    "TextLabelData",
    "TextStream",
    "read_corpus",
    "read_csv_file",
    "read_pairs",
    "read_series",
    "read_text_classification",
    "read_texts",
    "repair_surrogates",
]
