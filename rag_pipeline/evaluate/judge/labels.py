"""Pairwise preference labels: reading label files, and the reference study's labels.

A label says which of two outputs for one item an annotator preferred (``A``, ``B`` or ``tie``);
the schema is ``rag_pipeline.contracts.LABEL_COLUMNS`` and docs/JUDGE.md explains each column.
Files live under ``data/labels/`` as CSV or Parquet; every file's rows are validated and a bad
file is named in the error with the row and column at fault.

The reference study has no human labels: :func:`study_labels` derives pairs from the notebook's
recorded GPT-4o ranks, marked ``annotator_kind = reference_judge``. A guarantee calibrated on them
is a guarantee of agreement *with GPT-4o*, and the report says so.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from rag_pipeline.contracts import LABEL_COLUMNS
from rag_pipeline.hashing import content_hash
from rag_pipeline.settings import data_dir

PREFERENCES = ("A", "B", "tie")
ANNOTATOR_KINDS = ("human", "reference_judge")
LABEL_SUFFIXES = (".csv", ".parquet")
# Columns a label file must have; label_id (derived from the content) and source (the file) may be absent.
REQUIRED_COLUMNS = tuple(c for c in LABEL_COLUMNS if c not in ("label_id", "source"))
STUDY_ANNOTATOR = "gpt-4o (the reference notebook's judge ranks)"
STUDY_LABEL_FILE = "reference_study_gpt4o.csv"


class LabelFileError(ValueError):
    """A label file that cannot be used: the message names the file, and the row and column at fault."""


def label_id(row: dict) -> str:
    """Content id of a label: the item, both outputs, the preference and the annotator."""
    return content_hash({key: str(row[key]) for key in ("task", "item_id", "model_a", "output_a", "model_b",
                                                         "output_b", "preferred", "annotator")})


def label_directory(configured: str) -> Path:
    """The label directory the judge section names: absolute, or relative to the data directory."""
    path = Path(configured).expanduser()
    return path if path.is_absolute() else data_dir() / path


def label_files(directory: Path) -> list[Path]:
    """The label files of ``directory`` (CSV and Parquet, sorted; none when it does not exist)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in LABEL_SUFFIXES)


def read_label_file(path: Path) -> pd.DataFrame:
    """One label file, validated, with ``label_id`` and ``source`` filled in."""
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise LabelFileError(f"label file {path}: cannot be read ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise LabelFileError(f"label file {path}: missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)}")
    frame = frame.fillna("").astype(str)
    for column in ("task", "item_id", "model_a", "output_a", "model_b", "output_b", "annotator"):
        empty = frame.index[frame[column].str.strip() == ""]
        if len(empty):
            raise LabelFileError(f"label file {path}: row {int(empty[0]) + 2}: column {column!r} is empty")
    for column, allowed in (("preferred", PREFERENCES), ("annotator_kind", ANNOTATOR_KINDS)):
        bad = frame.index[~frame[column].isin(allowed)]
        if len(bad):
            row = int(bad[0])
            raise LabelFileError(f"label file {path}: row {row + 2}: {column} {frame.at[row, column]!r} "
                                 f"is not one of {list(allowed)}")
    same = frame.index[frame["model_a"] == frame["model_b"]]
    if len(same):
        raise LabelFileError(f"label file {path}: row {int(same[0]) + 2}: model_a and model_b are the same")
    frame["label_id"] = [label_id(row) for row in frame.to_dict("records")]
    frame["source"] = path.name
    return frame[list(LABEL_COLUMNS)]


def read_labels(directory: Path) -> pd.DataFrame:
    """Every label file of ``directory``, validated and concatenated (duplicates by label_id dropped)."""
    frames = [read_label_file(path) for path in label_files(directory)]
    if not frames:
        return pd.DataFrame(columns=list(LABEL_COLUMNS))
    labels = pd.concat(frames, ignore_index=True).drop_duplicates("label_id", keep="first")
    return labels.sort_values(["source", "task", "item_id", "model_a", "model_b"], kind="stable").reset_index(drop=True)


def study_labels(outputs: pd.DataFrame) -> pd.DataFrame:
    """Pairwise labels from the notebook's GPT-4o ranks (``load_study_outputs()`` rows): for every
    item and pair of models, the better-ranked output is preferred; equal ranks are a tie."""
    rows = []
    for (task, item), group in outputs.groupby(["task", "item_id"], sort=True):
        group = group.sort_values("model")
        for first, second in itertools.combinations(group.to_dict("records"), 2):
            if first["judge_rank"] < second["judge_rank"]:
                preferred = "A"
            elif first["judge_rank"] > second["judge_rank"]:
                preferred = "B"
            else:
                preferred = "tie"
            row = {"task": task, "item_id": item, "paper_id": first["paper_id"], "context": first["question"],
                   "reference": first["reference"], "model_a": first["model"], "output_a": first["output"],
                   "model_b": second["model"], "output_b": second["output"], "preferred": preferred,
                   "annotator": STUDY_ANNOTATOR, "annotator_kind": "reference_judge"}
            rows.append({**row, "label_id": label_id(row), "source": STUDY_LABEL_FILE})
    return pd.DataFrame(rows, columns=list(LABEL_COLUMNS))


def write_study_labels(directory: Path, outputs: pd.DataFrame) -> Path:
    """Write :func:`study_labels` as ``directory/reference_study_gpt4o.csv`` (what ships in data/labels/)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STUDY_LABEL_FILE
    study_labels(outputs).drop(columns=["label_id", "source"]).to_csv(path, index=False)
    return path
