"""Ready pipelines for sequence tasks (sentiment, text generation, translation,
forecasting), built on `seqkit.layers`. The pipelines land in their own issues;
this package holds them. `seqkit` never imports `tasks`.
"""
