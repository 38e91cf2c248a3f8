"""Fixtures for generation tests: a tiny tokenizer and tiny randomly initialised causal LMs, built
offline inside the test session (no hub), saved to disk and loaded back by local path."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_pipeline.generate.registry import spec_from_entry

CORPUS = [
    "Трансформер использует механизм внимания вместо рекуррентных слоёв.",
    "Модель обучали оптимизатором Adam с параметрами beta1 = 0.9 и beta2 = 0.98.",
    "Ты — помощник по научным статьям. Сформулируй краткое и точное резюме по тексту ниже.",
    "Вопрос: какой оптимизатор использовался? Контекст: фрагменты статьи. Ответ на русском языке.",
    "The Transformer is based solely on attention mechanisms, dispensing with recurrence.",
    "We used the Adam optimizer and label smoothing; the encoder has six identical layers.",
    "Abstract: we propose a method. Conclusion: the method works well on benchmarks.",
    "Retrieval-augmented generation combines a retriever with a sequence-to-sequence generator.",
]
SPECIAL_TOKENS = ["<pad>", "<|im_start|>", "<|im_end|>", "<|eot_id|>"]

# ChatML-like template; continue_final_message is handled by transformers (it trims the rendering).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}"
    "{%- if enable_thinking is defined and not enable_thinking -%}{{ '<think>\n\n</think>\n\n' }}{%- endif -%}"
    "{%- endif -%}"
)
# Like YandexGPT's: a template that has no system role.
NO_SYSTEM_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{{ raise_exception('System role not supported') }}{%- endif -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)


def build_tokenizer(chat_template: str = CHAT_TEMPLATE):
    """A byte-level BPE trained on a few Russian and English sentences, as a fast HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(CORPUS, trainer=trainer)
    core.add_tokens(["<think>", "</think>"])  # normal (decoded) tokens, as in Qwen3
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<pad>",
        chat_template=chat_template,
    )


def build_tiny_model(tokenizer, architecture: str = "llama", seed: int = 0):
    """A 2-layer random causal LM over ``tokenizer``'s vocabulary, float32, deterministic."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config_class, model_class = {
        "llama": (LlamaConfig, LlamaForCausalLM),
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    }[architecture]
    config = config_class(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.3,  # large weights: well-separated logits, no greedy near-ties
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return model_class(config).to(torch.float32).eval()


def save_tiny_model(
    directory: Path, architecture: str = "llama", chat_template: str = CHAT_TEMPLATE
) -> Path:
    tokenizer = build_tokenizer(chat_template)
    model = build_tiny_model(tokenizer, architecture)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), "qwen2")


@pytest.fixture(scope="session")
def tiny_no_system_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-nosystem"), "llama", NO_SYSTEM_TEMPLATE)


def make_spec(**overrides):
    """A validated transformers ModelSpec with test-friendly defaults."""
    entry = {
        "name": "tiny",
        "backend": "transformers",
        "model": "/nonexistent",
        "dtype": "float32",
        "decoding": {"do_sample": False},
        "max_new_tokens": 12,
        "batch_size": 4,
    }
    entry.update(overrides)
    return spec_from_entry(entry, "test")
