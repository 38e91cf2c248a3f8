"""Evaluation stages: metric rows per model × paper, the judge's verdicts per paper, the leaderboard."""

from __future__ import annotations

import pandas as pd

from rag_pipeline import contracts
from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.cache import ContentCache
from rag_pipeline.config import JudgeConfig
from rag_pipeline.datasets import load_reference_summaries, papers_by_id, questions_for_paper
from rag_pipeline.evaluate.judge import (
    GuaranteeSettings,
    Judge,
    JudgeReply,
    calibrate_judges,
    judge_cascade,
    judge_items,
    run_judge,
)
from rag_pipeline.evaluate.judge.annotators import AnnotatorSettings
from rag_pipeline.evaluate.judge.cascade import calibration_split, thresholds_from
from rag_pipeline.evaluate.judge.labels import label_directory, label_files, read_labels
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
            calibration, note = None, ""
            if "cascade" in judge.modes:
                if out.has_input(contracts.JUDGE_CALIBRATION.name) and out.has_input(contracts.JUDGE_LABELS.name):
                    calibration = (out.read_frame(contracts.JUDGE_CALIBRATION.name),
                                   out.read_frame(contracts.JUDGE_LABELS.name))
                else:  # the other modes still judge; the cascade waits for its calibration
                    note = "judge_calibration not materialized yet: no cascade verdicts"
            frame = judge_paper(generations, paper, judge, pool, paths, cache, calibration)
        out.write_frame(frame)
    metadata: dict = {"verdicts": len(frame), "judge": judge.model, "modes": ", ".join(judge.modes),
                      **artifact_metadata(out)}
    if note:
        metadata["note"] = note
    if not frame.empty and "abstained" in frame.columns:
        metadata["abstention_rate"] = round(float(frame["abstained"].mean()), 4)
        cascade = frame[frame["mode"] == "cascade"]
        if not cascade.empty:  # two rows per pair: halve the counts
            metadata["cascade_pairs"] = len(cascade) // 2
            metadata["cascade_decided_by"] = Json({name or "nobody (abstained)": int(n) // 2 for name, n
                                                   in cascade["decided_by"].value_counts().items()})
    return StageOutcome(metadata=metadata, version=frame_version(frame, list(frame.columns)))


# A pairwise verdict is one short JSON object ({"winner": "A"}); a small CPU model that goes on
# explaining would otherwise spend its whole max_new_tokens on every call.
VERDICT_MAX_NEW_TOKENS = 24


def registry_judge(name: str, pool: ModelPool, paths: StatePaths, cache: ContentCache, paper: str = "") -> Judge:
    """A registry model (any backend) as a judge: single questions for the judge modes, batches
    (one ``generate`` call: the backend's batching or concurrent requests) for the cascade. It
    shares the process's model pool, so a local judge is loaded once for all papers of a run."""
    spec = model_spec(name)

    def requests(batch: list[list[dict]]) -> list[GenerationRequest]:
        return [GenerationRequest(task="judge", paper_id=paper, item_id=f"judge-{i}", messages=m, want_logprobs=True,
                                  max_new_tokens=VERDICT_MAX_NEW_TOKENS)
                for i, m in enumerate(batch)]

    def complete(messages: list[dict]) -> str:
        [result] = pool.get(spec, paths).generate(requests([messages]), progress=False)
        if result.error:
            raise RuntimeError(f"judge model {spec.name!r} failed: {result.error}")
        return result.output

    def complete_batch(batch: list[list[dict]]) -> list[JudgeReply]:
        results = pool.get(spec, paths).generate(requests(batch), progress=False)
        return [JudgeReply(r.output, r.label_probabilities, f"judge model {spec.name!r} failed: {r.error}" if r.error else "")
                for r in results]

    return Judge(complete=complete, name=spec.name, identity=spec.identity(), cache=cache, complete_batch=complete_batch,
                 batch_identity={"max_new_tokens": VERDICT_MAX_NEW_TOKENS})


def guarantee_settings(judge: JudgeConfig) -> GuaranteeSettings:
    return GuaranteeSettings(
        alpha=judge.alpha, delta=judge.delta, confidence=judge.confidence,
        annotators=AnnotatorSettings(annotators=judge.annotators, shots=judge.shots, seed=judge.seed,
                                     example_chars=judge.example_chars, item_chars=judge.item_chars),
        held_out_share=judge.held_out_share, max_pairs=judge.max_label_pairs,
    )


