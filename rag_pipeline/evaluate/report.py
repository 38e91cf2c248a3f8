"""One self-contained HTML report (inline CSS and SVG; no script, no external resource: the
side-by-side view filters with radio buttons and CSS alone).

One section per collection of papers (statistics never pool collections): the noise warning, the
notebook's final table from our data, metric bars with 95% CI error bars, mean ranks, paired
tests, Bradley-Terry strengths, the per-paper heatmap, retrieval and the judge's reliability.
Then, once: the judge's guarantee, every item side by side, the reference study's numbers beside
ours, failures, and the metric and generation signatures. The same inputs always produce the same bytes (no timestamps).
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

import pandas as pd

from rag_pipeline import atomic
from rag_pipeline.evaluate.leaderboard import UNREGISTERED, leaderboard_records, notebook_table

TASK_TITLES = {"summary": "Суммаризация", "answer": "Ответы на вопросы"}
CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#1f2328;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
h3{font-size:1.05rem;margin-top:1.4rem}h4{font-size:.95rem;margin:1rem 0 .3rem}
section.collection{border-top:3px solid #0969da;margin-top:2.5rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.sig td{background:#dafbe1}tr.miss td{background:#fff8c5}
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:.7rem 1rem;border-radius:6px}
.muted{color:#656d76;font-size:.85rem}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.chart{border:1px solid #d0d7de;border-radius:6px;padding:.4rem}
code{font-size:.8rem;word-break:break-all}
"""


PAIRWISE_NOTE = (
    '<p class="muted">Разность a − b по общим объектам; p — перестановочный тест знаков, p_adjusted — '
    "поправка Холма по парам моделей внутри задачи и метрики. Зелёным — значимые.</p>"
)


