"""The inputs domain: configuration and registries as observable source assets (see assets.py)."""

import dagster as dg

from rag_pipeline.defs.inputs import assets
from rag_pipeline.defs.inputs.assets import observe_changed_inputs, record_observations  # noqa: F401


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=assets.sources)
