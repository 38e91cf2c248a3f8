"""The transformers backend with tiny randomly initialised models loaded by local path."""

from __future__ import annotations

import pytest
import torch

from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.generate.backends import load_backend
from rag_pipeline.generate.backends.base import split_thinking
from rag_pipeline.generate.backends.transformers_backend import TransformersBackend
from rag_pipeline.generate.types import GenerationRequest
from rag_pipeline_tests.generate.conftest import make_spec

PROMPTS = [
    "Что такое внимание?",
    "Какой оптимизатор использовался при обучении модели и с какими параметрами beta1 и beta2?",
    "x",
    "Трансформер использует механизм внимания вместо рекуррентных слоёв. Почему это быстрее?",
    "Abstract",
    "Retrieval-augmented generation combines a retriever with a generator. What is the retriever?",
    "Модель обучали оптимизатором Adam",
    "Вопрос: какой оптимизатор использовался? Контекст: фрагменты статьи.",
]


def _requests(prompts=PROMPTS, task="answer"):
    return [
        GenerationRequest(
            task=task, paper_id="p", item_id=f"p:q{i}", messages=[{"role": "user", "content": text}]
        )
        for i, text in enumerate(prompts)
    ]


@pytest.mark.parametrize("model_dir", ["tiny_llama_dir", "tiny_qwen2_dir"])
def test_batched_greedy_equals_one_at_a_time_in_request_order(model_dir, request):
    directory = request.getfixturevalue(model_dir)
    batched = TransformersBackend(make_spec(model=str(directory), batch_size=3))
    single = TransformersBackend(make_spec(model=str(directory), batch_size=1))
    # Mixed tasks and lengths: batches are grouped by task and sorted by length, results reordered.
    requests = _requests(PROMPTS[:5], "answer") + _requests(PROMPTS[5:], "summary")
    got = batched.generate(requests, progress=False)
    expected = single.generate(requests, progress=False)
    assert [r.error for r in got] == [""] * len(requests)
    assert [r.output for r in got] == [r.output for r in expected]
    assert [r.output_tokens for r in got] == [r.output_tokens for r in expected]
    assert [r.input_tokens for r in got] == [r.input_tokens for r in expected]
    assert len({r.output for r in got}) > 1  # a degenerate model would make the comparison vacuous
    # Request order: each result matches the request generated alone.
    for index in (0, 4, 7):
        alone = single.generate([requests[index]], progress=False)[0]
        assert got[index].output == alone.output
    assert all(r.latency_s is not None and r.latency_s > 0 for r in got)
    assert all(r.prompt.startswith("<|im_start|>user\n") for r in got)


