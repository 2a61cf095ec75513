"""ONNX / LiteRT export of the forecasting pipeline (written by :mod:`tasks.portable`).

One part, ``model``: the whole forward pass, as the SavedModel's
``serving_default``: raw windows of the pipeline's columns in (prices, not
scaled), quantile forecasts in the target's units out. The transforms and
scalers are constants of the graph, so the app feeds the numbers as they are.
"""

from __future__ import annotations

import json

from tasks.arguments import PipelineError
from tasks.forecasting_model import Forecaster
from tasks.portable import Part, Portable, Tensor

_USAGE = """\
Feed the last {lookback} rows of the columns {columns} (in that order, target
first, in their own units, oldest row first) as `window`, float32 of shape
(batch, {lookback}, {n}). `quantiles[i, h, q]` is the quantile
`quantiles[q]` (in `forecast.json`) of the target `h + 1` steps after the
window; `forecast` is the point forecast (quantile {point}).
"""


def parts(pipeline, fmt: str, **kwargs) -> Portable:
    if kwargs:
        raise PipelineError(
            f"Unknown argument(s) {sorted(kwargs)} for exporting a forecasting pipeline to "
            f"{fmt}; it takes none."
        )
    prep = pipeline.preprocessor
    model = pipeline._bare_model()
    columns = list(prep.columns)
    quantiles = [float(q) for q in pipeline.quantiles]

    def forward(window):
        # Built in the trace, so its scalers are graph constants (ONNX would take
        # eager constants as extra inputs).
        out = Forecaster(prep, model, pipeline.point_index)._serve(window)
        return out["forecast"], out["quantiles"]

    horizon = pipeline.horizon
    part = Part(
        name="model",
        function=forward,
        inputs=[
            Tensor(
                "window",
                "float32",
                ("batch", prep.lookback, len(columns)),
                f"the last {prep.lookback} rows of {columns}, oldest first, own units",
            )
        ],
        outputs=[
            Tensor("forecast", "float32", ("batch", horizon), "point forecast, target's units"),
            Tensor(
                "quantiles",
                "float32",
                ("batch", horizon, len(quantiles)),
                f"forecast quantiles {quantiles}, target's units",
            ),
        ],
    )
    info = {
        "columns": columns,
        "lookback": prep.lookback,
        "horizon": horizon,
        "quantiles": quantiles,
        "point_quantile": quantiles[pipeline.point_index],
    }
    return Portable(
        parts=[part],
        files={"forecast.json": json.dumps(info, indent=1)},
        usage=_USAGE.format(
            lookback=prep.lookback,
            columns=columns,
            n=len(columns),
            point=quantiles[pipeline.point_index],
        ),
    )
