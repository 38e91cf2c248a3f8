"""Generation throughput of the offline default, four ways: transformers and llama.cpp, each one request
at a time (the notebook's loop) and batched, on the same prompts.

The packaged Qwen2.5-Coder-0.5B (GGUF Q4_K_M): llama.cpp runs the file as shipped, transformers its
float32 de-quantized copy. Greedy decoding, prompts that ask for long answers capped by
``--max-new-tokens`` (the JSON says whether every output reached the cap). Each engine runs in a
process of its own, so its peak RSS is its own; within an engine the batched outputs must equal the
one-at-a-time outputs. Prints one JSON object.

    python benchmarks/generation.py                       # both engines
    python benchmarks/generation.py --engines llama-cpp   # one
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag_pipeline.generate.types import GenerationRequest

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
ENGINES = ("transformers", "llama-cpp")
# The targets for the offline default on 2 cores.
TARGET_ONE_AT_A_TIME_TOKENS_PER_S = 30.0
TARGET_BATCHED_SPEEDUP = 2.0
TARGET_PEAK_RSS_GB = 1.5


def _requests() -> list[GenerationRequest]:
    return [
        GenerationRequest(task="answer", paper_id="bench", item_id=f"bench:{i}", messages=[{"role": "user", "content": text}])
        for i, text in enumerate(PROMPTS)
    ]


def _timed(backend, requests) -> tuple[list, float]:
    """One timed ``backend.generate`` call (also used by gpu_check.py)."""
    started = time.perf_counter()
    results = backend.generate(requests, progress=False)
    return results, time.perf_counter() - started


def _peak_rss_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3)  # kB on Linux


def _load(engine: str, spec, state):
    """The engine's backend for ``spec`` and its load time (the packaged file prepared beforehand)."""
    if engine == "llama-cpp":
        from rag_pipeline.generate.backends.llama_cpp_backend import LlamaCppBackend
        from rag_pipeline.generate.packaged_model import ensure_packaged_gguf

        ensure_packaged_gguf(state)  # joined and verified once; not part of the load time
        started = time.perf_counter()
        backend = LlamaCppBackend(spec.replace(backend="llama-cpp"), state)
        return backend, time.perf_counter() - started, backend.threads
    import torch

    from rag_pipeline.generate.backends.transformers_backend import TransformersBackend
    from rag_pipeline.generate.packaged_model import PACKAGED_GGUF_NAME, ensure_packaged_model

    ensure_packaged_model(Path(PACKAGED_GGUF_NAME).stem, state)  # done by --prepare: a second load reads safetensors
    started = time.perf_counter()
    backend = TransformersBackend(spec.replace(backend="transformers", dtype="float32"), state)
    return backend, time.perf_counter() - started, torch.get_num_threads()


def measure(engine: str, max_new_tokens: int, batch_size: int) -> dict:
    """One engine, in this process: load, warm up, one at a time, batched."""
    from rag_pipeline.generate.registry import models_by_name
    from rag_pipeline.settings import state_paths

    state = state_paths()
    spec = models_by_name()["qwen2.5-coder-0.5b"].replace(max_new_tokens=max_new_tokens, decoding={"do_sample": False})
    backend, load_s, threads = _load(engine, spec, state)
    requests = _requests()
    backend.spec = backend.spec.replace(batch_size=1)
    backend.generate(requests[:1], progress=False)  # warm-up (allocations, caches)
    single, single_s = _timed(backend, requests)
    backend.spec = backend.spec.replace(batch_size=batch_size)
    batched, batched_s = _timed(backend, requests)
    backend.close()
    errors = [r.error for r in single + batched if r.error]
    if errors:
        raise SystemExit(f"{engine}: generation failed: {errors[0]}")
    tokens = sum(r.output_tokens for r in single)
    return {
        "engine": engine,
        "threads": threads,
        "load_s": round(load_s, 2),
        "output_tokens_total": tokens,
        "all_outputs_full_length": all(r.output_tokens == max_new_tokens for r in single),
        "one_at_a_time": {"wall_s": round(single_s, 2), "tokens_per_s": round(tokens / single_s, 2)},
        "batched": {
            "batch_size": batch_size,
            "wall_s": round(batched_s, 2),
            "tokens_per_s": round(sum(r.output_tokens for r in batched) / batched_s, 2),
        },
        "speedup": round(single_s / batched_s, 2),
        "outputs_identical": [r.output for r in batched] == [r.output for r in single],
        "outputs": [r.output for r in single],
        "peak_rss_gb": _peak_rss_gb(),
    }