def test_stop_tokens_end_the_answer(tiny_llama_dir):
    free = TransformersBackend(make_spec(model=str(tiny_llama_dir), max_new_tokens=12))
    request = _requests(PROMPTS[:1])
    prompt_ids = free.tokenizer(free.render(request[0]), add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        generated = free.model.generate(
            input_ids=torch.tensor([prompt_ids]),
            max_new_tokens=12,
            do_sample=False,
            pad_token_id=free.tokenizer.pad_token_id,
            eos_token_id=free.eos_token_ids,
        )[0, len(prompt_ids) :].tolist()
    # The first token that first appears at position >= 2 becomes an extra end-of-turn token.
    position = next(i for i, token in enumerate(generated) if i >= 2 and token not in generated[:i])
    stop_token = free.tokenizer.convert_ids_to_tokens(generated[position])

    stopped = TransformersBackend(
        make_spec(model=str(tiny_llama_dir), max_new_tokens=12, stop_strings=[stop_token])
    )
    assert free.tokenizer.convert_tokens_to_ids(stop_token) in stopped.eos_token_ids
    result = stopped.generate(request, progress=False)[0]
    assert result.output_tokens == position + 1
    expected_text = free.tokenizer.decode(generated[:position], skip_special_tokens=True).strip()
    assert result.output == expected_text


def test_eot_id_is_an_extra_eos_token_and_text_stops_cut_the_output(tiny_llama_dir):
    backend = TransformersBackend(
        make_spec(model=str(tiny_llama_dir), stop_strings=["<|eot_id|>", "Ответ:"])
    )
    eot = backend.tokenizer.convert_tokens_to_ids("<|eot_id|>")
    assert eot in backend.eos_token_ids and backend.tokenizer.eos_token_id in backend.eos_token_ids
    assert backend.text_stops == ["Ответ:"]  # not one token: matched on text, then cut
    result = backend.generate(_requests(PROMPTS[:2]), progress=False)
    assert all("Ответ:" not in r.output for r in result)


def test_hub_id_without_hub_fails_naming_the_model():
    spec = make_spec(name="t-lite-instruct-0.1", model="t-bank-ai/T-lite-instruct-0.1")
    with pytest.raises(ModelUnavailableError) as excinfo:
        load_backend(spec)
    message = str(excinfo.value)
    assert "'t-lite-instruct-0.1'" in message and "t-bank-ai/T-lite-instruct-0.1" in message
    assert "local directory" in message  # says how to point at a local copy


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_bitsandbytes_quantization_on_cpu_fails_clearly(tiny_llama_dir):
    spec = make_spec(name="yandexgpt-5-lite-8b", model=str(tiny_llama_dir), quantization="8bit")
    with pytest.raises(
        ModelUnavailableError, match=r"'yandexgpt-5-lite-8b'.*needs a CUDA GPU.*quantization: null"
    ):
        load_backend(spec)


def test_missing_local_path_and_unknown_packaged_file_fail_clearly(tmp_path):
    with pytest.raises(ModelUnavailableError, match="local path .* does not exist"):
        load_backend(make_spec(model=str(tmp_path / "absent")))
    with pytest.raises(ModelUnavailableError, match="no packaged model 'other.gguf'"):
        load_backend(make_spec(model="packaged-gguf:other.gguf"))


def test_cuda_out_of_memory_fails_only_its_batch(tiny_llama_dir, monkeypatch):
    backend = TransformersBackend(make_spec(model=str(tiny_llama_dir), batch_size=2))
    real_generate = backend.model.generate
    calls = []

    # Failure injection: CUDA OOM cannot happen on this CPU machine, so the longest batch raises it.
    def generate_or_oom(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(backend.model, "generate", generate_or_oom)
    requests = _requests(PROMPTS[:4])
    results = backend.generate(requests, progress=False)
    # Longest-first: the first batch holds the two longest prompts (indices 1 and 3).
    failed = {i for i, r in enumerate(results) if r.error}
    assert failed == {1, 3}
    assert all(
        "CUDA out of memory" in results[i].error and "batch_size=2" in results[i].error
        for i in failed
    )
    assert all(results[i].output and not results[i].error for i in (0, 2))
    assert len(calls) == 2


def test_close_releases_the_model(tiny_llama_dir):
    backend = TransformersBackend(make_spec(model=str(tiny_llama_dir)))
    backend.close()
    assert backend.model is None and backend.tokenizer is None


@pytest.mark.parametrize(
    ("raw", "answer", "thinking"),
    [
        ("<think>считаю шаги</think>\n\nОтвет: Adam", "Ответ: Adam", "считаю шаги"),
        ("<think>\n\n</think>\n\nAdam", "Adam", ""),
        ("рассуждение без открытия</think>Adam", "Adam", "рассуждение без открытия"),
        ("<think>не успел закончить", "", "не успел закончить"),
        ("просто ответ", "просто ответ", ""),
    ],
)
def test_think_blocks_are_split_from_the_answer(raw, answer, thinking):
    assert split_thinking(raw) == (answer, thinking)


def test_spec_changes_do_not_need_a_new_model_object(tiny_llama_dir):
    # A ready model/tokenizer can be handed in (benchmarks do): no loading from spec.model.
    loaded = TransformersBackend(make_spec(model=str(tiny_llama_dir)))
    reused = TransformersBackend(
        loaded.spec.replace(model="never-loaded/hub-id", max_new_tokens=3),
        model=loaded.model,
        tokenizer=loaded.tokenizer,
    )
    result = reused.generate(_requests(PROMPTS[:1]), progress=False)[0]
    assert result.output_tokens <= 3 and not result.error


def test_a_request_can_ask_for_fewer_new_tokens_than_the_model_allows(tiny_llama_dir):
    backend = TransformersBackend(make_spec(model=str(tiny_llama_dir), max_new_tokens=12, stop_strings=[]))
    requests = _requests(PROMPTS[:2])
    short = [GenerationRequest(**{**vars(r), "max_new_tokens": 2}) for r in requests]
    long_results = backend.generate(requests, progress=False)
    short_results = backend.generate(short, progress=False)
    assert all(r.output_tokens <= 2 for r in short_results)
    assert any(r.output_tokens > 2 for r in long_results)  # the tiny model does not stop by itself this early
    greedy_prefix = [r.output[:3] for r in long_results]
    assert all(s.output[:3] == p[: len(s.output[:3])] for s, p in zip(short_results, greedy_prefix))
    too_many = [GenerationRequest(**{**vars(r), "max_new_tokens": 500}) for r in requests]
    assert all(r.output_tokens <= 12 for r in backend.generate(too_many, progress=False))  # never above the spec
