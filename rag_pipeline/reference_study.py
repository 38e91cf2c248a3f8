"""The reference study's recorded data (data/reference_study/): one loader for everyone.

The recorded backend serves these outputs as models (`recorded-*`) and the evaluation layer
reproduces the notebook's numbers from them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from rag_pipeline.datasets import load_papers, load_study_questions
from rag_pipeline.settings import data_dir

# The notebook's model keys and the registry's slugs for their recorded outputs (data/models.yaml).
STUDY_MODELS = {"Tbank": "recorded-tbank", "YandexGPT": "recorded-yandexgpt", "Qwen3": "recorded-qwen3"}
# The notebook printed per-question times for summaries only; answers carry its per-paper mean.
LATENCY_NOTE = "latency_s is the notebook's per-paper mean for this model"


def _notes(record: dict) -> str:
    """The export caveats of one recorded output, as one line."""
    parts = []
    truncated = record.get("truncated_in_export")
    if truncated:
        parts.append(f"truncated_in_export={truncated}")
    parts.extend(str(note) for note in record.get("notes") or [])
    return "; ".join(parts)


def study_root(root: Path | None = None) -> Path:
    """The directory holding the reference study's JSON files."""
    return Path(root) if root else data_dir() / "reference_study"


def read_study_file(root: Path, name: str):
    path = root / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"reference study file not found: {path}") from exc


def _truncated(flag) -> bool:
    return flag is True  # "trailing_newlines_only" lost only newlines: the text is complete


class StudyNotRegistered(ValueError):
    """A paper of the reference study is not in papers.yaml (a registry trimmed to other papers)."""


def load_study_outputs(root: Path | None = None) -> pd.DataFrame:
    """One row per recorded output: task, item and paper ids, the study's model key and slug,
    the output, the reference, the notebook's judge rank, FRIDA cosine and BLEU where printed,
    the latency and the export caveats (``truncated``, ``note``).

    Item ids follow ``rag_pipeline.datasets``: a summary's item is its paper slug, a question's
    ``{paper}:qNN``. Question latencies are the notebook's per-paper means (it printed no
    per-question times).
    """
    base = study_root(root)
    registry = load_papers(base.parent / "papers.yaml")
    paper_of = {p.arxiv_id: p.id for p in registry if p.arxiv_id}
    seed = read_study_file(base, "seed_results.json")
    rows: list[dict] = []
    for entry in read_study_file(base, "summaries.json"):
        paper = paper_of.get(entry["arxiv_id"])
        if paper is None:
            raise StudyNotRegistered(f"{base / 'summaries.json'}: arXiv id {entry['arxiv_id']} is not in papers.yaml")
        for study_model, out in entry["models"].items():
            rows.append(
                {
                    "task": "summary", "item_id": paper, "paper_id": paper, "study_index": entry["index"],
                    "study_model": study_model, "model": STUDY_MODELS[study_model],
                    "output": out["summary"], "reference": entry["reference_summary"], "question": entry["title"],
                    "judge_rank": float(out["judge_rank"]), "frida_cosine": out.get("frida_cosine"),
                    "notebook_bleu": out.get("notebook_bleu"), "latency_s": float(out["inference_time_s"]),
                    "truncated": _truncated(out.get("truncated_in_export")),
                    "notes": _notes(out),
                }
            )
    questions = load_study_questions(base.parent, registry)
    raw_questions = read_study_file(base, "questions.json")
    if len(questions) != len(raw_questions):
        raise StudyNotRegistered(f"{base / 'questions.json'}: some questions' papers are not in papers.yaml")
    per_paper_latency = seed["qa"]["mean_inference_time_s_per_article"]
    for question, entry in zip(questions, raw_questions):
        if question.text != entry["question"]:
            raise ValueError(f"question {entry['id']}: registry order differs from questions.json")
        for study_model, out in entry["answers"].items():
            rows.append(
                {
                    "task": "answer", "item_id": question.question_id, "paper_id": question.paper_id,
                    "study_index": entry["id"], "study_model": study_model, "model": STUDY_MODELS[study_model],
                    "output": out["text"], "reference": entry["reference_answer"], "question": entry["question"],
                    "judge_rank": float(out["judge_rank"]), "frida_cosine": out.get("frida_cosine"),
                    "notebook_bleu": out.get("notebook_bleu"),
                    "latency_s": float(per_paper_latency[study_model][entry["arxiv_id"]]),
                    "truncated": _truncated(out.get("truncated_in_export")),
                    "notes": "; ".join(filter(None, [_notes(out), LATENCY_NOTE])),
                }
            )
    frame = pd.DataFrame(rows)
    for column in ("frida_cosine", "notebook_bleu"):
        frame[column] = pd.array([None if v is None else float(v) for v in frame[column]], dtype="Float64")
    return frame
