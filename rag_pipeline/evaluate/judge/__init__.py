"""LLM-as-a-judge over any chat backend, with position debiasing, caching and abstentions.

The judge is any function ``complete(messages: list[dict]) -> str`` (an OpenAI-compatible API, a
local transformers model...). Model names never reach the judge: outputs are shown under
anonymous labels A, B, C... Three modes, one ``JudgeMode`` class each:

- ``listwise``: rank all models' outputs for an item 1..N. The outputs are shown in N cyclic
  shifts of one base order, so every output appears once in every position and a preference for
  a position cancels out in the mean rank over permutations.
- ``pairwise``: every pair in both orders; when the verdict flips with the order the pair counts
  as a tie.
- ``graded``: each output alone, graded 1..5 for correctness against the reference.
- ``cascade``: the judge with a guarantee (``guarantee``, ``annotators``, ``cascade``): pairwise
  verdicts from judges calibrated on preference labels (``labels``), each deciding only where its
  confidence clears a threshold certified to keep disagreement ≤ α with probability ≥ 1 − δ.

Prompts are Russian (the study is Russian-first) and contain the question (or the paper's title
for a summary), the reference and the outputs. Answers are parsed robustly (JSON or plain lists,
labels or numbers, surrounding prose); an unparseable answer gets one retry that repeats the
required format, then an abstention row keeping the raw text, never NaN. Every call is cached in a
``ContentCache`` under the hash of the judge identity and the messages, so re-running unchanged
inputs makes no calls.

Modules: ``core`` (``Judge``, asking with a retry, verdict rows, the ``JudgeMode`` base and its
registry), ``prompting`` (prompt blocks and answer reading every mode shares), one module per mode
(its prompt, parser, presentations, verdict value, per-item score metric and direction),
``run`` (``run_judge``, ``judge_item_scores``) and ``reliability``. A new mode is a
``@register_mode`` ``JudgeMode`` subclass in its own module, imported below.
"""

from rag_pipeline.evaluate.judge.core import (
    ITEM_SCORE_COLUMNS,
    JUDGE_MODES,
    PROMPT_VERSION,
    VERDICT_COLUMNS,
    CompleteBatchFn,
    CompleteFn,
    Judge,
    JudgeMode,
    JudgeReply,
    judge_metric_direction,
    register_mode,
    verdict_frame,
)
from rag_pipeline.evaluate.judge.prompting import (
    HOMOGLYPHS,
    LABELS,
    MAX_OUTPUT_CHARS,
    SYSTEM_PROMPT,
    Messages,
    retry_messages,
)

# Importing a mode's module registers it; this order is the order of MODES, so the import sorter
# must leave it alone.
# isort: off
from rag_pipeline.evaluate.judge.listwise import (
    FORMAT_LISTWISE,
    ListwiseMode,
    cyclic_orders,
    listwise_messages,
    listwise_scores,
    parse_ranking,
)
from rag_pipeline.evaluate.judge.pairwise import (
    FORMAT_PAIRWISE,
    TIE,
    PairwiseMode,
    pairwise_messages,
    pairwise_outcomes,
    pairwise_scores,
    parse_pairwise,
)
from rag_pipeline.evaluate.judge.graded import FORMAT_GRADED, GradedMode, graded_messages, graded_scores, parse_grade
from rag_pipeline.evaluate.judge.cascade import CascadeMode, GuaranteeSettings, calibrate_judges, judge_cascade
# isort: on
from rag_pipeline.evaluate.judge.reliability import judge_reliability
from rag_pipeline.evaluate.judge.run import judge_item_scores, judge_items, run_judge

MODES = tuple(JUDGE_MODES)

__all__ = [
    "FORMAT_GRADED",
    "FORMAT_LISTWISE",
    "FORMAT_PAIRWISE",
    "HOMOGLYPHS",
    "ITEM_SCORE_COLUMNS",
    "JUDGE_MODES",
    "LABELS",
    "MAX_OUTPUT_CHARS",
    "MODES",
    "PROMPT_VERSION",
    "SYSTEM_PROMPT",
    "TIE",
    "VERDICT_COLUMNS",
    "CascadeMode",
    "CompleteBatchFn",
    "CompleteFn",
    "GradedMode",
    "GuaranteeSettings",
    "Judge",
    "JudgeMode",
    "JudgeReply",
    "ListwiseMode",
    "Messages",
    "PairwiseMode",
    "calibrate_judges",
    "cyclic_orders",
    "graded_messages",
    "graded_scores",
    "judge_cascade",
    "judge_item_scores",
    "judge_items",
    "judge_metric_direction",
    "judge_reliability",
    "listwise_messages",
    "listwise_scores",
    "pairwise_messages",
    "pairwise_outcomes",
    "pairwise_scores",
    "parse_grade",
    "parse_pairwise",
    "parse_ranking",
    "register_mode",
    "retry_messages",
    "run_judge",
    "verdict_frame",
]
