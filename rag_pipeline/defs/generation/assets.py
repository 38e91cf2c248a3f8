"""Generation assets, partitioned by model × paper: declarations around rag_pipeline.stages.generation.

Both run in the `gpu` pool (limit 1 in the instance config) and share the process's model pool:
all papers of one model in a run use a single model load, and the previous model is freed first.
A backfill launched from the UI runs as a single run (BackfillPolicy.single_run), so the same
holds for it.
"""

import os

import dagster as dg

from rag_pipeline import contracts as c
from rag_pipeline.defs.automation import on_input_change
from rag_pipeline.defs.executors import placement
from rag_pipeline.defs.inputs.assets import input_deps
from rag_pipeline.defs.partitions import BY_PAPER, PAPER_MODEL, materialize_each, model_and_paper
from rag_pipeline.defs.resources import StateResource
from rag_pipeline.generate.pool import MODEL_POOL
from rag_pipeline.stages.generation import generate_partition

MODEL_POOL_LOG = "model pool:"


def generation_asset(asset: c.StageAsset, upstream: c.StageAsset):
    return dg.asset(
        name=asset.name,
        partitions_def=PAPER_MODEL,
        deps=[dg.AssetDep(upstream.name, partition_mapping=BY_PAPER), *input_deps(asset)],
        group_name=asset.group,
        kinds={"pytorch"},
        **placement(pool="gpu"),  # a celery worker of the `gpu` queue: one process, its model kept
        backfill_policy=dg.BackfillPolicy.single_run(),
        output_required=False,  # a backfill reports one materialization per partition (materialize_each)
        code_version="1",
        automation_condition=on_input_change(),
    )


def generate_run(context: dg.AssetExecutionContext, state: StateResource, task: str):
    """Every partition of the run, one model load per model."""
    store, cache, paths = state.store(), state.generation_cache(), state.paths()
    loads = MODEL_POOL.loads
    yield from materialize_each(
        context, lambda key: generate_partition(task, *model_and_paper(key), store, cache, MODEL_POOL, paths)
    )
    # Which process holds the model, and whether this step loaded it or found it loaded: under
    # celery a `gpu` worker's process serves many steps (rag_pipeline.defs.executors).
    context.log.info(f"{MODEL_POOL_LOG} process {os.getpid()}, {MODEL_POOL.loads - loads} load(s) in this step, "
                     f"{MODEL_POOL.loads} since the process started")


@generation_asset(c.SUMMARIES, c.PAPER_TEXT)
def summaries(context: dg.AssetExecutionContext, state: StateResource):
    """One summary of abstract + conclusion per paper and model, with prompt hash, params, latency and tokens."""
    yield from generate_run(context, state, "summary")


@generation_asset(c.ANSWERS, c.RETRIEVALS)
def answers(context: dg.AssetExecutionContext, state: StateResource):
    """An answer to each question of the paper from its kept (reranked) chunks."""
    yield from generate_run(context, state, "answer")


assets = [summaries, answers]
