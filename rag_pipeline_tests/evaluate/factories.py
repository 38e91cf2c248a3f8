"""Builders of small generations frames (the ``generations`` schema) for the evaluation tests."""

from __future__ import annotations

import pandas as pd

from rag_pipeline.hashing import content_hash

# Two collections of the benchmark's papers (disjoint items) with partly different models; p4 is in
# no collection. llm-bad exists only in alpha, llm-mid only in beta and on the unregistered paper.
COLLECTION_OF = {"p1": "alpha", "p2": "alpha", "p3": "beta"}
COLLECTION_MODELS = {"alpha": {"llm-good", "llm-bad", "lead-3", "top-chunk"},
                     "beta": {"llm-good", "llm-mid"}, "unregistered": {"llm-good", "llm-mid"}}


def generation(task: str, item_id: str, model: str, output: str, *, paper_id: str | None = None,
               latency_s: float = 1.0, error: str = "") -> dict:
    """One generations row with every schema column filled."""
    return {
        "generation_id": content_hash({"task": task, "item_id": item_id, "model": model, "output": output,
                                       "error": error}),
        "task": task, "paper_id": paper_id or item_id.split(":")[0], "item_id": item_id, "model": model,
        "backend": "test", "model_revision": "r1", "prompt_version": "v1", "prompt_hash": "p" + model,
        "prompt": "", "decoding": "{}", "context_ids": "[]", "output": output, "thinking": "",
        "latency_s": latency_s, "input_tokens": 0, "output_tokens": 0, "cache_hit": False, "error": error,
        "created_at": "",
    }


def generations_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)
