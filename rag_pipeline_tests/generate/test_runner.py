"""run_generation: caching, lazy model loading, failure rows, request builders and the row table."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from rag_pipeline import atomic
from rag_pipeline.cache import ContentCache
from rag_pipeline.contracts import GENERATION_COLUMNS
from rag_pipeline.datasets import Question
from rag_pipeline.generate import runner
from rag_pipeline.generate.registry import models_by_name
from rag_pipeline.generate.requests import answer_requests, summary_requests
from rag_pipeline.generate.runner import cache_key, run_generation
from rag_pipeline.generate.types import GenerationRequest, GenerationRow, rows_to_frame
from rag_pipeline_tests.generate.conftest import make_spec

QUESTIONS = [
    Question("demo-paper:q01", "demo-paper", "Какой оптимизатор использовался?", "Adam"),
    Question("demo-paper:q02", "demo-paper", "Сколько слоёв в энкодере?", "6"),
    Question("demo-paper:q03", "demo-paper", "Вопрос без найденного контекста?", "нет"),
]


def _retrievals() -> pd.DataFrame:
    rows = [
        # q01: three candidates, two kept; final order differs from vector order.
        ("demo-paper:q01", "demo-paper:4", 1, 2, True, "Second best: beta2 = 0.98."),
        ("demo-paper:q01", "demo-paper:7", 2, 1, True, "Best: we used the Adam optimizer."),
        ("demo-paper:q01", "demo-paper:9", 3, 3, False, "Not kept: unrelated."),
        ("demo-paper:q02", "demo-paper:2", 1, 1, True, "The encoder has N = 6 identical layers."),
        ("demo-paper:q03", "demo-paper:5", 1, 1, False, "Retrieved but dropped by the reranker."),
    ]
    frame = pd.DataFrame(
        rows, columns=["question_id", "chunk_id", "vector_rank", "final_rank", "kept", "text"]
    )
    frame["paper_id"] = "demo-paper"
    return frame


@pytest.fixture()
def cache(tmp_path):
    return ContentCache(tmp_path / "cache")


def test_answer_requests_use_kept_chunks_in_final_rank_order():
    spec = make_spec()
    requests = answer_requests(spec, "demo-paper", QUESTIONS, _retrievals())
    assert [r.item_id for r in requests] == [q.question_id for q in QUESTIONS]
    first = requests[0]
    assert first.context_ids == ["demo-paper:7", "demo-paper:4"]
    assert first.context["chunks"] == [
        "Best: we used the Adam optimizer.",
        "Second best: beta2 = 0.98.",
    ]
    assert "Best: we used the Adam optimizer.\n\nSecond best" in first.messages[-1]["content"]
    assert first.error == "" and requests[1].context_ids == ["demo-paper:2"]
    assert requests[2].error == "no retrieved context for question 'demo-paper:q03'"
    assert all(r.error for r in answer_requests(spec, "demo-paper", QUESTIONS, None))
    with pytest.raises(ValueError, match="belongs to paper 'demo-paper', not 'other'"):
        answer_requests(spec, "other", QUESTIONS, _retrievals())
    with pytest.raises(ValueError, match=r"lacks columns \['kept'\]"):
        answer_requests(spec, "demo-paper", QUESTIONS, _retrievals().drop(columns=["kept"]))


def test_models_without_a_task_get_no_requests():
    specs = models_by_name()
    assert answer_requests(specs["lead-3"], "demo-paper", QUESTIONS, _retrievals()) == []
    assert summary_requests(specs["top-chunk"], "demo-paper", "abstract", "conclusion") == []


def test_second_run_is_all_cache_hits_without_loading_the_model(tiny_llama_dir, cache, monkeypatch):
    spec = make_spec(model=str(tiny_llama_dir))
    requests = answer_requests(spec, "demo-paper", QUESTIONS[:2], _retrievals()) + summary_requests(
        spec, "demo-paper", "We propose a method.", "It works."
    )
    first = run_generation(spec, requests, cache=cache, progress=False)
    assert [r.cache_hit for r in first] == [False, False, False]
    assert all(not r.error and r.output for r in first)
    assert len(cache) == 3

    def no_loading(*args, **kwargs):
        raise AssertionError("the model must not be loaded when every item is cached")

    monkeypatch.setattr(runner, "load_backend", no_loading)
    second = run_generation(spec, requests, cache=cache, progress=False)
    assert [r.cache_hit for r in second] == [True, True, True]
    for before, after in zip(first, second):
        assert after.output == before.output
        assert after.latency_s == before.latency_s  # the originally measured latency
        assert after.generation_id == before.generation_id
        assert after.created_at == before.created_at
        assert after.prompt == before.prompt and after.prompt.startswith("<|im_start|>")
    # Output-determining changes miss the cache; speed-only changes hit it.
    assert cache_key(spec.replace(batch_size=1), requests[0]) == cache_key(spec, requests[0])
    assert cache_key(spec.replace(max_new_tokens=5), requests[0]) != cache_key(spec, requests[0])


def test_failures_are_rows_and_are_not_cached(cache, monkeypatch):
    specs = models_by_name()
    top_chunk = specs["top-chunk"]
    # A request the builder accepted but the backend cannot serve (no chunks): a row with the reason.
    odd = GenerationRequest(
        task="answer", paper_id="p", item_id="p:q1", messages=[{"role": "user", "content": "?"}]
    )
    failed = run_generation(top_chunk, [odd], cache=cache, progress=False)
    assert failed[0].error == "no retrieved chunk for 'p:q1'" and failed[0].output == ""
    assert len(cache) == 0  # retried next time

    # Requests failing at build time never reach a backend.
    monkeypatch.setattr(runner, "load_backend", lambda *a, **k: pytest.fail("no backend needed"))
    empty = summary_requests(specs["qwen2.5-coder-0.5b"], "blank-paper", "", "  ")
    rows = run_generation(specs["qwen2.5-coder-0.5b"], empty, cache=cache, progress=False)
    assert rows[0].error == "no abstract or conclusion found in paper 'blank-paper'"
    assert rows[0].item_id == "blank-paper" and rows[0].task == "summary" and rows[0].generation_id
    assert len(cache) == 0


def test_rows_frame_has_the_contract_columns_and_no_nan(tmp_path, cache):
    specs = models_by_name()
    lead = specs["lead-3"]
    requests = summary_requests(
        lead, "demo-paper", "First. Second sentence here. Third one. Fourth.", "Fifth."
    )
    requests += summary_requests(lead, "blank-paper", "", "")
    rows = run_generation(lead, requests, cache=cache, progress=False)
    assert rows[0].output == "First. Second sentence here. Third one."
    frame = rows_to_frame(rows)
    assert tuple(frame.columns) == GENERATION_COLUMNS
    for column in (
        "generation_id",
        "task",
        "paper_id",
        "item_id",
        "model",
        "prompt_hash",
        "decoding",
        "context_ids",
    ):
        assert column in frame.columns
    assert json.loads(frame.loc[0, "decoding"]) == {"method": "lead", "sentences": 3}
    assert json.loads(frame.loc[0, "context_ids"]) == []
    path = atomic.write_parquet(tmp_path / "summaries.parquet", frame)
    back = pd.read_parquet(path)
    assert str(back["latency_s"].dtype) == "Float64" and str(back["output_tokens"].dtype) == "Int64"
    assert back.loc[1, "error"] and back["latency_s"].isna().tolist() == [False, True]
    # Missing values are nulls (<NA>), never float NaN.
    assert not any(isinstance(v, float) and math.isnan(v) for v in back["latency_s"].tolist())
    assert tuple(rows_to_frame([]).columns) == GENERATION_COLUMNS


def test_new_weights_behind_the_same_local_path_miss_the_cache(tiny_llama_dir, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, copy)
    spec = make_spec(model=str(copy))
    request = summary_requests(spec, "demo-paper", "We propose a method.", "It works.")[0]
    before = cache_key(spec, request)
    assert cache_key(make_spec(model=str(copy)), request) == before  # same files, same key
    weights = next(copy.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)  # other weights, same path
    assert cache_key(spec, request) != before


def test_the_generation_row_is_the_catalogued_schema():
    # contracts.GENERATION_COLUMNS owns the `generations` schema; the row type must follow it.
    assert tuple(GenerationRow.__dataclass_fields__) == GENERATION_COLUMNS
