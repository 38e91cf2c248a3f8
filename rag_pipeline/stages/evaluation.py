"""Evaluation stages: metric rows per model × paper, the judge's verdicts per paper, the leaderboard."""

from __future__ import annotations

import pandas as pd

from rag_pipeline import contracts
from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.cache import ContentCache
from rag_pipeline.config import JudgeConfig
from rag_pipeline.datasets import load_reference_summaries, papers_by_id, questions_for_paper
from rag_pipeline.evaluate.judge import Judge, run_judge
from rag_pipeline.evaluate.text_metrics import score_generations
from rag_pipeline.generate.pool import ModelPool
from rag_pipeline.generate.registry import load_models
from rag_pipeline.generate.types import GenerationRequest
from rag_pipeline.index.embedders import Embedder
from rag_pipeline.reporting import LeaderboardResult, build_all
from rag_pipeline.settings import StatePaths
from rag_pipeline.stages.generation import model_spec, stored_generations
from rag_pipeline.stages.outcome import FilePath, Json, Markdown, StageOutcome, artifact_metadata, frame_version


def references_for(paper: str) -> dict[str, str]:
    """Reference texts by item id: the paper's reference summary and each question's reference answer."""
    references = {q.question_id: q.reference_answer for q in questions_for_paper(paper)}
    summary = load_reference_summaries().get(paper)
    if summary:
        references[paper] = summary
    return references


def score_partition(store: ArtifactStore, embedder: Embedder, model: str, paper: str) -> StageOutcome:
    """One row per generation × metric of a partition, each with its signature."""
    with store.writing(contracts.GENERATION_METRICS.name, model, paper) as out:
        generations = stored_generations(out, model, paper)
        frame = score_generations(generations, references_for(paper), embedder=embedder) if not generations.empty else pd.DataFrame()
        out.write_frame(frame)
    metadata: dict = {"rows": len(frame), "generations": len(generations), **artifact_metadata(out)}
    if not frame.empty:
        ok = frame[frame["error"] == ""]
        metadata["failed"] = int((frame["error"] != "").sum())
        means = ok.groupby(["task", "metric"])["value"].mean().round(4).reset_index()
        metadata["means"] = Markdown(means.to_markdown(index=False))
    return StageOutcome(metadata=metadata, version=frame_version(frame, contracts.GENERATION_METRICS.version_columns))


def judge_partition(
    store: ArtifactStore, judge: JudgeConfig, paper: str, pool: ModelPool, paths: StatePaths, cache: ContentCache
) -> StageOutcome:
    """The judge's verdicts over every registered model's outputs of one paper."""
    with store.writing(contracts.JUDGMENTS.name, paper) as out:
        # Registered models only: a model removed from the registry is retired from the comparison.
        generations = pd.concat(
            [stored_generations(out, spec.name, paper) for spec in load_models()] or [pd.DataFrame()], ignore_index=True
        )
        if not judge.enabled or generations.empty:
            frame = pd.DataFrame()
            note = "judge disabled" if not judge.enabled else "no generations for this paper yet"
        else:
            frame = judge_paper(generations, paper, judge, pool, paths, cache)
            note = ""
        out.write_frame(frame)
    metadata: dict = {"verdicts": len(frame), "judge": judge.model, "modes": ", ".join(judge.modes),
                      **artifact_metadata(out)}
    if note:
        metadata["note"] = note
    if not frame.empty and "abstained" in frame.columns:
        metadata["abstention_rate"] = round(float(frame["abstained"].mean()), 4)
    return StageOutcome(metadata=metadata, version=frame_version(frame, list(frame.columns)))


def judge_paper(
    generations: pd.DataFrame, paper: str, judge: JudgeConfig, pool: ModelPool, paths: StatePaths, cache: ContentCache
) -> pd.DataFrame:
    """All verdicts for one paper: every item judged across the models that answered it.

    The judge is a registry model of any backend; it shares the process's model pool, so a local
    judge is loaded once for all papers of a run.
    """
    spec = model_spec(judge.model)

    def complete(messages: list[dict]) -> str:
        request = GenerationRequest(task="judge", paper_id=paper, item_id="judge", messages=messages)
        [result] = pool.get(spec, paths).generate([request], progress=False)
        if result.error:
            raise RuntimeError(f"judge model {spec.name!r} failed: {result.error}")
        return result.output

    contexts = {q.question_id: q.text for q in questions_for_paper(paper)}
    registry = papers_by_id()
    contexts[paper] = registry[paper].title if paper in registry else paper
    if judge.max_items_per_paper:
        keep = sorted(generations["item_id"].unique())[: judge.max_items_per_paper]
        generations = generations[generations["item_id"].isin(keep)]
    verdicts = Judge(complete=complete, name=spec.name, identity=spec.identity(), cache=cache)
    return run_judge(generations, references_for(paper), verdicts, modes=judge.modes, contexts=contexts,
                     n_permutations=judge.permutations)


def build_leaderboard(store: ArtifactStore, paths: StatePaths, inputs: dict | None) -> tuple[LeaderboardResult, StageOutcome]:
    """Leaderboard tables per collection and the HTML report, from whatever is stored."""
    result = build_all(store, paths, inputs)
    headline = result.tables.get("summary", pd.DataFrame())
    outcome = StageOutcome(
        metadata={
            "report": FilePath(str(result.report_path)),
            "tables": Json({name: len(table) for name, table in result.tables.items()}),
            "models": int(headline["model"].nunique()) if "model" in headline.columns else 0,
            "leaderboard": Markdown(result.markdown),
            "retired": Markdown(result.retired.to_markdown(index=False) if not result.retired.empty else "none"),
            "artifact_version": result.artifact_version,
        },
        version=result.version,
    )
    return result, outcome
