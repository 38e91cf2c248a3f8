"""The registries and question sets every stage reads: papers, questions, reference summaries.

Formats (all under ``data/``):
- ``papers.yaml``: ``papers: [{id, arxiv | pdf, title, collection}]``; an invalid entry is skipped
  and reported (:func:`read_papers`), the others load.
- ``demo_corpus/questions.yaml``: ``questions: [{id, paper, question, reference_answer,
  gold_evidence: [quote, ...]}]``; ``demo_corpus/summaries.yaml``: ``summaries: {paper: text}``.
- ``reference_study/``: the notebook's data as extracted (questions.json, summaries.json, ...),
  keyed by arXiv id; mapped to paper slugs through ``papers.yaml``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from rag_pipeline.config import ConfigError, Section, read_yaml
from rag_pipeline.ids import validate_slug
from rag_pipeline.registries import RegistryReport, entry_where, read_registry
from rag_pipeline.settings import data_dir

ARXIV_ID = re.compile(r"^(?P<id>\d{4}\.\d{4,5})(?P<version>v\d+)?$")
ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf)/(?P<id>\d{4}\.\d{4,5})(?P<version>v\d+)?(?:\.pdf)?/?$")


class RegistryError(ConfigError):
    """A registry file or entry that cannot be used; the message names the file, the entry and the field."""


def parse_arxiv_ref(ref: str) -> tuple[str, str | None]:
    """Split an arXiv id or abs/pdf URL into (id, version or None). Raises ValueError if invalid."""
    ref = ref.strip()
    match = ARXIV_ID.match(ref) or ARXIV_URL.search(ref)
    if not match:
        raise ValueError(
            f"invalid arXiv reference {ref!r}: expected an id like 1706.03762 (optionally v7) "
            "or an https://arxiv.org/abs/... or /pdf/... URL"
        )
    return match.group("id"), match.group("version")


def _text(value: Any) -> Any:
    """YAML scalars as written (``2024`` → "2024"); other values are left to the str check."""
    return str(value) if isinstance(value, (int, float)) else value


# A free-text or id field: a string, or a number YAML parsed out of one (the files' unquoted values).
Text = Annotated[str, BeforeValidator(_text)]
PaperId = Annotated[Text, AfterValidator(lambda value: validate_slug(value, "paper id"))]


class PaperSpec(Section):
    """One paper: its slug id and its source, resolved (an arXiv id and version, or a local PDF)."""

    id: PaperId
    title: str = ""
    collection: str = "default"
    arxiv_id: str | None = None
    arxiv_version: str | None = None
    pdf_path: Path | None = Field(None, strict=False)  # a str is taken as a path
    # A source that cannot be used (e.g. an invalid arXiv id) fails this paper's partition only,
    # with this message, instead of breaking the whole registry.
    source_error: str | None = None

    @property
    def source(self) -> str:
        """Human-readable source: the arXiv abs URL or the local path."""
        if self.arxiv_id:
            return f"https://arxiv.org/abs/{self.arxiv_id}{self.arxiv_version or ''}"
        return str(self.pdf_path) if self.pdf_path else "(invalid source)"


class PaperEntry(Section):
    """A ``papers.yaml`` entry as written: a slug ``id`` and exactly one of ``arxiv`` or ``pdf``."""

    id: PaperId
    arxiv: Text | None = None  # an arXiv id ("1706.03762", "1706.03762v7") or an abs/pdf URL
    pdf: Text | None = None  # relative to the registry's directory, or absolute
    title: Text = ""
    collection: Text = "default"

    @model_validator(mode="after")
    def _one_source(self):
        if bool(self.arxiv) == bool(self.pdf):
            raise ValueError(f"paper {self.id!r} needs exactly one of 'arxiv' or 'pdf'")
        return self

    def resolve(self, base_dir: Path) -> PaperSpec:
        """The paper with its source resolved; an invalid arXiv reference becomes ``source_error``."""
        common = {"id": self.id, "title": self.title, "collection": self.collection}
        if self.arxiv:
            try:
                arxiv_id, version = parse_arxiv_ref(self.arxiv)
            except ValueError as exc:
                return PaperSpec(source_error=str(exc), **common)
            return PaperSpec(arxiv_id=arxiv_id, arxiv_version=version, **common)
        pdf = Path(self.pdf).expanduser()
        return PaperSpec(pdf_path=pdf if pdf.is_absolute() else (base_dir / pdf).resolve(), **common)


@dataclass(frozen=True)
class Question:
    question_id: str
    paper_id: str
    text: str
    reference_answer: str
    gold_evidence: tuple[str, ...] = field(default_factory=tuple)
    relevance_mark: int | None = None  # the notebook's manual 0/1 mark of its retriever
    collection: str = "default"


class QuestionEntry(Section):
    """A ``demo_corpus/questions.yaml`` entry: a question about one paper, with gold evidence quotes."""

    id: Text
    paper: PaperId
    question: Text
    reference_answer: Text
    gold_evidence: tuple[Text, ...] = Field((), strict=False)  # a YAML list

    def to_question(self, collection: str) -> Question:
        return Question(
            question_id=self.id,
            paper_id=self.paper,
            text=self.question,
            reference_answer=self.reference_answer,
            gold_evidence=self.gold_evidence,
            collection=collection,
        )


def _mapping(path: Path) -> dict:
    loaded = read_yaml(path, RegistryError, "registry file") or {}
    if not isinstance(loaded, dict):
        raise RegistryError(f"{path}: expected a mapping, got {type(loaded).__name__}")
    return loaded


def paper_from_entry(entry: Any, base_dir: Path, where: str = "entry") -> PaperSpec:
    """Validate one registry entry (a mapping) into a PaperSpec; errors name ``where``, the paper and the field."""
    where = entry_where(where, "paper", entry, "id")
    return PaperEntry.from_dict(entry, where, RegistryError).resolve(base_dir)


def default_papers_path() -> Path:
    return data_dir() / "papers.yaml"


def read_papers(path: str | os.PathLike | None = None) -> RegistryReport[PaperSpec]:
    """Read ``papers.yaml``: the valid entries, and an error (file, entry, field) per skipped one.

    A missing or unparsable file, a missing ``papers`` list and duplicate ids raise."""
    path = Path(path) if path else default_papers_path()
    return read_registry(
        path,
        "papers",
        lambda entry, where: paper_from_entry(entry, path.parent, where),
        key_field="id",
        kind="paper id",
        error=RegistryError,
        what="registry file",
    )


def load_papers(path: str | os.PathLike | None = None) -> list[PaperSpec]:
    """The valid entries of ``papers.yaml`` (unique slug ids); skipped entries are logged as warnings."""
    report = read_papers(path)
    report.log_errors()
    return list(report.entries)


def papers_by_id(path: Path | None = None) -> dict[str, PaperSpec]:
    return {paper.id: paper for paper in load_papers(path)}


def _arxiv_to_paper(papers: list[PaperSpec]) -> dict[str, str]:
    return {p.arxiv_id: p.id for p in papers if p.arxiv_id}


def load_demo_questions(root: Path | None = None) -> list[Question]:
    """The demo corpus's questions; an invalid entry is an error naming the file, the entry and the field."""
    path = (Path(root) if root else data_dir()) / "demo_corpus" / "questions.yaml"
    if not path.exists():
        return []
    report = read_registry(
        path,
        "questions",
        lambda entry, where: QuestionEntry.from_dict(entry, entry_where(where, "question", entry, "id"), RegistryError),
        key_field="id",
        kind="question id",
        error=RegistryError,
        what="question file",
    )
    if report.errors:  # a question set is used whole: a bad entry fails it instead of shrinking it
        raise RegistryError("\n".join(str(error) for error in report.errors))
    return [entry.to_question("demo") for entry in report.entries]


