"""The Dagster layer: declarations only, grouped by domain.

- ``ingest/``, ``generation/``, ``evaluation/``: each domain's assets, checks, jobs and schedules,
  returned by its ``definitions()``; ``rag_pipeline.definitions`` merges them.
- ``inputs/``: configuration and registries as observable source assets (versioned inputs).
- ``partitions.py``: the dynamic ``papers`` / ``models`` partitions and per-run partition wiring.
- ``provenance.py``: per-partition materializations of single-run backfills.
- ``versions.py``: stored artifact versions ↔ the materializations that wrote them.
- ``automation.py``: automation conditions and the registry sensor.
- ``resources.py``: resources derived from the configuration sections of ``rag_pipeline.config``.
- ``metadata.py``: stage outcomes as materialization results.
- ``runner.py``: materialize selections in-process (the CLI and tests); it receives the Definitions.

The work itself is in ``rag_pipeline.stages``; names and columns come from ``rag_pipeline.contracts``.
"""

import warnings

# We use these beta APIs on purpose (single-run backfills, the paper dimension mapping, Dagster's
# own automation evaluation); their notices say nothing to a user, so they are silenced by exact
# message. Any other warning, and every warning about the user's data, still shows.
_OUR_BETA_APIS = (
    r"Parameter `backfill_policy` of function `asset`",
    r"Class `MultiToSingleDimensionPartitionMapping`",
    r"Parameter `include_sources` of function `AssetSelection.all`",
    r"Parameter `pool` of function `asset`",
    # partitioned asset checks: a check's result per paper / model × paper (defs/checks.py)
    r"Specifying a partitions_def on an AssetCheckSpec",
)
for _message in _OUR_BETA_APIS:
    warnings.filterwarnings("ignore", message=_message)
