"""Prompt templates per family, rendering through real chat templates, prompt hashes."""

from __future__ import annotations

import pytest

from rag_pipeline.generate.prompts import (
    answer_messages,
    plain_render,
    prompt_hash,
    render_prompt,
    summary_messages,
)
from rag_pipeline.generate.registry import models_by_name
from rag_pipeline_tests.generate.conftest import NO_SYSTEM_TEMPLATE, build_tokenizer

ABSTRACT = "We propose the Transformer, based solely on attention."
CONCLUSION = "The Transformer sets a new state of the art in translation."
CHUNKS = ["First chunk: Adam with beta2 = 0.98.", "Second chunk: label smoothing 0.1."]


@pytest.fixture(scope="module")
def specs():
    return models_by_name()


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_tlite_summary_has_system_role_and_continues_the_prefill(specs, tokenizer):
    spec = specs["t-lite-instruct-0.1"]
    messages = summary_messages(spec, ABSTRACT, CONCLUSION)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[0]["content"].startswith("Ты — помощник по научным статьям.")
    assert messages[1]["content"] == f"Abstract:\n{ABSTRACT}\n\nConclusion:\n{CONCLUSION}"
    rendered = render_prompt(spec, messages, tokenizer)
    # The answer continues "Краткое резюме:" inside the same assistant turn: no end-of-turn after it.
    assert rendered.endswith("Краткое резюме:")
    assert not rendered.endswith("<|im_start|>assistant\n")


def test_tlite_answer_puts_context_in_a_second_system_turn_without_prefill(specs):
    messages = answer_messages(specs["t-lite-instruct-0.1"], "Какой оптимизатор?", CHUNKS)
    assert [m["role"] for m in messages] == ["system", "user", "system"]
    assert messages[1]["content"] == "Вопрос:\nКакой оптимизатор?"
    assert (
        messages[2]["content"] == "Контекст:\n" + CHUNKS[0] + "\n\n" + CHUNKS[1]
    )  # top-2, rank order


def test_yandexgpt_has_no_system_role_and_renders_with_a_template_that_forbids_it(specs):
    spec = specs["yandexgpt-5-lite-8b"]
    no_system = build_tokenizer(NO_SYSTEM_TEMPLATE)
    for messages in (
        summary_messages(spec, ABSTRACT, CONCLUSION),
        answer_messages(spec, "Вопрос?", CHUNKS),
    ):
        assert {m["role"] for m in messages} == {"user"}
        assert "Отвечай строго на русском языке" in messages[0]["content"]
        rendered = render_prompt(spec, messages, no_system)
        assert rendered.endswith("<|im_start|>assistant\n")
    # The same messages with a system role would have been refused by this template.
    tlite_messages = answer_messages(specs["t-lite-instruct-0.1"], "Вопрос?", CHUNKS)
    with pytest.raises(Exception, match="System role not supported"):
        render_prompt(specs["t-lite-instruct-0.1"], tlite_messages, no_system)


def test_qwen3_disables_thinking_in_the_chat_template(specs, tokenizer):
    spec = specs["qwen3-8b"]
    messages = answer_messages(spec, "Вопрос?", CHUNKS)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]  # as the notebook
    rendered = render_prompt(spec, messages, tokenizer)
    assert rendered.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    # Without enable_thinking=False the template leaves thinking on.
    default = specs["qwen2.5-coder-0.5b"]
    assert "<think>" not in render_prompt(
        default, answer_messages(default, "Вопрос?", CHUNKS), tokenizer
    )


def test_default_family_is_russian_and_puts_the_request_last(specs):
    spec = specs["qwen2.5-coder-0.5b"]
    summary = summary_messages(spec, ABSTRACT, CONCLUSION)
    assert [m["role"] for m in summary] == ["system", "user"]
    assert summary[1]["content"].index(CONCLUSION) < summary[1]["content"].index("на русском языке")
    answer = answer_messages(spec, "Какой оптимизатор?", CHUNKS)
    assert (
        CHUNKS[0] in answer[1]["content"] and "Вопрос: Какой оптимизатор?" in answer[1]["content"]
    )


def test_plain_rendering_without_tokenizer_is_stable_and_hashes_identify_content(specs):
    spec = specs["qwen2.5-coder-0.5b"]
    messages = answer_messages(spec, "Вопрос?", CHUNKS)
    assert (
        render_prompt(spec, messages)
        == plain_render(messages)
        == render_prompt(spec, messages, None)
    )
    assert plain_render(messages).endswith("<|assistant|>\n")
    assert prompt_hash(messages) == prompt_hash(answer_messages(spec, "Вопрос?", CHUNKS))
    assert prompt_hash(messages) != prompt_hash(answer_messages(spec, "Другой вопрос?", CHUNKS))
