"""What a benchmark measured, shown as JSON and, where asked, written to a file."""

from __future__ import annotations

import json


def report(result: dict, path: str | None = None) -> None:
    """Prints ``result`` as JSON (indent 1) and, given ``path``, writes the same JSON there.

    Example:

    >>> report({"tokens_per_s": 1200.0})
    {
     "tokens_per_s": 1200.0
    }
    """
    print(json.dumps(result, indent=1))
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=1)
