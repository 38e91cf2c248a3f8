"""Retrieval strategies side by side on the demo corpus's questions; prints one JSON object.

Every strategy runs on the same chunks (the pipeline's path: pdf_to_markdown + process_markdown +
chunk_text with data/pipeline.yaml's chunking) in the same Chroma collection (the configured
embedder, no reranker unless pipeline.yaml names one), and is scored by the pipeline's own
retrieval metrics (gold evidence, final_rank order): hit@1, hit@2, hit@10, MRR, nDCG@10 and wall
seconds per query (median of --repeat timed passes after a warm-up pass).

    .venv/bin/python benchmarks/retrieval.py [--repeat 3] [--papers ID ...] [--no-progress]
        [--translate-with MODEL | --no-translation] [--translation-state DIR] [--cold-translation]

Strategies: ``dense`` (the embedder alone), ``bm25`` with and without Snowball stemming, and
``hybrid`` reciprocal rank fusion over a grid of rrf_k and lexical weights, plus the strategy
data/pipeline.yaml configures (``configured``). Query translation (``retrieval.translate_with``):
every strategy of ``dense``, ``bm25``, ``hybrid`` (rrf_k 60 and 10) × ``translate_for`` lexical /
dense / both (``<strategy>+tr-<for>``) and hybrid lexical weights 1.5 / 2 / 3 at rrf_k 10 and 30 with
the translation on the lexical side, with the questions translated once by the model (default
qwen2.5-coder-0.5b) through the generation cache of ``--translation-state`` (default
``.rag_state``). Their seconds per query are retrieval only; the translation's own cost is reported
separately under ``translation``: cold (the generation latency measured when each translation was
made, recorded in the cache, plus the model load when this run loaded it) and cached (a second
pass, every translation a cache hit). ``--cold-translation`` uses an empty temporary cache, so the
cold figures are measured in this run. Only the JSON goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

log = logging.getLogger("benchmarks.retrieval")
KS = (1, 2, 5, 10)
REPORTED = ("hit@1", "hit@2", "hit@10", "mrr", "ndcg@10")


def strategy_grid(base, translate_with: str | None = None) -> dict:
    """Name → RetrievalConfig: the strategies compared (all with the configured top_k / top_n)."""
    off = {"translate_with": None}
    grid = {
        "dense": {"strategy": "dense", **off},
        "bm25": {"strategy": "bm25", **off},
        "bm25-nostem": {"strategy": "bm25", "stemming": False, **off},
    }
    for rrf_k in (10, 30, 60):
        for weight in (0.5, 1.0, 2.0):
            grid[f"hybrid-k{rrf_k}-w{weight:g}"] = {"strategy": "hybrid", "rrf_k": rrf_k, "lexical_weight": weight, **off}
    if translate_with:
        bases = {"dense": {"strategy": "dense"}, "bm25": {"strategy": "bm25"},
                 "hybrid-k60": {"strategy": "hybrid", "rrf_k": 60}, "hybrid-k10": {"strategy": "hybrid", "rrf_k": 10}}
        for name, update in bases.items():
            for used_for in ("lexical", "dense", "both"):
                if (update["strategy"], used_for) in (("dense", "lexical"), ("bm25", "dense")):
                    continue  # the translation would not be used: the same ranking as without it
                if (update["strategy"], used_for) in (("dense", "both"), ("bm25", "both")):
                    continue  # one side only: the same ranking as translate_for dense / lexical
                grid[f"{name}+tr-{used_for}"] = {
                    **update, "lexical_weight": 1.0, "translate_with": translate_with, "translate_for": used_for,
                }
        for rrf_k in (10, 30):  # the lexical side's weight, where the translation helps most
            for weight in (1.5, 2.0, 3.0):
                grid[f"hybrid-k{rrf_k}-w{weight:g}+tr-lexical"] = {
                    "strategy": "hybrid", "rrf_k": rrf_k, "lexical_weight": weight,
                    "translate_with": translate_with, "translate_for": "lexical",
                }
    configs = {name: base.model_copy(update=update) for name, update in grid.items()}
    configs["configured"] = base
    return configs


@contextlib.contextmanager
def stdout_to_stderr():
    saved = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = saved


def demo_chunks(paper_ids: list[str] | None, chunking) -> dict:
    """paper_id → chunks frame, made by the pipeline's ingest path from the papers' local PDFs."""
    from rag_pipeline.datasets import read_papers
    from rag_pipeline.ingest.chunking import chunk_text, chunks_to_frame
    from rag_pipeline.ingest.markdown import pdf_to_markdown
    from rag_pipeline.ingest.text import process_markdown

    specs = [s for s in read_papers().entries if (s.id in paper_ids if paper_ids else s.collection == "demo")]
    missing = [s.id for s in specs if s.pdf_path is None or not s.pdf_path.is_file()]
    if missing:
        raise SystemExit(f"papers without a local PDF: {missing}")
    chunks = {}
    for spec in specs:
        text = process_markdown(pdf_to_markdown(spec.pdf_path, paper_id=spec.id)).text
        chunks[spec.id] = chunks_to_frame(chunk_text(spec.id, text, chunking.chunk_size, chunking.chunk_overlap))
    return chunks


def run_strategy(index, reranker, chunks_by_paper, questions, retrieval, repeat, progress, translations=None) -> tuple:
    """(retrievals frame of the last pass, median seconds per query). ``translations``: paper_id →
    {question_id: translation}, used where ``retrieval`` says (their cost is not in the timing)."""
    import pandas as pd

    from rag_pipeline.index.retrieve import retrieve_many

    n_questions = sum(len(qs) for qs in questions.values())
    seconds = []
    for attempt in range(repeat + 1):
        started = time.perf_counter()
        frames = [
            retrieve_many(index, reranker, paper_id, qs, retrieval.top_k, retrieval.top_n, progress=False,
                          retrieval=retrieval, chunks=chunks_by_paper[paper_id],
                          translations=(translations or {}).get(paper_id) if retrieval.uses_translation else None)
            for paper_id, qs in questions.items()
            if qs
        ]
        if attempt:  # the first pass warms caches (stemmer, embedder threads)
            seconds.append((time.perf_counter() - started) / n_questions)
    return pd.concat(frames, ignore_index=True), statistics.median(seconds)


def translate_all(chunks_by_paper, questions, base, model: str, state_dir: str, cold: bool) -> tuple[dict, dict]:
    """(paper_id → {question_id: translation}, cost report): every question translated by ``model``
    through the generation cache, then once more all from the cache."""
    from rag_pipeline.cache import ContentCache
    from rag_pipeline.generate.pool import ModelPool
    from rag_pipeline.index.translate import translate_questions, translation_spec
    from rag_pipeline.settings import state_paths

    retrieval = base.model_copy(update={"translate_with": model, "translate_for": "both", "strategy": "hybrid"})
    spec = translation_spec(retrieval)
    with contextlib.ExitStack() as stack:
        if cold:
            state = state_paths(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-translate-")))
            # the converted packaged model is reused, only the cache is new
            state_models = state_paths(state_dir).models
            state.models.parent.mkdir(parents=True, exist_ok=True)
            if state_models.exists() and not state.models.exists():
                state.models.symlink_to(state_models)
        else:
            state = state_paths(state_dir)
        cache = ContentCache(state.generation_cache)
        pool = ModelPool()
        passes = []
        for _ in range(2):
            started = time.perf_counter()
            results = {paper_id: translate_questions(qs, chunks_by_paper[paper_id], retrieval, cache=cache, pool=pool,
                                                     state=state, spec=spec)
                       for paper_id, qs in questions.items()}
            passes.append((time.perf_counter() - started, results))
        pool.release()
    (first_wall, first), (cached_wall, cached) = passes
    n_translated = sum(len(r.queries) for r in first.values())
    generated = sum(r.generated for r in first.values())
    # a cache hit keeps the latency measured when it was generated
    latencies = [seconds for r in first.values() for seconds in r.latency_s.values()]
    report = {
        "model": model,
        "max_new_tokens": retrieval.translate_max_new_tokens,
        "translated": n_translated,
        "not_translated": {qid: why for r in first.values() for qid, why in r.errors.items()},
        "paper_languages": {paper_id: r.paper_language for paper_id, r in first.items()},
        "generated_this_run": generated,
        "first_pass_wall_s": round(first_wall, 2),
        "cold_seconds_per_query": round(first_wall / n_translated, 3) if generated == n_translated and n_translated else None,
        # batched generation (batch_size of the registry entry): each item's share of its batch's wall time
        "cold_generation_seconds_per_query": round(statistics.mean(latencies), 3) if latencies else None,
        "cold_generation_seconds_max": round(max(latencies), 3) if latencies else None,
        "cached_seconds_per_query": round(cached_wall / max(1, n_translated), 4),
        "cached_hits": sum(r.cache_hits for r in cached.values()),
        "examples": {qid: text for r in list(first.values())[:1] for qid, text in list(r.queries.items())[:3]},
    }
    return {paper_id: r.queries for paper_id, r in cached.items()}, report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--papers", nargs="+", metavar="ID", help="registry ids with a local PDF (default: the demo corpus)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--translate-with", default="qwen2.5-coder-0.5b", metavar="MODEL",
                        help="registry model that translates the questions (default: the packaged offline LLM)")
    parser.add_argument("--no-translation", action="store_true", help="leave out the strategies with translation")
    parser.add_argument("--translation-state", default=".rag_state", metavar="DIR",
                        help="state directory whose generation cache keeps the translations")
    parser.add_argument("--cold-translation", action="store_true",
                        help="translate with an empty cache, so the cold cost is measured in this run")
    args = parser.parse_args(argv)
    translate_with = None if args.no_translation else args.translate_with
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

    import pandas as pd

    from rag_pipeline.config import ChromaConfig, load_pipeline_config
    from rag_pipeline.datasets import questions_for_paper
    from rag_pipeline.evaluate.retrieval_metrics import retrieval_metrics, summarise_retrieval_metrics
    from rag_pipeline.index.embedders import load_embedder
    from rag_pipeline.index.rerankers import load_reranker
    from rag_pipeline.index.vector_store import PaperIndex, make_chroma_client
    from rag_pipeline.model_source import package_version

    started = time.perf_counter()
    with stdout_to_stderr():
        config = load_pipeline_config()
        chunks_by_paper = demo_chunks(args.papers, config.chunking)
        questions = {paper_id: questions_for_paper(paper_id) for paper_id in chunks_by_paper}
        all_questions = [q for qs in questions.values() for q in qs]
        chunks = pd.concat(list(chunks_by_paper.values()), ignore_index=True)
        embedder = load_embedder(config.embedder)
        reranker = load_reranker(config.reranker)
        translations, translation_report = None, None
        if translate_with:
            translations, translation_report = translate_all(
                chunks_by_paper, questions, config.retrieval, translate_with, args.translation_state, args.cold_translation
            )
            log.info("translation: %s", {k: v for k, v in translation_report.items() if k != "not_translated"})
        table = {}
        with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as root:
            client = make_chroma_client(ChromaConfig(mode="persistent", path=root))
            index = PaperIndex(client, embedder, collection_prefix="bench")
            for paper_id, frame in chunks_by_paper.items():
                index.upsert_paper(paper_id, frame, progress=False)
            for name, retrieval in strategy_grid(config.retrieval, translate_with).items():
                if retrieval.uses_translation and translations is None:
                    log.info("%-22s skipped: configured with translation, run without it", name)
                    continue
                retrievals, per_query = run_strategy(
                    index, reranker, chunks_by_paper, questions, retrieval, args.repeat, not args.no_progress,
                    translations,
                )
                per_question = retrieval_metrics(retrievals, chunks, all_questions, ks=KS)
                overall = summarise_retrieval_metrics(per_question).set_index("scope").loc["overall"]
                table[name] = {
                    **{metric: round(float(overall[metric]), 4) for metric in REPORTED},
                    "seconds_per_query": round(per_query, 4),
                    "n_scored": int(overall["n_scored"]),
                    "config": {k: v for k, v in retrieval.as_dict().items() if k not in ("top_k", "top_n")},
                }
                log.info("%-24s %s", name, {k: table[name][k] for k in (*REPORTED, "seconds_per_query")})
            with contextlib.suppress(Exception):
                client.clear_system_cache()
    best = max((n for n in table if n != "configured"), key=lambda n: (table[n]["hit@2"], table[n]["mrr"]))
    report = {
        "benchmark": "retrieval strategies on the same chunks, Russian questions with gold evidence",
        "papers": sorted(chunks_by_paper),
        "questions": len(all_questions),
        "chunks": len(chunks),
        "top_k": config.retrieval.top_k,
        "top_n": config.retrieval.top_n,
        "embedder": embedder.name,
        "reranker": None if reranker is None else reranker.name,
        "statistic": f"metrics over all questions; seconds per query: median of {args.repeat} passes after a warm-up"
        " (retrieval only: the translation's cost is under 'translation')",
        "strategies": table,
        "best_by_hit@2_then_mrr": best,
        "translation": translation_report,
        "environment": {
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
            "bm25s": package_version("bm25s"),
            "nltk": package_version("nltk"),
        },
        "benchmark_wall_s": round(time.perf_counter() - started, 2),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False))
    return report


if __name__ == "__main__":
    main()