def _esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _is_null(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _fmt(value, digits: int = 4) -> str:
    if _is_null(value):
        return "—"
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 1000 else (f"{value:.{digits}f}".rstrip("0").rstrip(".") or "0")
    return str(value)


def _table(frame: pd.DataFrame, columns: list[str] | None = None, row_class=None, digits: int = 4) -> str:
    if frame is None or frame.empty:
        return '<p class="muted">нет данных</p>'
    columns = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = []
    for record in frame[columns].to_dict("records"):
        css = row_class(record) if row_class else ""
        cells = []
        for column in columns:
            value = record[column]
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            cells.append(f'<td class="num">{_esc(_fmt(value, digits))}</td>' if numeric
                         else f"<td>{_esc(_fmt(value, digits))}</td>")
        body.append(f'<tr class="{css}">' + "".join(cells) + "</tr>" if css else "<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _bar_chart(title: str, rows: list[tuple[str, float, float, float]], note: str = "") -> str:
    """Horizontal bars of means with 95% CI error bars, as inline SVG."""
    label_width, plot_width, value_width, row_height = 170, 300, 70, 22
    height = 30 + row_height * len(rows) + 10
    width = label_width + plot_width + value_width
    low = min([0.0] + [r[2] for r in rows])
    high = max([r[3] for r in rows] + [r[1] for r in rows])
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return label_width + (value - low) / span * plot_width

    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{_esc(title)}">',
             f'<text x="4" y="16" font-size="12" font-weight="bold">{_esc(title)}</text>']
    zero = x(max(low, 0.0))
    for i, (label, mean, ci_low, ci_high) in enumerate(rows):
        y = 30 + i * row_height
        bar_start, bar_end = sorted((zero, x(mean)))
        parts.append(f'<text x="{label_width - 6}" y="{y + 14}" font-size="11" text-anchor="end">{_esc(label)}</text>')
        parts.append(f'<rect x="{bar_start:.1f}" y="{y + 3}" width="{max(bar_end - bar_start, 1):.1f}" '
                     f'height="{row_height - 8}" fill="#54aeff"/>')
        parts.append(f'<line x1="{x(ci_low):.1f}" x2="{x(ci_high):.1f}" y1="{y + 10}" y2="{y + 10}" '
                     f'stroke="#1f2328" stroke-width="1.3"/>')
        for end in (ci_low, ci_high):
            parts.append(f'<line x1="{x(end):.1f}" x2="{x(end):.1f}" y1="{y + 5}" y2="{y + 15}" stroke="#1f2328"/>')
        parts.append(f'<text x="{label_width + plot_width + 10}" y="{y + 14}" font-size="11">{mean:.3f}</text>')
    parts.append("</svg>")
    caption = f'<div class="muted">{_esc(note)}</div>' if note else ""
    return f'<div class="chart">{"".join(parts)}{caption}</div>'


def _color(fraction: float) -> str:
    """White to dark blue."""
    fraction = min(max(fraction, 0.0), 1.0)
    start, end = (247, 251, 255), (8, 48, 107)
    r, g, b = (round(s + (e - s) * fraction) for s, e in zip(start, end))
    return f"#{r:02x}{g:02x}{b:02x}"


def _heatmap(frame: pd.DataFrame) -> str:
    """Paper x model heatmap of one metric (darker = better), as inline SVG."""
    papers = sorted(frame["paper_id"].unique())
    models = sorted(frame["model"].unique())
    values = {(r.paper_id, r.model): float(r.mean) for r in frame.itertuples()}
    higher_is_better = bool(frame["higher_is_better"].iloc[0])
    low, high = min(values.values()), max(values.values())
    span = (high - low) or 1.0
    cell_w, cell_h, left, top = 92, 22, 160, 70
    width, height = left + cell_w * len(models) + 90, top + cell_h * len(papers) + 10  # room for slanted labels
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="heatmap">']
    for j, model in enumerate(models):
        cx = left + j * cell_w + cell_w / 2
        parts.append(f'<text x="{cx:.1f}" y="{top - 8}" font-size="10" text-anchor="start" '
                     f'transform="rotate(-30 {cx:.1f} {top - 8})">{_esc(model)}</text>')
    for i, paper in enumerate(papers):
        y = top + i * cell_h
        parts.append(f'<text x="{left - 6}" y="{y + 15}" font-size="11" text-anchor="end">{_esc(paper)}</text>')
        for j, model in enumerate(models):
            x = left + j * cell_w
            if (paper, model) not in values:
                parts.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="#eaeef2"/>'
                             f'<text x="{x + cell_w / 2:.1f}" y="{y + 15}" font-size="10" text-anchor="middle">н/д</text>')
                continue
            value = values[(paper, model)]
            fraction = (value - low) / span if higher_is_better else (high - value) / span
            text_color = "#ffffff" if fraction > 0.6 else "#1f2328"
            parts.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{_color(fraction)}"/>'
                         f'<text x="{x + cell_w / 2:.1f}" y="{y + 15}" font-size="10" text-anchor="middle" '
                         f'fill="{text_color}">{_esc(_fmt(value, 3))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _section_bars(summary: pd.DataFrame) -> str:
    if summary is None or summary.empty:
        return '<p class="muted">нет метрик</p>'
    out = []
    for task, by_task in summary.groupby("task", sort=True):
        out.append(f"<h4>{_esc(TASK_TITLES.get(task, task))}</h4><div class=\"charts\">")
        for metric, group in by_task.groupby("metric", sort=True):
            rows = [(r.model, float(r.mean), float(r.ci_low), float(r.ci_high)) for r in group.itertuples()]
            direction = group["direction"].iloc[0]
            tied_with_best = int(group["within_noise_of_best"].sum()) - 1  # the best itself is always True
            note = f"{direction}; n={int(group['n'].max())}; 95% CI"
            if direction != "descriptive" and tied_with_best > 0:
                note += f"; не отличить от лучшей (шум): {tied_with_best} из {len(group) - 1}"
            out.append(_bar_chart(metric, rows, note))
        out.append("</div>")
    return "".join(out)


def _reliability(reliability: dict | None) -> str:
    if not reliability:
        return '<p class="muted">судья не запускался или надёжность не вычислена</p>'
    rows = [{"показатель": key, "значение": value if not isinstance(value, list) else "; ".join(map(str, value))}
            for key, value in reliability.items()]
    return _table(pd.DataFrame(rows))


