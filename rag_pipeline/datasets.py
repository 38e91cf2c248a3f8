"""The registries and question sets every stage reads: papers, questions, reference summaries.

Formats (all under ``data/``):
- ``papers.yaml``: ``papers: [{id, arxiv | pdf, title, collection}]``.
- ``demo_corpus/questions.yaml``: ``questions: [{id, paper, question, reference_answer,
  gold_evidence: [quote, ...]}]``; ``demo_corpus/summaries.yaml``: ``summaries: {paper: text}``.
- ``reference_study/``: the notebook's data as extracted (questions.json, summaries.json, ...),
  keyed by arXiv id; mapped to paper slugs through ``papers.yaml``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from rag_pipeline.config import read_yaml
from rag_pipeline.ids import validate_slug
from rag_pipeline.settings import data_dir

ARXIV_ID = re.compile(r"^(?P<id>\d{4}\.\d{4,5})(?P<version>v\d+)?$")
ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf)/(?P<id>\d{4}\.\d{4,5})(?P<version>v\d+)?(?:\.pdf)?/?$")


class RegistryError(ValueError):
    """A registry file or entry that cannot be used; the message names the file and entry."""


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


@dataclass(frozen=True)
class PaperSpec:
    id: str
    title: str = ""
    collection: str = "default"
    arxiv_id: str | None = None
    arxiv_version: str | None = None
    pdf_path: Path | None = None
    # A source that cannot be used (e.g. an invalid arXiv id) fails this paper's partition only,
    # with this message, instead of breaking the whole registry.
    source_error: str | None = None

    @property
    def source(self) -> str:
        """Human-readable source: the arXiv abs URL or the local path."""
        if self.arxiv_id:
            return f"https://arxiv.org/abs/{self.arxiv_id}{self.arxiv_version or ''}"
        return str(self.pdf_path) if self.pdf_path else "(invalid source)"


@dataclass(frozen=True)
class Question:
    question_id: str
    paper_id: str
    text: str
    reference_answer: str
    gold_evidence: tuple[str, ...] = field(default_factory=tuple)
    relevance_mark: int | None = None  # the notebook's manual 0/1 mark of its retriever
    collection: str = "default"


def _read_yaml(path: Path) -> dict:
    return read_yaml(path, RegistryError, "registry file") or {}


def paper_from_entry(entry: dict, base_dir: Path, where: str = "entry") -> PaperSpec:
    """Validate one registry entry (dict) into a PaperSpec."""
    if not isinstance(entry, dict) or "id" not in entry:
        raise RegistryError(f"{where}: each paper needs an 'id'")
    paper_id = validate_slug(str(entry["id"]), "paper id")
    sources = [key for key in ("arxiv", "pdf") if entry.get(key)]
    if len(sources) != 1:
        raise RegistryError(f"{where}: paper {paper_id!r} needs exactly one of 'arxiv' or 'pdf'")
    common = dict(id=paper_id, title=str(entry.get("title", "")), collection=str(entry.get("collection", "default")))
    if sources[0] == "arxiv":
        try:
            arxiv_id, version = parse_arxiv_ref(str(entry["arxiv"]))
        except ValueError as exc:
            return PaperSpec(source_error=str(exc), **common)
        return PaperSpec(arxiv_id=arxiv_id, arxiv_version=version, **common)
    pdf = Path(str(entry["pdf"])).expanduser()
    return PaperSpec(pdf_path=pdf if pdf.is_absolute() else (base_dir / pdf).resolve(), **common)


def load_papers(path: Path | None = None) -> list[PaperSpec]:
    """Read ``papers.yaml``; ids must be unique slugs."""
    path = Path(path) if path else data_dir() / "papers.yaml"
    entries = _read_yaml(path).get("papers") or []
    papers = [paper_from_entry(e, path.parent, f"{path} entry {i}") for i, e in enumerate(entries)]
    seen: set[str] = set()
    for paper in papers:
        if paper.id in seen:
            raise RegistryError(f"{path}: duplicate paper id {paper.id!r}")
        seen.add(paper.id)
    return papers


def papers_by_id(path: Path | None = None) -> dict[str, PaperSpec]:
    return {paper.id: paper for paper in load_papers(path)}


def _arxiv_to_paper(papers: list[PaperSpec]) -> dict[str, str]:
    return {p.arxiv_id: p.id for p in papers if p.arxiv_id}


def load_demo_questions(root: Path | None = None) -> list[Question]:
    path = (Path(root) if root else data_dir()) / "demo_corpus" / "questions.yaml"
    if not path.exists():
        return []
    questions = []
    for i, entry in enumerate(_read_yaml(path).get("questions") or []):
        try:
            questions.append(
                Question(
                    question_id=str(entry["id"]),
                    paper_id=validate_slug(str(entry["paper"]), "paper id"),
                    text=str(entry["question"]),
                    reference_answer=str(entry["reference_answer"]),
                    gold_evidence=tuple(str(q) for q in entry.get("gold_evidence") or ()),
                    collection="demo",
                )
            )
        except KeyError as exc:
            raise RegistryError(f"{path} question {i}: missing field {exc}") from exc
    return questions


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
        summaries.update({str(k): str(v) for k, v in (_read_yaml(demo).get("summaries") or {}).items()})
    study = base / "reference_study" / "summaries.json"
    if study.exists():
        to_paper = _arxiv_to_paper(papers if papers is not None else load_papers(base / "papers.yaml"))
        for row in json.loads(study.read_text(encoding="utf-8")):
            if row["arxiv_id"] in to_paper:
                summaries[to_paper[row["arxiv_id"]]] = row["reference_summary"]
    return summaries
