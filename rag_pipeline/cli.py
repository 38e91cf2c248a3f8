"""`rag-pipeline`: the pipeline outside the Dagster UI."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# A model hub is optional: never hang on it, and never let Chroma phone home.
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# Commands import what they need inside their function: `rag-pipeline --help` and `models` stay
# fast instead of loading Dagster, torch and pandas first.


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def cmd_init(args) -> int:
    from rag_pipeline.defs.instance import InstanceConfigError, describe_storage
    from rag_pipeline.defs.partitions import sync_registry_partitions
    from rag_pipeline.defs.runner import configure_storage, get_instance

    try:
        home, storage, warning = configure_storage(postgres=args.postgres, sqlite=args.sqlite)
    except InstanceConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Dagster instance: {home}\nstorage: {describe_storage(storage)}")
    changes = sync_registry_partitions(get_instance())
    for name, change in changes.items():
        if change["added"] or change["removed"]:
            print(f"  {name}: +{len(change['added'])} -{len(change['removed'])}")
    return 0


def cmd_ingest(args) -> int:
    from rag_pipeline.ingest.document import ingest_document
    from rag_pipeline.ingest.errors import IngestError

    try:
        summary = ingest_document(args.source, Path(args.out), paper_id=args.paper_id,
                                  chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)
    except (IngestError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_json(summary)
    return 0


def cmd_retrieve(args) -> int:
    from rag_pipeline.config import load_pipeline_config
    from rag_pipeline.index.retrieve import retrieve_from_dir

    config = load_pipeline_config(args.config)
    results = retrieve_from_dir(
        Path(args.dir), args.question, top_k=args.top_k, top_n=args.top_n,
        embedder_config=config.embedder, reranker_config=config.reranker, retrieval_config=config.retrieval,
    )
    if args.json:
        _print_json(results)
    else:
        if results and results[0].get("query_translation"):
            print(f"translated query: {results[0]['query_translation']}")
        for row in results:
            marker = "*" if row.get("kept") else " "
            rerank = row.get("rerank_score")
            lexical, fusion = row.get("lexical_score"), row.get("fusion_score")
            print(f"{marker}{row['rank']:>3} {row['chunk_id']:<24} vector {row['vector_score']:.4f}"
                  + (f" bm25 {lexical:.4f}" if lexical is not None else "")
                  + (f" fused {fusion:.5f}" if fusion is not None else "")
                  + (f" rerank {rerank:.4f}" if rerank is not None else "") + f"  {row['text'][:100]!r}")
    return 0


def cmd_sync(args) -> int:
    from rag_pipeline.defs.partitions import sync_registry_partitions
    from rag_pipeline.defs.runner import get_instance

    _print_json(sync_registry_partitions(get_instance()))
    return 0


def cmd_models(args) -> int:
    from rag_pipeline.generate.registry import load_models

    for spec in load_models():
        where = "offline" if spec.offline else "needs hub/GPU"
        print(f"{spec.name:<24} {spec.backend:<13} {','.join(spec.tasks):<15} {where:<14} {spec.model or ''}")
    return 0


def demo_selection() -> dict:
    """The offline default: the demo corpus with the packaged LLM and baselines, plus the recorded study."""
    from rag_pipeline.datasets import load_papers
    from rag_pipeline.generate.registry import load_models

    papers = load_papers()
    models = [m for m in load_models() if m.offline]
    return {
        "papers": [p.id for p in papers if p.collection == "demo"],
        "models": [m.name for m in models if m.backend != "recorded"],
        "study_papers": [p.id for p in papers if p.collection == "reference_study"],
        "study_models": [m.name for m in models if m.backend == "recorded"],
    }


def cmd_demo(args) -> int:
    selection = demo_selection()
    if args.models:
        selection["models"] = args.models.split(",")
    return run_and_print(selection, judge=not args.no_judge, reingest=args.reingest, jobs=args.jobs)


def cmd_run(args) -> int:
    """Any papers × models in one process: each model is loaded once for all its papers."""
    selection = {"papers": _split(args.papers), "models": _split(args.models),
                 "study_papers": _split(args.recorded_papers), "study_models": _split(args.recorded_models)}
    return run_and_print(selection, judge=not args.no_judge, reingest=args.reingest, jobs=args.jobs)


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {value!r}")
    return int(value)


def _split(value: str | None) -> list[str]:
    return [part for part in (value or "").split(",") if part]


def run_and_print(selection: dict, judge: bool, reingest: bool = False, jobs: int | None = None) -> int:
    import pandas as pd

    from rag_pipeline.artifacts import ArtifactStore
    from rag_pipeline.definitions import defs
    from rag_pipeline.defs.runner import get_instance, run_pipeline
    from rag_pipeline.reporting import build_all, retrieval_table
    from rag_pipeline.settings import state_paths

    instance = get_instance()
    print(f"state: {state_paths().root}\npapers: {', '.join(selection['papers'])}\nmodels: {', '.join(selection['models'])}"
          f"\nrecorded study: {', '.join(selection['study_models'])} on {len(selection['study_papers'])} papers")
    from rag_pipeline.defs import runs

    try:
        with runs.cancel_on_signals(instance):
            summary = run_pipeline(defs, instance, judge=judge, reingest=reingest, jobs=jobs, **selection)
    except runs.Interrupted as interrupt:
        print_interrupted(instance, interrupt, judge)
        return interrupt.exit_code
    paths = state_paths()
    store = ArtifactStore(paths.artifacts)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nRetrieval on the demo corpus (offline embedder):")
        print(retrieval_table(store).to_string(index=False))
        result = build_all(store, paths, inputs=None, record=False)
        print("\nLeaderboard:")
        print(result.markdown)
    print(f"\nreport: {result.report_path}")
    if summary.failed:
        print(f"\n{len(summary.failed)} partition(s) failed:")
        for key, message in summary.failed.items():
            print(f"  {key}: {message}")
    return 1 if summary.failed and not summary.succeeded else 0


STAGES = ("ingest", "generate", "judge", "leaderboard")  # run_pipeline's order


def print_interrupted(instance, interrupt, judge: bool) -> None:
    """What an interrupted `run` finished and what it did not (from this invocation's runs)."""
    from rag_pipeline.defs import runs

    done: dict[str, list[str]] = {}
    stopped = []
    for run in runs.session_runs(instance, runs.SESSION):
        stage = run.tags.get(runs.STAGE_TAG, "?")
        partition = run.tags.get("dagster/partition", "")
        if run.status.value == "SUCCESS":
            done.setdefault(stage, []).append(partition or "done")
        elif run.status.value == "CANCELED":
            stopped.append((stage, partition, run.run_id))
        else:
            done.setdefault(stage, []).append(f"{partition or stage} ({run.status.value.lower()})")
    print(f"\nInterrupted by {interrupt.signal_name}.", file=sys.stderr)
    for stage, partitions in done.items():
        print(f"  finished  {stage}: {', '.join(partitions)}", file=sys.stderr)
    for stage, partition, run_id in stopped:
        print(f"  canceled  {stage}: {partition} (run {run_id[:8]}: marked canceled, its pool slots freed; the "
              "generations and verdicts of its completed batches are cached, a re-run redoes only the rest)",
              file=sys.stderr)
    last = stopped[-1][0] if stopped else next(reversed(done), None)
    stages = [s for s in STAGES if judge or s != "judge"]
    later = stages[stages.index(last) + 1:] if last in stages else stages
    print(f"  not run   {', '.join(later) or 'nothing'}{' (and the rest of ' + last + ')' if last else ''}",
          file=sys.stderr)
    print("Run the same command again to finish: stored results and cached generations are reused.", file=sys.stderr)


def cmd_doctor(args) -> int:
    """Runs, pool slots and leftovers of killed runs; `--fix` cleans up what is safe."""
    from rag_pipeline.defs import runs
    from rag_pipeline.defs.runner import get_instance, instance_home
    from rag_pipeline.settings import state_paths

    instance = get_instance()
    home, root = instance_home(), state_paths().root
    print(f"Dagster instance: {home}\nstate: {root}")
    if args.free:
        return 0 if runs.free_run(instance, args.free, print) else 2
    diagnosis = runs.diagnose(instance, root)
    print(runs.format_diagnosis(diagnosis))
    if not args.fix:
        if diagnosis.problems():
            print("Run `rag-pipeline doctor --fix` to clean up (stale runs, leaked slots, temporary files).")
        return 1 if diagnosis.problems() else 0
    print("Fixing:")
    runs.safe_fixes(instance, diagnosis, lambda line: print(f"  {line}"), home)
    remaining = runs.diagnose(instance, root).problems()
    print("Now: " + ("healthy" if not remaining else "; ".join(remaining)))
    return 1 if remaining else 0


def cmd_explain(args) -> int:
    from rag_pipeline.artifacts import ArtifactRef, ArtifactStore
    from rag_pipeline.defs.runner import get_instance
    from rag_pipeline.defs.versions import materialization_of
    from rag_pipeline.lineage import LineageError, explain_score, format_lineage
    from rag_pipeline.settings import state_paths

    try:
        lineage = explain_score(ArtifactStore(state_paths().artifacts), args.score_id)
    except LineageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    instance = get_instance()
    for step in lineage["steps"]:  # the Dagster run and materialization event that wrote each version
        found = materialization_of(instance, ArtifactRef.from_dict(step))
        step.update(found or {"run_id": None, "materialization": None})
    if args.json:
        _print_json(lineage)
    else:
        print(format_lineage(lineage))
    return 0


def cmd_gc(args) -> int:
    from rag_pipeline.artifacts import ArtifactStore
    from rag_pipeline.defs.runner import get_instance
    from rag_pipeline.defs.versions import referenced_refs
    from rag_pipeline.settings import state_paths

    store = ArtifactStore(state_paths().artifacts)
    # Kept: the current versions, those the latest materializations point to, and all they were built from.
    keep = referenced_refs(get_instance(), store.all_refs())
    result = store.collect_garbage(keep=keep, dry_run=args.dry_run)
    if args.json:
        _print_json(result)
    else:
        for label in result["removed"]:
            print(f"{'would remove' if args.dry_run else 'removed'} {label}")
        verb = "would free" if args.dry_run else "freed"
        print(f"{verb} {result['freed_bytes'] / 1e6:.1f} MB in {len(result['removed'])} stored version(s); "
              f"{result['kept']} version(s) still referenced")
    return 0


def cmd_report(args) -> int:
    from rag_pipeline.artifacts import ArtifactStore
    from rag_pipeline.reporting import build_all
    from rag_pipeline.settings import state_paths

    paths = state_paths()
    result = build_all(ArtifactStore(paths.artifacts), paths, inputs=None, out_path=Path(args.out) if args.out else None,
                       record=False)
    if args.json:
        _print_json({**result.json, "judge_reliability": result.reliability})
    else:
        print(result.report_path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create the state directory and Dagster instance; sync partitions")
    storage = p.add_mutually_exclusive_group()
    storage.add_argument("--postgres", metavar="URL", default=None,
                         help="keep runs and events in PostgreSQL at URL (postgresql://USER@HOST:PORT/DB, no password: "
                              "libpq reads PGPASSWORD or ~/.pgpass); default: $RAG_PIPELINE_POSTGRES_URL when set, "
                              "else sqlite under DAGSTER_HOME")
    storage.add_argument("--sqlite", action="store_true", help="switch the instance back to sqlite under DAGSTER_HOME")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("sync", help="sync the papers/models partitions with the registries")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("ingest", help="PDF or arXiv id → markdown.md, text.md, sections.json, chunks.parquet")
    p.add_argument("source", help="a local PDF path, an arXiv id (1706.03762) or an arxiv.org URL")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--paper-id", default=None, help="slug id (default: derived from the file name / arXiv id)")
    p.add_argument("--chunk-size", type=int, default=800)
    p.add_argument("--chunk-overlap", type=int, default=100)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("retrieve", help="rank the chunks of an `ingest` directory for a question")
    p.add_argument("dir", help="a directory written by `rag-pipeline ingest`")
    p.add_argument("--question", required=True)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--top-n", type=int, default=2)
    p.add_argument("--config", default=None, help="pipeline config (default data/pipeline.yaml)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_retrieve)

    p = sub.add_parser("models", help="list the model registry")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("demo", help="run the offline default end to end and print the results")
    p.add_argument("--models", default=None, help="comma-separated models instead of the offline default set")
    p.add_argument("--no-judge", action="store_true", help="skip the LLM judge")
    p.add_argument("--reingest", action="store_true",
                   help="ingest the papers again even when nothing they read changed (edits are picked up without it)")
    p.add_argument("--jobs", type=_positive_int, default=None,
                   help="papers converted and chunked side by side, one process each (default $RAG_PIPELINE_JOBS, "
                        "else half the cores from 4 cores on, else 1 = one after another); indexing and models stay in one process")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="materialize papers × models (ingest, generate, judge, leaderboard) in one process, "
                          "or through celery workers with RAG_PIPELINE_EXECUTOR=celery")
    p.add_argument("--papers", default="", help="comma-separated paper ids to ingest and generate on")
    p.add_argument("--models", default="", help="comma-separated model names")
    p.add_argument("--recorded-papers", default="", help="papers to load recorded outputs for (no ingestion needed)")
    p.add_argument("--recorded-models", default="", help="recorded-* models")
    p.add_argument("--no-judge", action="store_true", help="skip the LLM judge")
    p.add_argument("--reingest", action="store_true", help="ingest papers again even when nothing they read changed (edits are picked up without it)")
    p.add_argument("--jobs", type=_positive_int, default=None,
                   help="papers converted and chunked side by side, one process each (default $RAG_PIPELINE_JOBS, "
                        "else half the cores from 4 cores on, else 1 = one after another); indexing and models stay in one process")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("doctor", help="list runs, pool slots and what killed runs left; --fix cleans up")
    p.add_argument("--fix", action="store_true",
                   help="fail stale runs and free their slots, free slots of ended runs, remove temporary files")
    p.add_argument("--free", metavar="RUN_ID", default=None,
                   help="force: mark one run (an id prefix will do) failed and free its slots")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("explain", help="walk a score back to its generation, chunks, text and PDF")
    p.add_argument("score_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("gc", help="remove stored versions no materialization references any more; say how much it freed")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gc)

    p = sub.add_parser("report", help="write the HTML report and print its path")
    p.add_argument("--json", action="store_true", help="print the leaderboard as JSON instead")
    p.add_argument("--out", default=None, help="report path (default <state>/reports/report.html)")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rag_pipeline.defs.instance import InstanceConfigError  # no Dagster import: --help stays fast

    try:
        return args.func(args)
    except InstanceConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