def _noise_banner(noise: pd.DataFrame) -> str:
    if noise is None or noise.empty:
        return ('<div class="warn">Парных сравнений нет. С 10 статьями или 50 вопросами большинство различий '
                "между моделями — в пределах шума.</div>")
    significant, total = int(noise["n_significant"].sum()), int(noise["n_pairs"].sum())
    items = int(noise["n_items"].max())
    return (f'<div class="warn"><b>Осторожно: мало данных.</b> Из {total} парных сравнений (все метрики и задачи) '
            f"значимы после поправки Холма только {significant}; остальные различия — в пределах шума "
            f"(не более {items} объектов на сравнение). Смотрите 95% доверительные интервалы, а не только "
            "средние и ранги.</div>")


def _collections(tables: dict[str, pd.DataFrame], reliability: dict[str, dict]) -> list[str]:
    """Every collection the tables or the judge reliability mention; unregistered papers last."""
    found = set(reliability)
    for name, table in tables.items():
        if table is None or table.empty:
            continue
        if "collection" not in table.columns:
            raise ValueError(f"leaderboard table {name!r} has no 'collection' column: "
                             "build the tables with build_leaderboard_by_collection")
        found |= set(table["collection"].astype(str))
    return sorted(found, key=lambda c: (c == UNREGISTERED, c))


def _anchor(collection: str) -> str:
    return "collection-" + re.sub(r"[^A-Za-z0-9_-]", "-", collection)


def _collection_section(tables: dict[str, pd.DataFrame], collection: str, reliability: dict | None) -> str:
    """Everything computed within one collection."""

    def of(name: str) -> pd.DataFrame:
        table = tables.get(name)
        if table is None or "collection" not in table.columns:
            return pd.DataFrame()
        return table[table["collection"] == collection].drop(columns="collection").reset_index(drop=True)

    # The stored wide table holds every collection's columns; rebuild this collection's own.
    wide, cells = of("notebook_table"), of("notebook_cells")
    final = notebook_table(cells, list(wide["model"])) if not wide.empty else wide
    summary, per_paper = of("summary"), of("per_paper")
    models = sorted(set(summary.get("model", [])) | set(final.get("model", [])))
    papers = sorted(set(per_paper.get("paper_id", [])))
    parts = [
        f'<section class="collection" id="{_esc(_anchor(collection))}">',
        f"<h2>Коллекция «{_esc(collection)}»</h2>",
        (f'<p class="muted">Модели: {_esc(", ".join(models) or "—")}. '
         f'Статьи: {_esc(", ".join(papers) or "—")}. Все статистики — только внутри этой коллекции.</p>'),
        _noise_banner(of("noise")),
        "<h3>Итоговая таблица (как в исходном ноутбуке)</h3>",
        _table(final, digits=3),
        "<h3>Метрики: средние и 95% доверительные интервалы</h3>",
        '<p class="muted">Бутстрэп по объектам (статьям / вопросам), парный для всех моделей.</p>',
        _section_bars(summary),
        "<h4>Таблица</h4>",
        _table(summary, ["task", "metric", "model", "n", "failures", "mean", "ci_low", "ci_high", "noise_note"]),
        "<h3>Средние ранги</h3>",
        '<p class="muted">Ранг по каждому объекту среди моделей, rank(method="min"), 1 — лучший.</p>',
        _table(of("ranks")),
        "<h3>Парные сравнения</h3>",
        PAIRWISE_NOTE,
        _table(of("pairwise"), ["task", "metric", "model_a", "model_b", "n_items", "mean_diff", "ci_low", "ci_high",
                                 "p_value", "p_adjusted", "better", "noise_note"],
               row_class=lambda r: "sig" if r.get("better") else ""),
        "<h3>Брэдли — Терри (по вердиктам судьи)</h3>",
        _table(of("bradley_terry")),
        "<h3>По статьям</h3>",
    ]
    if per_paper.empty:
        parts.append('<p class="muted">нет данных</p>')
    else:
        for (task, metric), group in per_paper.groupby(["task", "metric"], sort=True):
            parts.append(f"<h4>{_esc(TASK_TITLES.get(task, task))}: {_esc(metric)} (темнее — лучше)</h4>")
            parts.append(_heatmap(group))
    retrieval = of("retrieval")
    if not retrieval.empty:
        parts += ["<h3>Поиск фрагментов</h3>", _table(retrieval)]
    parts += ["<h3>Надёжность судьи</h3>", _reliability(reliability), "</section>"]
    return "\n".join(parts)


