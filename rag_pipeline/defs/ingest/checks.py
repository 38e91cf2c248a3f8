"""Asset checks of the ingest stages (visible in the UI next to their asset, per paper).

All three are blocking: each catches an input that would waste generation (GPU time) on the paper,
and its failure text names the paper and the reason.
"""

import dagster as dg

from rag_pipeline import contracts as c
from rag_pipeline.datasets import questions_for_paper
from rag_pipeline.defs.checks import evaluate_each
from rag_pipeline.defs.partitions import PAPERS
from rag_pipeline.defs.resources import StateResource
from rag_pipeline.index.retrieve import questions_without_kept_chunk
from rag_pipeline.ingest.chunking import offset_problems

BLOCKS = "; this paper's generation (summaries and answers) is blocked until it is fixed"


def paper_check(asset: c.StageAsset, description: str):
    """A blocking check per paper: a failure (ERROR) keeps everything downstream of the paper's
    `asset` from running, in the same run (Dagster), in automation (`blocking_check_failed_upstream`)
    and in `rag-pipeline run` (`runner.blocked_papers`)."""
    return dg.asset_check(asset=asset.name, partitions_def=PAPERS, blocking=True, description=description)


def paper_result(paper: str, problems: list[str], what: str, metadata: dict | None = None, note: str = "") -> dg.AssetCheckResult:
    """One paper's result: failed (ERROR) with problems; the description names the paper, the
    reason and the consequence (else the paper's note)."""
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        description = f"paper {paper!r}: {what}: {'; '.join(problems[:3])}{more}{BLOCKS}"
    else:
        description = f"paper {paper!r}: {note or 'ok'}"
    return dg.AssetCheckResult(
        passed=not problems,
        description=description,
        metadata={"paper": paper, "reason": description, "n_problems": len(problems),
                  "problems": dg.MetadataValue.json(problems[:20]), **(metadata or {})},
    )


@paper_check(c.PAPER_TEXT, "An abstract or a conclusion was found: with neither, the paper's summaries have no input "
             "and its generation is blocked. A single missing section is reported, not blocking.")
def sections_found(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    store = state.store()

    def one(paper: str) -> dg.AssetCheckResult:
        record = store.read_json(c.PAPER_TEXT.name, paper)
        missing = list(record.get("missing", []))
        source = str(record.get("conclusion_source", ""))
        problems = (["neither an abstract nor a conclusion was found (summaries would have no input)"]
                    if {"abstract", "conclusion"} <= set(missing) else [])
        note = f"{' and '.join(missing)} not found; summaries use what was found" if missing else ""
        if source.startswith("fallback:"):
            note = "; ".join(filter(None, [note, f"no conclusion heading: {source.removeprefix('fallback:')!r} used as the conclusion"]))
        return paper_result(paper, problems, "no summary input",
                            {"missing": ", ".join(missing) or "none", "conclusion_source": source or "unknown"}, note)

    return evaluate_each(context, PAPERS, one)


@paper_check(c.PAPER_CHUNKS, "Chunk offsets are consistent: ids {paper}:{i} in order, 0 <= start < end <= len(text), "
             "text[start:end] is the chunk, start and end strictly increasing. Blocking.")
def chunk_offsets_consistent(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    store = state.store()

    def one(paper: str) -> dg.AssetCheckResult:
        chunks = store.read_frame(c.PAPER_CHUNKS.name, paper)
        problems = offset_problems(paper, store.read_text(c.PAPER_TEXT.name, paper), chunks)
        return paper_result(paper, problems, "inconsistent chunk offsets", {"chunks": len(chunks)})

    return evaluate_each(context, PAPERS, one)


@paper_check(c.RETRIEVALS, "Every question of the paper has at least one kept chunk (an answer without context is "
             "wasted generation). Blocking.")
def every_question_has_context(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    store = state.store()

    def one(paper: str) -> dg.AssetCheckResult:
        ids = [question.question_id for question in questions_for_paper(paper)]
        missing = questions_without_kept_chunk(store.read_frame(c.RETRIEVALS.name, paper), ids)
        problems = [f"question {question_id!r} has no kept chunk" for question_id in missing]
        return paper_result(paper, problems, "questions without retrieved context", {"questions": len(ids)},
                            "" if ids else "no questions")

    return evaluate_each(context, PAPERS, one)


checks = [sections_found, chunk_offsets_consistent, every_question_has_context]
