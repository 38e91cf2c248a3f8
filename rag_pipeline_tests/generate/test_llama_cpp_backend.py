"""The llama.cpp backend with the packaged Qwen2.5-Coder-0.5B GGUF: the offline default."""

from __future__ import annotations

import re
import sys

import pytest

from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.generate.backends import load_backend
from rag_pipeline.generate.backends.llama_cpp_backend import GGUFChatTemplate, LlamaCppBackend
from rag_pipeline.generate.packaged_model import PACKAGED_GGUF_NAME
from rag_pipeline.generate.prompts import answer_messages
from rag_pipeline.generate.registry import ModelRegistryError, ModelSpec, models_by_name
from rag_pipeline.generate.runner import cache_key
from rag_pipeline.generate.types import GenerationRequest
from rag_pipeline.settings import state_paths

CHUNK = "The Transformer is based solely on attention mechanisms, dispensing with recurrence entirely."
QUESTIONS = [
    "Какой механизм лежит в основе архитектуры Transformer?",
    "Что такое рекуррентная нейронная сеть? Ответь одним предложением.",
    "Назови три метода регуляризации нейронных сетей.",
    "Объясни, что делает механизм внимания, подробно и по шагам, как для студента первого курса.",
]


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    return state_paths(tmp_path_factory.mktemp("llama-state"))


@pytest.fixture(scope="module")
def spec():
    return models_by_name()["qwen2.5-coder-0.5b"].replace(max_new_tokens=24)


@pytest.fixture(scope="module")
def backend(spec, state):
    loaded = load_backend(spec, state)  # joins the six parts and verifies the sha256 once
    yield loaded
    loaded.close()


def _requests(spec, questions=QUESTIONS, **extra):
    return [
        GenerationRequest(
            task="answer", paper_id="demo", item_id=f"demo:q{i}", messages=answer_messages(spec, q, [CHUNK]), **extra
        )
        for i, q in enumerate(questions)
    ]


def _with(loaded, **changes):
    """The same loaded model under another registry entry (batch size, decoding, stops)."""
    original = loaded.spec
    loaded.spec = original.replace(**changes)
    loaded.end_tokens, loaded.text_stops = loaded._terminators()
    return original


def test_the_offline_default_runs_on_llama_cpp_and_answers_in_russian(backend, spec, state):
    assert isinstance(backend, LlamaCppBackend) and spec.backend == "llama-cpp"
    assert (state.models / PACKAGED_GGUF_NAME).is_file()
    answer = backend.generate(_requests(spec)[:1], progress=False)[0]
    assert answer.error == "" and 0 < answer.output_tokens <= 24
    assert len(re.findall("[а-яё]{3,}", answer.output.lower())) >= 3, answer.output
    assert "вниман" in answer.output.lower(), answer.output  # "attention", from the English chunk
    # The prompt is the GGUF's own ChatML template, not the plain rendering.
    assert answer.prompt.startswith("<|im_start|>system\n") and answer.prompt.endswith("<|im_start|>assistant\n")
    assert answer.latency_s > 0 and answer.input_tokens > 20


def test_batched_greedy_outputs_equal_one_at_a_time(backend, spec):
    requests = _requests(spec)
    original = _with(backend, batch_size=1)
    try:
        one_at_a_time = backend.generate(requests, progress=False)
        backend.spec = original.replace(batch_size=4)
        batched = backend.generate(requests, progress=False)
        backend.spec = original.replace(batch_size=3)  # a batch of 3 and a batch of 1, other neighbours
        mixed = backend.generate(requests, progress=False)
    finally:
        _with(backend, **original.to_dict())
    assert [r.error for r in one_at_a_time + batched] == [""] * 8
    assert [r.output for r in batched] == [r.output for r in one_at_a_time]
    assert [r.output_tokens for r in batched] == [r.output_tokens for r in one_at_a_time]
    assert [r.output for r in mixed] == [r.output for r in one_at_a_time]
    assert len({r.output for r in batched}) == 4  # the prompts really differ