GUARANTEE_COLUMNS = ["judge", "threshold", "n_calibration", "n_accepted", "errors", "risk_bound", "heldout_n",
                     "heldout_decided", "heldout_coverage", "heldout_agreement", "ece", "auroc", "ece_logprob",
                     "auroc_logprob", "calls", "seconds", "note"]


def _guarantee_section(guarantee: pd.DataFrame | None, summary: pd.DataFrame) -> str:
    parts = ["<h2>Гарантия судьи</h2>"]
    if guarantee is None or guarantee.empty or guarantee["judge"].tolist() == ["cascade"]:
        parts.append('<p class="muted">Каскад судей не настроен (judge.modes без «cascade»): гарантии нет. '
                     "См. docs/JUDGE.md.</p>")
        return "\n".join(parts)
    overall = guarantee.iloc[-1]
    alpha, delta = float(overall["alpha"]), float(overall["delta"])
    kinds = str(overall["annotator_kind"])
    against = ("с эталонным судьёй (ранги GPT-4o из ноутбука), а не с людьми" if kinds == "reference_judge"
               else "с разметкой людей" if kinds == "human" else f"с разметкой ({kinds or 'нет меток'})")
    coverage = overall["heldout_coverage"]
    coverage_text = "—" if pd.isna(coverage) else f"{float(coverage):.1%}"
    parts.append(
        f"<p>На парах, по которым каскад выносит вердикт, его несогласие с метками не больше α = {alpha:g} "
        f"с вероятностью не меньше 1 − δ = {1 - delta:g}. Согласие — {_esc(against)}. "
        f"Покрытие на отложенных метках: <b>{coverage_text}</b> из {int(overall['heldout_n'])} пар.</p>")
    if pd.isna(coverage) or float(coverage) == 0.0:
        parts.append('<div class="warn">Ни один судья каскада не прошёл калибровку: каскад воздерживается по всем '
                     "объектам, и столбцы judge_guaranteed_win_rate пусты. Это честный ответ для слабого судьи, "
                     "а не ошибка: добавьте в judge.cascade более сильного судью (например, OpenAI-совместимый).</div>")
    parts.append(_table(guarantee, [c for c in GUARANTEE_COLUMNS if c in guarantee.columns], digits=3))
    covered = (summary[summary["metric"].astype(str).str.startswith("judge_guaranteed_win_rate")]
               if not summary.empty and "metric" in summary.columns else pd.DataFrame())
    parts.append("<h3>Рейтинг по вердиктам каскада (только покрытые пары, n — число объектов)</h3>")
    parts.append(_table(covered, [c for c in ("collection", "task", "model", "n", "mean", "ci_low", "ci_high")
                                  if c in covered.columns]) if not covered.empty else '<p class="muted">нет покрытых пар</p>')
    return "\n".join(parts)


