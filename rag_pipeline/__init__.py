"""rag_pipeline: benchmark Retrieval-Augmented Generation over scientific papers with several LLMs.

The core packages (`ingest`, `index`, `generate`, `evaluate`) are plain Python and import no
Dagster; `defs` wires them into software-defined assets.
"""

__version__ = "0.1.0"