def test_seeded_sampling_repeats_and_does_not_depend_on_the_batch(backend, spec):
    requests = _requests(spec)
    sampling = {"do_sample": True, "temperature": 1.2, "top_p": 0.95, "top_k": 50, "seed": 7}
    original = _with(backend, decoding=sampling, batch_size=4)
    try:
        first = [r.output for r in backend.generate(requests, progress=False)]
        backend.spec = original.replace(decoding=sampling, batch_size=1)
        alone = [r.output for r in backend.generate(requests, progress=False)]
        backend.spec = original.replace(decoding={**sampling, "seed": 8}, batch_size=4)
        other_seed = [r.output for r in backend.generate(requests, progress=False)]
        backend.spec = original.replace(decoding={"do_sample": False}, batch_size=4)
        greedy = [r.output for r in backend.generate(requests, progress=False)]
    finally:
        _with(backend, **original.to_dict())
    assert first == alone
    assert other_seed != first
    assert greedy != first  # sampling at temperature 1.2 really sampled


def test_token_log_probabilities_give_the_judge_label_probabilities(backend, spec):
    messages = [
        {"role": "system", "content": 'Answer with JSON only: {"winner": "A"} or {"winner": "B"}.'},
        {"role": "user", "content": "Which answer is correct? 2+2=4. A: 4. B: 5."},
    ]
    request = GenerationRequest(task="judge", paper_id="p", item_id="j", messages=messages, want_logprobs=True, max_new_tokens=12)
    plain = GenerationRequest(task="judge", paper_id="p", item_id="k", messages=messages, max_new_tokens=12)
    with_probabilities, without = backend.generate([request, plain], progress=False)
    assert with_probabilities.error == "" and with_probabilities.output_tokens <= 12
    probabilities = with_probabilities.label_probabilities
    assert probabilities is not None and set(probabilities) == {"A", "B"}, with_probabilities.output
    assert abs(sum(probabilities.values()) - 1) < 1e-9
    chosen = re.search(r'"([AB])"', with_probabilities.output)
    assert chosen, with_probabilities.output
    assert probabilities[chosen.group(1)] > 0.5  # greedy: the label it wrote is the likelier one
    assert without.label_probabilities is None and without.output == with_probabilities.output


def test_stop_strings_end_the_output(backend, spec):
    requests = _requests(spec, QUESTIONS[3:])
    free = backend.generate(requests, progress=False)[0].output
    words = free.split()
    assert len(words) >= 4, free
    stop = words[2]
    original = _with(backend, stop_strings=[stop])
    try:
        stopped = backend.generate(requests, progress=False)[0]
    finally:
        _with(backend, **original.to_dict())
    assert stop not in stopped.output and free.startswith(stopped.output.rstrip())
    assert stopped.output_tokens < 24


def test_a_prompt_longer_than_the_context_fails_alone(backend, spec):
    requests = _requests(spec, ["коротко?", " ".join(["слово"] * 400)])
    original = _with(backend, context_length=256, batch_size=2)
    backend.max_context = 256
    try:
        short, long = backend.generate(requests, progress=False)
    finally:
        _with(backend, **original.to_dict())
        backend.max_context = backend.model.n_ctx_train()
    assert short.error == "" and short.output
    assert "exceeds the context of 256 tokens" in long.error and long.output == ""


def test_the_chat_template_continues_a_prefill():
    template = GGUFChatTemplate(
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    messages = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "Краткое резюме:"}]
    assert template.apply_chat_template(messages, continue_final_message=True) == "<|user|>Q<|end|><|assistant|>Краткое резюме:"
    assert template.apply_chat_template(messages[:1], add_generation_prompt=True) == "<|user|>Q<|end|><|assistant|>"
    with pytest.raises(Exception, match="bad role"):
        GGUFChatTemplate("{{ raise_exception('bad role') }}").apply_chat_template(messages)