def _side_by_side_section(items: pd.DataFrame | None) -> str:
    """Every item's outputs side by side, filtered by paper, model and disagreement with radio
    buttons and CSS (the report stays script-free)."""
    parts = ["<h2>Ответы рядом</h2>"]
    if items is None or items.empty:
        parts.append('<p class="muted">нет генераций</p>')
        return "\n".join(parts)
    papers, models = sorted(set(items["paper_id"])), sorted(set(items["model"]))
    css, controls = [], []
    for group, values, prefix in (("paper", papers, "p"), ("model", models, "m")):
        controls.append(f'<input type="radio" name="sbs-{group}" id="sbs-{group}-all" checked>'
                        f'<label for="sbs-{group}-all">все</label>')
        for index, value in enumerate(values):
            controls.append(f'<input type="radio" name="sbs-{group}" id="sbs-{group}-{index}">'
                            f'<label for="sbs-{group}-{index}">{_esc(value)}</label>')
            css.append(f"#sbs-{group}-{index}:checked~table tr.sbs:not(.{prefix}{index}){{display:none}}")
        controls.append("<br>")
    controls.append('<input type="checkbox" id="sbs-disagree"><label for="sbs-disagree">только объекты, где лучший '
                    "по судье ≠ лучший по косинусу</label>")
    css.append("#sbs-disagree:checked~table tr.sbs:not(.dis){display:none}")
    rows = []
    for row in items.itertuples():
        classes = f"sbs p{papers.index(row.paper_id)} m{models.index(row.model)}" + (" dis" if row.disagreement else "")
        cells = [row.paper_id, TASK_TITLES.get(row.task, row.task), row.context, row.reference, row.model, row.output,
                 row.chunks, row.metrics, row.verdict]
        rows.append(f'<tr class="{classes}">' + "".join(f'<td class="txt">{_esc(c)}</td>' for c in cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in ("статья", "задача", "вопрос / статья", "эталон", "модель", "ответ",
                                                 "фрагменты", "метрики", "судья"))
    parts += [f"<style>{''.join(css)}td.txt{{white-space:pre-wrap;max-width:28rem}}</style>",
              '<div class="sbs-view">', *controls, f"<table><tr>{header}</tr>{''.join(rows)}</table>", "</div>"]
    return "\n".join(parts)


def write_report(
    tables: dict[str, pd.DataFrame],
    out_path: Path,
    study: pd.DataFrame | None = None,
    reliability: dict[str, dict] | None = None,
    title: str = "RAG по научным статьям: сравнение моделей",
    retired: pd.DataFrame | None = None,
    guarantee: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
) -> Path:
    """Write the leaderboard as one self-contained HTML file (atomically) and return its path.

    ``tables``: ``build_leaderboard_by_collection``'s output (every table has ``collection``);
    ``study``: ``verify_study()`` (the notebook's numbers beside ours); ``reliability``:
    ``judge_reliability(...)`` per collection; ``retired``: models and papers removed from the
    registries whose results are still stored (listed, never ranked); ``guarantee``: the
    ``judge_calibration`` table; ``items``: ``reporting.side_by_side`` rows. Raises ValueError for
    a table without ``collection``.
    """
    reliability = reliability or {}
    collections = _collections(tables, reliability)

    def get(name: str) -> pd.DataFrame:
        return tables.get(name, pd.DataFrame())

    contents = "".join(f'<li><a href="#{_esc(_anchor(c))}">{_esc(c)}</a></li>' for c in collections)
    sections = [
        f"<h1>{_esc(title)}</h1>",
        ('<p class="muted">Статьи сгруппированы по коллекциям (data/papers.yaml); модели отвечают на разные '
         "объекты в разных коллекциях, поэтому средние, интервалы, тесты и ранги считаются внутри коллекции.</p>"),
        f"<ul>{contents}</ul>" if collections else '<p class="muted">нет данных</p>',
        *(_collection_section(tables, c, reliability.get(c)) for c in collections),
        _guarantee_section(guarantee, get("summary")),
        _side_by_side_section(items),
        "<h2>Эталонное исследование: числа ноутбука и наши</h2>",
        _table(study, ["part", "metric", "model", "item_id", "notebook", "ours", "abs_diff", "exact", "note"],
               row_class=lambda r: "" if r.get("exact") else "miss", digits=6)
        if study is not None else '<p class="muted">не все статьи исследования есть в data/papers.yaml: сверка не выполнялась</p>',
        "<h2>Выведены из сравнения</h2>",
        ('<p class="muted">Модели и статьи, удалённые из реестров: их результаты хранятся, но не входят '
         "в рейтинги, интервалы и вердикты судьи.</p>" + _table(retired))
        if retired is not None and not retired.empty else '<p class="muted">нет</p>',
        "<h2>Сбои</h2>",
        _table(get("failures")),
        "<h2>Сигнатуры метрик</h2>",
        _table(get("signatures")),
        "<h2>Сигнатуры генераций</h2>",
        _table(get("generation_signatures")),
    ]
    document = (
        '<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )
    return atomic.write_text(out_path, document)


def leaderboard_json(tables: dict[str, pd.DataFrame]) -> dict:
    """The tables as JSON-safe data: ``{name: [record, ...]}`` (nulls as None, never NaN); every
    record carries its ``collection``."""
    return {name: leaderboard_records(table) for name, table in sorted(tables.items())}