def labels_partition(store: ArtifactStore, judge: JudgeConfig) -> StageOutcome:
    """The preference labels of the judge's label directory, validated, as one table."""
    directory = label_directory(judge.labels)
    with store.writing(contracts.JUDGE_LABELS.name) as out:
        frame = read_labels(directory)
        out.write_frame(frame)
    metadata: dict = {"labels": len(frame), "directory": str(directory),
                      "files": ", ".join(p.name for p in label_files(directory)) or "none", **artifact_metadata(out)}
    if not frame.empty:
        metadata["preferred"] = Json(frame["preferred"].value_counts().to_dict())
        metadata["annotator_kinds"] = ", ".join(sorted(set(frame["annotator_kind"])))
    else:
        metadata["note"] = f"no label files in {directory}: the cascade cannot be calibrated and decides nothing"
    return StageOutcome(metadata=metadata, version=frame_version(frame, list(contracts.LABEL_COLUMNS)))


def calibration_partition(store: ArtifactStore, judge: JudgeConfig, pool: ModelPool, paths: StatePaths,
                          cache: ContentCache) -> StageOutcome:
    """Each cascade judge's certified threshold, and the cascade's held-out coverage and agreement."""
    with store.writing(contracts.JUDGE_CALIBRATION.name) as out:
        labels = out.read_frame(contracts.JUDGE_LABELS.name)
        if "cascade" in judge.modes and judge.enabled:
            judges = [registry_judge(name, pool, paths, cache) for name in judge.cascade_models]
        else:  # not asked for: nothing is calibrated and no judge is loaded
            judges, labels = [], labels.iloc[0:0]
        table, label_verdicts = calibrate_judges(judges, labels, guarantee_settings(judge))
        out.write_frame(table)
        out.write_frame(label_verdicts, name="label_verdicts")
    overall = table.iloc[-1]
    metadata: dict = {
        "cascade": " → ".join(judge.cascade_models), "alpha": judge.alpha, "delta": judge.delta,
        "calibration_pairs": int(overall["n_calibration"]), "heldout_pairs": int(overall["heldout_n"]),
        "heldout_coverage": None if pd.isna(overall["heldout_coverage"]) else round(float(overall["heldout_coverage"]), 4),
        "calls": int(overall["calls"]),
        "thresholds": Markdown(table[["judge", "threshold", "n_calibration", "n_accepted", "errors", "risk_bound",
                                      "heldout_coverage", "heldout_agreement", "note"]].to_markdown(index=False)),
        **artifact_metadata(out),
    }
    return StageOutcome(metadata=metadata, version=frame_version(table, list(contracts.JUDGE_CALIBRATION.version_columns)))


def judge_paper(
    generations: pd.DataFrame, paper: str, judge: JudgeConfig, pool: ModelPool, paths: StatePaths, cache: ContentCache,
    calibration: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """All verdicts for one paper: every item judged across the models that answered it, in the
    configured modes; mode ``cascade`` with ``calibration`` (the calibration table and the labels)."""
    contexts = {q.question_id: q.text for q in questions_for_paper(paper)}
    registry = papers_by_id()
    contexts[paper] = registry[paper].title if paper in registry else paper
    if judge.max_items_per_paper:
        keep = sorted(generations["item_id"].unique())[: judge.max_items_per_paper]
        generations = generations[generations["item_id"].isin(keep)]
    references = references_for(paper)
    frames = []
    single = [mode for mode in judge.modes if mode != "cascade"]
    if single:
        frames.append(run_judge(generations, references, registry_judge(judge.model, pool, paths, cache, paper),
                                modes=single, contexts=contexts, n_permutations=judge.permutations))
    if "cascade" in judge.modes and calibration is not None:
        table, labels = calibration
        settings = guarantee_settings(judge)
        judges = [registry_judge(name, pool, paths, cache, paper) for name in judge.cascade_models]
        # Few-shot examples come from the calibration part of the labels, as during calibration.
        pool_pairs, _ = calibration_split(labels, settings)
        frames.append(judge_cascade(judges, thresholds_from(table, judges), judge_items(generations, references, contexts),
                                    pool_pairs, settings))
    frames = [frame for frame in frames if not frame.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


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
