"""Generation throughput: one request at a time (the notebook's loop) vs batched, same prompts.

Greedy decoding, a fixed number of new tokens per prompt (prompts that ask for long answers, capped
by max_new_tokens; the JSON reports whether every output reached the cap), outputs of both modes
asserted identical. Prints one JSON object.

    python benchmarks/generation.py                      # the offline Qwen2.5-Coder-0.5B on CPU
    python benchmarks/generation.py --arch-8b --quant 8bit   # GPU: random Llama-3-8B-shaped model

``--arch-8b`` builds a randomly initialised model from the Llama-3-8B configuration (no weights
needed) to measure the batched code path at 8B scale on a GPU (bf16, or bitsandbytes 8-bit after a
save/reload). Its outputs are meaningless text; only speed and equality are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag_pipeline.generate.backends.transformers_backend import TransformersBackend
from rag_pipeline.generate.packaged_model import PACKAGED_GGUF_NAME, ensure_packaged_model
from rag_pipeline.generate.registry import models_by_name
from rag_pipeline.generate.types import GenerationRequest
from rag_pipeline.settings import state_paths

PROMPTS = [
    "Подробно объясни, как работает механизм внимания в трансформерах.",
    "Перечисли десять методов регуляризации нейронных сетей и кратко опиши каждый.",
    "Расскажи подробно, чем обучение с подкреплением отличается от обучения с учителем.",
    "Опиши по шагам, как устроена система поиска с генерацией ответа (RAG).",
    "Объясни подробно, что такое векторные представления слов и как их обучают.",
    "Напиши развёрнутый план статьи о больших языковых моделях.",
    "Подробно опиши, как оценивать качество машинного перевода.",
    "Перечисли основные этапы обучения большой языковой модели и опиши каждый этап.",
]

# Llama-3-8B's shape (meta-llama/Meta-Llama-3-8B config.json); the vocabulary is the tokenizer's.
LLAMA3_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "rms_norm_eps": 1e-5,
}


def _requests() -> list[GenerationRequest]:
    return [
        GenerationRequest(
            task="answer",
            paper_id="bench",
            item_id=f"bench:{i}",
            messages=[{"role": "user", "content": text}],
        )
        for i, text in enumerate(PROMPTS)
    ]


def _arch_8b_model(tokenizer, quant: str):
    """A random Llama-3-8B-shaped model on the GPU (bf16, or 8-bit via a save/reload)."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

    if not torch.cuda.is_available():
        raise SystemExit("--arch-8b needs a CUDA GPU (about 17 GB of memory in bf16)")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        **LLAMA3_8B,
    )
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    if quant == "bf16":
        return model
    with tempfile.TemporaryDirectory(prefix="arch8b-") as directory:
        model.save_pretrained(directory)
        del model
        torch.cuda.empty_cache()
        return AutoModelForCausalLM.from_pretrained(
            directory, quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map="auto"
        )


def _timed(backend: TransformersBackend, requests) -> tuple[list, float]:
    started = time.perf_counter()
    results = backend.generate(requests, progress=False)
    return results, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=len(PROMPTS))
    parser.add_argument(
        "--arch-8b", action="store_true", help="random Llama-3-8B-shaped model (GPU)"
    )
    parser.add_argument("--quant", choices=["bf16", "8bit"], default="bf16")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    state = state_paths()
    spec = models_by_name()["qwen2.5-coder-0.5b"].replace(
        max_new_tokens=args.max_new_tokens,
        decoding={"do_sample": False},
    )
    directory = ensure_packaged_model(Path(PACKAGED_GGUF_NAME).stem, state)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    load_started = time.perf_counter()
    if args.arch_8b:
        model = _arch_8b_model(tokenizer, args.quant)
        spec = spec.replace(
            name="random-llama3-8b-shape",
            dtype="bfloat16",
            quantization=None if args.quant == "bf16" else "8bit",
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).to(device)
    load_s = time.perf_counter() - load_started

    one_at_a_time = TransformersBackend(
        spec.replace(batch_size=1), model=model, tokenizer=tokenizer
    )
    batched = TransformersBackend(
        spec.replace(batch_size=args.batch_size), model=model, tokenizer=tokenizer
    )
    requests = _requests()
    one_at_a_time.generate(requests[:1], progress=False)  # warm-up (allocations, kernels)

    single_results, single_s = _timed(one_at_a_time, requests)
    batch_results, batch_s = _timed(batched, requests)
    errors = [r.error for r in single_results + batch_results if r.error]
    if errors:
        raise SystemExit(f"generation failed: {errors[0]}")
    single_outputs = [r.output for r in single_results]
    batch_outputs = [r.output for r in batch_results]
    assert batch_outputs == single_outputs, (
        "batched greedy outputs differ from one-at-a-time outputs"
    )
    tokens = sum(r.output_tokens for r in batch_results)
    report = {
        "benchmark": "generation",
        "model": "random Llama-3-8B shape"
        if args.arch_8b
        else "qwen2.5-coder-0.5b (packaged GGUF, float32)",
        "quant": args.quant if args.arch_8b else "none",
        "device": torch.cuda.get_device_name(0)
        if device == "cuda"
        else f"cpu ({os.cpu_count()} cores)",
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "prompts": len(requests),
        "max_new_tokens": args.max_new_tokens,
        "output_tokens_total": tokens,
        "all_outputs_full_length": all(
            r.output_tokens == args.max_new_tokens for r in batch_results
        ),
        "load_s": round(load_s, 2),
        "one_at_a_time": {
            "wall_s": round(single_s, 2),
            "tokens_per_s": round(tokens / single_s, 2),
        },
        "batched": {
            "batch_size": args.batch_size,
            "wall_s": round(batch_s, 2),
            "tokens_per_s": round(tokens / batch_s, 2),
        },
        "speedup": round(single_s / batch_s, 2),
        "outputs_identical": True,
        "sample_output": batch_outputs[0][:120],
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