def _common_prefix_words(a: str, b: str) -> int:
    count = 0
    for x, y in zip(a.split(), b.split()):
        if x != y:
            break
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=len(PROMPTS))
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)  # one engine, JSON on stdout
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)  # convert the model only
    args = parser.parse_args()
    if args.prepare:
        from rag_pipeline.generate.packaged_model import PACKAGED_GGUF_NAME, ensure_packaged_model

        ensure_packaged_model(Path(PACKAGED_GGUF_NAME).stem, progress=False)
        return
    if args.child:
        print(json.dumps(measure(args.child, args.max_new_tokens, args.batch_size), ensure_ascii=False))
        return

    runs = {}
    if "transformers" in args.engines:  # the one-off de-quantization (~5 GB) must not count as the engine's peak
        subprocess.run([sys.executable, __file__, "--prepare"], check=True)
    for engine in args.engines:
        command = [sys.executable, __file__, "--child", engine, "--max-new-tokens", str(args.max_new_tokens),
                   "--batch-size", str(args.batch_size)]
        finished = subprocess.run(command, check=False, capture_output=True, text=True, env=os.environ)
        if finished.returncode != 0:
            raise SystemExit(f"{engine} failed:\n{finished.stderr[-3000:]}")
        runs[engine] = json.loads(finished.stdout.strip().splitlines()[-1])
    report = {
        "benchmark": "generation",
        "model": "qwen2.5-coder-0.5b (packaged GGUF Q4_K_M; transformers: de-quantized float32)",
        "cpu": f"{os.cpu_count()} cores, {platform.machine()}",
        "python": platform.python_version(),
        "prompts": len(PROMPTS),
        "max_new_tokens": args.max_new_tokens,
        "engines": {engine: {k: v for k, v in run.items() if k != "outputs"} for engine, run in runs.items()},
    }
    if "llama-cpp" in runs:
        llama = runs["llama-cpp"]
        report["targets"] = {
            "one_at_a_time_tokens_per_s": [llama["one_at_a_time"]["tokens_per_s"], f">= {TARGET_ONE_AT_A_TIME_TOKENS_PER_S}"],
            "batched_vs_one_at_a_time": [round(llama["batched"]["tokens_per_s"] / llama["one_at_a_time"]["tokens_per_s"], 2),
                                         f">= {TARGET_BATCHED_SPEEDUP}"],
            "peak_rss_gb": [llama["peak_rss_gb"], f"< {TARGET_PEAK_RSS_GB}"],
            "met": llama["one_at_a_time"]["tokens_per_s"] >= TARGET_ONE_AT_A_TIME_TOKENS_PER_S
            and llama["batched"]["tokens_per_s"] >= TARGET_BATCHED_SPEEDUP * llama["one_at_a_time"]["tokens_per_s"]
            and llama["peak_rss_gb"] < TARGET_PEAK_RSS_GB
            and llama["outputs_identical"],
        }
    if len(runs) == 2:
        pairs = list(zip(runs["transformers"]["outputs"], runs["llama-cpp"]["outputs"]))
        report["across_engines"] = {
            "identical_outputs": sum(a == b for a, b in pairs),
            "common_prefix_words": [_common_prefix_words(a, b) for a, b in pairs],
            "llama_cpp_vs_transformers_one_at_a_time": round(
                runs["llama-cpp"]["one_at_a_time"]["tokens_per_s"] / runs["transformers"]["one_at_a_time"]["tokens_per_s"], 2),
        }
    report["sample_output"] = {engine: run["outputs"][0][:160] for engine, run in runs.items()}
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