def test_the_cache_key_covers_engine_version_and_file(spec, monkeypatch):
    from rag_pipeline.generate.backends import llama_cpp_backend

    request = _requests(spec)[0]
    key = cache_key(spec, request)
    monkeypatch.setattr(llama_cpp_backend, "package_version", lambda name: "9.9.9")
    assert cache_key(spec, request) != key  # another llama.cpp build
    monkeypatch.undo()
    assert cache_key(spec, request) == key
    assert cache_key(spec.replace(revision="sha256:" + "0" * 64), request) != key  # another file
    assert cache_key(spec.replace(batch_size=1, context_length=512), request) == key  # speed and limits only


def test_a_local_gguf_is_keyed_by_its_content(tmp_path, spec):
    first, second = tmp_path / "a.gguf", tmp_path / "b.gguf"
    first.write_bytes(b"GGUF one")
    second.write_bytes(b"GGUF two")
    request = _requests(spec)[0]
    keys = {cache_key(spec.replace(model=str(path), revision=None), request) for path in (first, second)}
    assert len(keys) == 2


def test_without_the_binding_the_error_names_the_package(spec, state, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(ModelUnavailableError, match="llama-cpp-python"):
        LlamaCppBackend(spec, state)


def test_the_registry_refuses_a_hub_id_for_llama_cpp():
    with pytest.raises(ModelRegistryError, match="loads a GGUF file"):
        ModelSpec.from_dict({"name": "x", "backend": "llama-cpp", "model": "Qwen/Qwen3-8B"})
    with pytest.raises(ModelRegistryError, match="quantization applies to the transformers backend only"):
        ModelSpec.from_dict({"name": "x", "backend": "llama-cpp", "model": "a.gguf", "quantization": "8bit"})


def test_a_missing_file_is_a_clear_error(tmp_path, spec):
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        LlamaCppBackend(spec.replace(model=str(tmp_path / "absent.gguf"), revision=None))


def test_a_build_whose_batches_round_differently_keys_the_cache_by_batch_size(spec, monkeypatch):
    from rag_pipeline.generate.backends import llama_cpp_backend

    request = _requests(spec)[0]
    monkeypatch.setattr(llama_cpp_backend, "batch_invariant", lambda: False)
    assert cache_key(spec.replace(batch_size=1), request) != cache_key(spec.replace(batch_size=8), request)
    monkeypatch.setattr(llama_cpp_backend, "batch_invariant", lambda: True)
    assert cache_key(spec.replace(batch_size=1), request) == cache_key(spec.replace(batch_size=8), request)


def test_the_project_build_is_batch_invariant():
    """The Makefile builds llama.cpp without llamafile's sgemm (see LLAMA_CMAKE_ARGS)."""
    from rag_pipeline.generate.backends.llama_cpp_backend import batch_invariant

    assert batch_invariant()


def test_a_local_gguf_that_is_not_the_pinned_file_is_refused(tmp_path, spec):
    other = tmp_path / "model.gguf"
    other.write_bytes(b"not the pinned weights")
    with pytest.raises(ModelUnavailableError, match="the registry pins sha256:1d9614"):
        LlamaCppBackend(spec.replace(model=str(other)))


def test_label_probabilities_are_read_at_the_label_token_not_at_a_bare_quote():
    from rag_pipeline.generate.backends.base import label_probabilities

    # {"winner": "A"} as a tokenizer splits it: the ' "' before the label is no label (it was once
    # taken for one, since an empty string is `in` any string).
    tokens = [
        {"token": '{"', "logprob": -0.01},
        {"token": ' "', "logprob": -0.1, "top_logprobs": [{"token": ' "', "logprob": -0.1}, {"token": "B", "logprob": -2.5}]},
        {"token": "A", "logprob": -0.2, "top_logprobs": [
            {"token": "A", "logprob": -0.2}, {"token": "B", "logprob": -1.9}, {"token": " A", "logprob": -3.0}]},
    ]
    probabilities = label_probabilities(tokens)
    assert probabilities["A"] > 0.8 and abs(sum(probabilities.values()) - 1) < 1e-12
    assert label_probabilities(tokens[:2]) is None
