"""Helpers shared by the readers of :mod:`seqkit.data`: text and label checks, digests."""

from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np

from seqkit.errors import DataError

INT32_MAX = 2**31 - 1


def repair_surrogates(text: str) -> str:
    """``text`` as valid Unicode: surrogate pairs joined, lone surrogates -> U+FFFD.

    Python strings may hold lone surrogates (e.g. from ``errors="surrogateescape"``
    decoding or JSON with ``"\\ud800"``); TensorFlow cannot encode them to UTF-8.
    They are replaced like undecodable bytes are when files are read.

    Args:
        text: any Python string.

    Returns:
        ``text`` itself when it is valid Unicode, else a repaired copy.

    Example:

    >>> repair_surrogates("a\\ud83d\\ude00b\\ud800")
    'a😀b\\ufffd'
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def is_missing(value) -> bool:
    """True for None, NaN and the other values pandas counts as missing."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(float(value))
    try:
        import pandas as pd

        return bool(pd.isna(value)) if np.ndim(value) == 0 else False
    except (TypeError, ValueError):
        return False


def normalise_label(value, where: str):
    """Labels become ``int`` (whole numbers, bools) or ``str``; anything else is refused."""
    if is_missing(value):
        raise DataError(
            f"{where}: a label is missing (NaN or None). Drop those rows or fill them in "
            "before training."
        )
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        if float(value).is_integer():
            return int(value)
        raise DataError(
            f"{where}: label {value!r} is a fractional number; class labels must be "
            "integers or strings."
        )
    if isinstance(value, str):
        if not value.strip():
            raise DataError(f"{where}: a label is an empty string.")
        return value
    raise DataError(
        f"{where}: label {value!r} has type {type(value).__name__}; class labels must be "
        "integers or strings."
    )


def normalise_text(value, index: int, where: str) -> str:
    """``value`` as a valid Unicode ``str`` (bytes decoded as UTF-8), or a DataError."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{where}: text #{index} is not valid UTF-8 ({error}).") from None
    if isinstance(value, str):  # np.str_ too
        return repair_surrogates(str(value))
    kind = "missing (NaN or None)" if is_missing(value) else f"a {type(value).__name__}"
    raise DataError(
        f"{where}: text #{index} is {kind}, not a string. Every text must be a str; "
        "drop or fill empty rows first."
    )


def is_tf_dataset(data) -> bool:
    """True for a ``tf.data.Dataset`` (False when TensorFlow is not installed)."""
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        return False
    return isinstance(data, tf.data.Dataset)


def dataset_elements(dataset, text_column: str, missing: str):
    """The elements of a ``tf.data.Dataset`` as numpy values, dict elements checked.

    Args:
        dataset: the ``tf.data.Dataset``.
        text_column: the key a dict element must have.
        missing: the DataError message for a dict element without it, formatted
            with ``column`` (the key's repr) and ``keys`` (the element's, sorted).

    Returns:
        A generator of the elements (the error comes when the bad element does).

    Example:

    >>> import tensorflow as tf
    >>> ds = tf.data.Dataset.from_tensor_slices({"text": ["a", "b"]})
    >>> [e["text"] for e in dataset_elements(ds, "text", "no {column} in {keys}")]
    [b'a', b'b']
    """
    for element in dataset.as_numpy_iterator():
        if isinstance(element, dict) and text_column not in element:
            raise DataError(missing.format(column=repr(text_column), keys=sorted(element)))
        yield element


def decode(value):
    """``bytes`` decoded as UTF-8; anything else unchanged."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def positive_int(name: str, value) -> int:
    """``value`` as an int in [1, int32 max], or a DataError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise DataError(f"Received `{name}={value!r}`; expected an integer >= 1.")
    if value > INT32_MAX:
        raise DataError(f"Received `{name}={value!r}`; expected an integer <= {INT32_MAX}.")
    return int(value)


def texts_digest(texts, labels) -> str:
    """sha256 hex of texts (each UTF-8, NUL-terminated) then the labels as JSON.

    The digest checkpoints of seqkit 0.1.0 were keyed by: keep it unchanged.
    """
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    h.update(json.dumps(labels, default=str).encode())
    return h.hexdigest()


def file_digest(path: str, *view) -> str:
    """sha256 hex of a file's real path, size and modification time, plus ``view``.

    Cheap (the file is not read) and stable across processes; a file rewritten
    in place gets a new digest through its size or modification time.
    """
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, *view)
    return hashlib.sha256(repr(key).encode()).hexdigest()


def check_encoding(encoding) -> str:
    """``encoding`` if Python knows it as a text encoding, else a DataError saying so."""
    import codecs

    try:
        if not isinstance(encoding, str):
            raise LookupError
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(
            f"Received `encoding={encoding!r}`; expected a text encoding Python knows, "
            "e.g. 'utf-8', 'latin-1' or 'cp1252'."
        ) from None
    return encoding


def _first_bad_byte(path: str, encoding: str):
    """(byte, offset in the file) of the first byte ``encoding`` cannot decode, or None."""
    import codecs
    import gzip

    opener = gzip.open if path.lower().endswith(".gz") else open
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with opener(path, "rb") as f:
        while chunk := f.read(1 << 20):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                return error.object[error.start], offset - pending + error.start
            offset += len(chunk)
    return None


def undecodable(path: str, encoding: str, error: UnicodeDecodeError) -> DataError:
    """The DataError for a file that is not ``encoding`` text: where, and ``encoding=``.

    Example: ``reviews.csv is not UTF-8 (byte 0xe8 at position 41); pass
    encoding='latin-1' (or the file's encoding).``
    """
    import codecs

    try:
        found = _first_bad_byte(path, encoding)
    except (OSError, UnicodeDecodeError):  # pragma: no cover - unreadable again
        found = None
    if found is None:  # (pandas's own position is within its buffer, not the file)
        found = (error.object[error.start], error.start)
    name = codecs.lookup(encoding).name
    name = {"utf-8": "UTF-8"}.get(name, name)
    other = "latin-1" if name == "UTF-8" else "utf-8"
    return DataError(
        f"{path} is not {name} (byte 0x{found[0]:02x} at position {found[1]}); pass "
        f"encoding={other!r} (or the file's encoding)."
    )


def read_csv_file(path: str, encoding: str = "utf-8", **read_csv_kwargs):
    """A CSV/TSV file as a pandas DataFrame in any text encoding, or a DataError that
    names an undecodable byte and suggests ``encoding=``.

    Example:

    >>> read_csv_file("prices.csv", encoding="latin-1").columns  # doctest: +SKIP
    """
    import pandas as pd

    check_encoding(encoding)
    try:
        return pd.read_csv(path, encoding=encoding, **read_csv_kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty.") from None
    except UnicodeDecodeError as error:
        raise undecodable(path, encoding, error) from None
    except pd.errors.ParserError as error:
        raise DataError(f"{path}: could not be read as CSV ({error}).") from None