def load_study_questions(root: Path | None = None, papers: list[PaperSpec] | None = None) -> list[Question]:
    """The reference study's 50 questions, keyed to paper slugs via the registry's arXiv ids."""
    base = Path(root) if root else data_dir()
    path = base / "reference_study" / "questions.json"
    if not path.exists():
        return []
    to_paper = _arxiv_to_paper(papers if papers is not None else load_papers(base / "papers.yaml"))
    rows = json.loads(path.read_text(encoding="utf-8"))
    questions = []
    per_paper: dict[str, int] = {}
    for row in rows:
        paper_id = to_paper.get(row["arxiv_id"])
        if paper_id is None:
            continue  # the paper is not in this registry
        per_paper[paper_id] = per_paper.get(paper_id, 0) + 1
        questions.append(
            Question(
                question_id=f"{paper_id}:q{per_paper[paper_id]:02d}",
                paper_id=paper_id,
                text=row["question"],
                reference_answer=row["reference_answer"],
                relevance_mark=row.get("retriever_relevance_mark"),
                collection="reference_study",
            )
        )
    return questions


def load_questions(root: Path | None = None, papers: list[PaperSpec] | None = None) -> list[Question]:
    """All questions: the demo corpus's and the reference study's."""
    return load_demo_questions(root) + load_study_questions(root, papers)


def questions_for_paper(paper_id: str, root: Path | None = None) -> list[Question]:
    return [q for q in load_questions(root) if q.paper_id == paper_id]


def load_reference_summaries(root: Path | None = None, papers: list[PaperSpec] | None = None) -> dict[str, str]:
    """Reference summaries by paper id (demo corpus and reference study)."""
    base = Path(root) if root else data_dir()
    summaries: dict[str, str] = {}
    demo = base / "demo_corpus" / "summaries.yaml"
    if demo.exists():
        summaries.update({str(k): str(v) for k, v in (_mapping(demo).get("summaries") or {}).items()})
    study = base / "reference_study" / "summaries.json"
    if study.exists():
        to_paper = _arxiv_to_paper(papers if papers is not None else load_papers(base / "papers.yaml"))
        for row in json.loads(study.read_text(encoding="utf-8")):
            if row["arxiv_id"] in to_paper:
                summaries[to_paper[row["arxiv_id"]]] = row["reference_summary"]
    return summaries
