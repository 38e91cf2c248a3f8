"""Generation assets, partitioned by model × paper: summaries of abstract + conclusion, answers from retrievals.

Both run in the `gpu` pool (limit 1 in the instance config) and share one loaded model per process:
all papers of one model in a run use a single model load, and the previous model is freed first.
A backfill launched from the UI runs as a single run (BackfillPolicy.single_run), so the same
holds for it.
"""


import dagster as dg
import pandas as pd

from rag_pipeline.datasets import questions_for_paper
from rag_pipeline.defs.automation import on_input_change
from rag_pipeline.defs.ingest_assets import frame_preview, frame_version, paper_text, retrievals
from rag_pipeline.defs.partitions import BY_PAPER, PAPER_MODEL, materialize_each, paper_and_model
from rag_pipeline.defs.resources import StateResource

GROUP = "generation"
GENERATION_COLUMNS_FOR_VERSION = ["generation_id", "output", "error"]


class BackendPool:
    """Keeps at most one model loaded in this process; switching models frees the previous one."""

    def __init__(self):
        self._key = None
        self._backend = None
        self.loads = 0  # how many times a model was loaded in this process (one per model per run)

    def get(self, spec, state_paths):
        from rag_pipeline.generate.backends import load_backend

        key = (spec.name, str(spec.identity()))
        if self._key != key:
            self.release()
            self._backend = load_backend(spec, state_paths)
            self._key = key
            self.loads += 1
        return self._backend

    def release(self):
        if self._backend is not None:
            self._backend.close()
        self._key, self._backend = None, None


BACKENDS = BackendPool()


class LazyBackend:
    """Loads the model only when a request misses the generation cache."""

    def __init__(self, spec, state_paths):
        self.spec, self.state_paths = spec, state_paths

    def generate(self, requests, progress: bool = True):
        return BACKENDS.get(self.spec, self.state_paths).generate(requests, progress=progress)

    @property
    def resolved_revision(self):
        """The loaded weights' revision (hub commit or file hash), read after `generate`."""
        return getattr(BACKENDS.get(self.spec, self.state_paths), "resolved_revision", None)

    def close(self):
        """The pool owns the model; it is freed when the next model is loaded."""


def model_spec(model: str):
    from rag_pipeline.generate.registry import models_by_name

    specs = models_by_name()
    if model not in specs:
        raise dg.Failure(f"model {model!r} is not in data/models.yaml (removed from the registry?)")
    return specs[model]


def materialize_generations(context: dg.AssetExecutionContext, state: StateResource, task: str, asset: str, build_requests) -> dg.MaterializeResult:
    """Shared body of `summaries` and `answers`, for every partition of the run (one model load each)."""
    return materialize_each(
        context, lambda key: generate_partition(context, state, task, asset, build_requests, *paper_and_model(key))
    )


def generate_partition(context, state: StateResource, task: str, asset: str, build_requests, paper: str, model: str) -> tuple[dict, dg.DataVersion]:
    """Build one partition's requests, generate through the cache, store the rows."""
    from rag_pipeline.generate.runner import run_generation
    from rag_pipeline.generate.types import rows_to_frame

    spec = model_spec(model)
    store = state.store()
    if task not in spec.tasks:
        frame = rows_to_frame([])
        store.write_frame(asset, model, paper, frame=frame)
        note = f"model {model!r} does not do the {task} task (tasks: {', '.join(spec.tasks)})"
        return {"rows": 0, "note": note}, dg.DataVersion("not-applicable")
    requests = build_requests(spec, paper, store)
    rows = run_generation(spec, requests, cache=state.generation_cache(), backend=LazyBackend(spec, state.paths()))
    out_of_memory = [row.error for row in rows if row.error.startswith("CUDA out of memory")]
    if out_of_memory:
        # Fail the partition (keeping what was stored before); the rows that did generate are cached.
        raise dg.Failure(f"model {model!r} × paper {paper!r}: {out_of_memory[0]}")
    frame = rows_to_frame(rows)
    store.write_frame(asset, model, paper, frame=frame)
    failed = frame[frame["error"] != ""] if not frame.empty else frame
    for _, row in failed.iterrows():
        context.log.warning(f"{model} × {paper} item {row['item_id']}: {row['error']}")
    ok = frame[frame["error"] == ""] if not frame.empty else frame
    return (
        {
            "rows": len(frame),
            "failed": len(failed),
            "cache_hits": int(frame["cache_hit"].sum()) if not frame.empty else 0,
            "mean_latency_s": round(float(ok["latency_s"].dropna().mean()), 3) if not ok.empty and ok["latency_s"].notna().any() else 0.0,
            "output_tokens": int(ok["output_tokens"].fillna(0).sum()) if not ok.empty else 0,
            "model": model,
            "backend": spec.backend,
            "preview": frame_preview(frame, ["item_id", "output", "latency_s", "cache_hit", "error"], width=120),
        },
        frame_version(frame, GENERATION_COLUMNS_FOR_VERSION),
    )


def _summary_requests(spec, paper: str, store):
    from rag_pipeline.generate.types import summary_requests

    try:
        sections = store.read_json("paper_text", paper)
    except FileNotFoundError:
        if spec.backend != "recorded":
            raise dg.Failure(f"paper {paper!r}: paper_text is not materialized; materialize the ingest assets first")
        sections = {"abstract": "", "conclusion": ""}  # recorded outputs need no source text
    return summary_requests(spec, paper, sections.get("abstract", ""), sections.get("conclusion", ""))


def _answer_requests(spec, paper: str, store):
    from rag_pipeline.generate.types import answer_requests

    try:
        frame = store.read_frame("retrievals", paper)
    except FileNotFoundError:
        if spec.backend != "recorded":
            raise dg.Failure(f"paper {paper!r}: retrievals are not materialized; materialize the ingest assets first")
        frame = None  # recorded outputs came from the notebook's own retrieval
    return answer_requests(spec, paper, questions_for_paper(paper), frame)


@dg.asset(
    partitions_def=PAPER_MODEL,
    deps=[dg.AssetDep(paper_text, partition_mapping=BY_PAPER)],
    group_name=GROUP,
    kinds={"pytorch"},
    pool="gpu",
    backfill_policy=dg.BackfillPolicy.single_run(),
    code_version="1",
    automation_condition=on_input_change(),
)
def summaries(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """One summary of abstract + conclusion per paper and model, with prompt hash, params, latency and tokens."""
    return materialize_generations(context, state, "summary", "summaries", _summary_requests)


@dg.asset(
    partitions_def=PAPER_MODEL,
    deps=[dg.AssetDep(retrievals, partition_mapping=BY_PAPER)],
    group_name=GROUP,
    kinds={"pytorch"},
    pool="gpu",
    backfill_policy=dg.BackfillPolicy.single_run(),
    code_version="1",
    automation_condition=on_input_change(),
)
def answers(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """An answer to each question of the paper from its kept (reranked) chunks."""
    return materialize_generations(context, state, "answer", "answers", _answer_requests)


def read_generations(store, model: str, paper: str) -> pd.DataFrame:
    """Both tasks' generation rows of one partition (missing assets read as empty)."""
    frames = []
    for asset in ("summaries", "answers"):
        if store.exists(asset, model, paper):
            frames.append(store.read_frame(asset, model, paper))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


generation_assets = [summaries, answers]
