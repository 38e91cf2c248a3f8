"""The stage layer (no Dagster): the per-partition work of every asset, callable from anywhere.

- ``ingest``: fetch, convert, clean, chunk, index, retrieve, score retrieval — one paper each.
- ``generation``: summaries and answers for one model × paper, through the cache and model pool.
- ``evaluation``: metric rows, the judge's verdicts per paper, the leaderboard.

A stage reads its inputs from the :class:`~rag_pipeline.artifacts.ArtifactStore`, calls the core
(``ingest/``, ``index/``, ``generate/``, ``evaluate/``), writes its output atomically and returns a
:class:`~rag_pipeline.stages.outcome.StageOutcome`. The Dagster assets in ``rag_pipeline.defs``
are declarations around these functions; names and columns come from ``rag_pipeline.contracts``.
"""
