"""Paired statistics over items: ranks, bootstrap CIs, paired tests with Holm, Bradley-Terry.

Every model answers the same items (papers, questions), so comparisons are paired by item:
bootstrap replicates resample item indices once and apply them to every model; paired tests work
on per-item differences. With 10 papers or 50 questions most differences between models are
noise, and the tables say so (``noise_note``).

Input frames are long: one row per ``item_id`` x ``model`` with a float ``value`` (failed values
are dropped beforehand). Missing values inside this module are NaN in numpy matrices only; no
returned table contains NaN.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
import pandas as pd

DEFAULT_BOOTSTRAP = 2000
DEFAULT_PERMUTATIONS = 10_000
EXACT_SIGN_FLIP_MAX_N = 12  # 2**12 sign patterns: enumerate exactly up to here
CONFIDENCE = 0.95
# From this many items on, the bootstrap intervals and the sign-flip p-value are their normal
# (central-limit) approximations, which the resampled ones converge to (within Monte Carlo error
# here: test_statistics.py): resampling 2,000 x n items per model and 10,000 x n signs per pair
# made a leaderboard of thousands of papers take hours (docs/scale.md). Below it (the studies
# here: 10 summaries, 50-60 questions) they are resampled as always.
NORMAL_APPROXIMATION_MIN_ITEMS = 200
ALPHA = 0.05
NOISE = "difference within noise"


# ----------------------------------------------------------------------------------- matrices


def item_matrix(scores: pd.DataFrame) -> pd.DataFrame:
    """Items x models matrix of ``value`` (NaN where a model has no value for an item).

    Duplicate (item, model) rows are averaged (e.g. several judge permutations).
    """
    if scores.empty:
        return pd.DataFrame()
    clean = scores.loc[scores["value"].notna(), ["item_id", "model", "value"]].copy()
    clean["value"] = clean["value"].astype(float)
    return clean.pivot_table(index="item_id", columns="model", values="value", aggfunc="mean").sort_index()


def complete_cases(matrix: pd.DataFrame) -> pd.DataFrame:
    """The items every model (with at least one value) has a value for."""
    if matrix.empty:
        return matrix
    matrix = matrix.loc[:, matrix.notna().any(axis=0)]
    return matrix.dropna(axis=0, how="any")


# -------------------------------------------------------------------------------------- ranks


def per_item_ranks(scores: pd.DataFrame, direction: int = 1, method: str = "min") -> pd.DataFrame:
    """Rank the models within each item (1 = best), on the items every model has a value for.

    ``direction`` +1 ranks higher values first, -1 lower values first (latency, judge rank).
    ``method="min"`` gives tied models the best rank of the tie, as the reference notebook did.
    Returns rows ``item_id, model, value, rank``.
    """
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1 to rank, got {direction}")
    matrix = complete_cases(item_matrix(scores))
    if matrix.empty:
        return pd.DataFrame({"item_id": [], "model": [], "value": [], "rank": []})
    ranks = matrix.rank(axis=1, method=method, ascending=direction < 0)
    long = ranks.stack().rename("rank").reset_index()
    values = matrix.stack().rename("value").reset_index()
    return values.merge(long, on=["item_id", "model"])[["item_id", "model", "value", "rank"]]


def mean_ranks(scores: pd.DataFrame, direction: int = 1, method: str = "min") -> pd.DataFrame:
    """Mean per-item rank of each model: rows ``model, mean_rank, n_items`` (best first)."""
    ranks = per_item_ranks(scores, direction, method)
    if ranks.empty:
        return pd.DataFrame({"model": [], "mean_rank": [], "n_items": []})
    table = ranks.groupby("model")["rank"].agg(mean_rank="mean", n_items="count").reset_index()
    table["n_items"] = table["n_items"].astype(int)
    return table.sort_values(["mean_rank", "model"]).reset_index(drop=True)


# ---------------------------------------------------------------------------------- bootstrap


def _normal_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The mean's interval from its standard error (large samples: NORMAL_APPROXIMATION_MIN_ITEMS)."""
    mean = float(values.mean())
    if values.size < 2:
        return mean, mean
    half = NormalDist().inv_cdf(0.5 + confidence / 2.0) * float(values.std(ddof=1)) / math.sqrt(values.size)
    return mean - half, mean + half


def _percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_means(
    scores: pd.DataFrame,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Each model's mean with a percentile bootstrap CI, resampling items paired across models.

    Every replicate draws one set of item indices and uses it for every model; a model missing an
    item simply contributes fewer values to that replicate. Returns ``model, n, mean, std,
    ci_low, ci_high``; a model with a single value gets its value as both bounds.
    """
    matrix = item_matrix(scores)
    if matrix.empty:
        return pd.DataFrame({c: [] for c in ("model", "n", "mean", "std", "ci_low", "ci_high")})
    values = matrix.to_numpy(dtype=float)
    present = np.isfinite(values)
    filled = np.where(present, values, 0.0)
    large = values.shape[0] >= NORMAL_APPROXIMATION_MIN_ITEMS
    rng = np.random.default_rng(seed)
    indices = None if large else rng.integers(0, values.shape[0], size=(n_boot, values.shape[0]))
    rows = []
    for column, model in enumerate(matrix.columns):
        observed = values[present[:, column], column]
        if large:
            low, high = _normal_interval(observed, confidence)
        else:
            sums = filled[indices, column].sum(axis=1)
            counts = present[indices, column].sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                replicates = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            low, high = _percentile_interval(replicates, confidence)
        mean = float(observed.mean())
        rows.append(
            {
                "model": model,
                "n": int(observed.size),
                "mean": mean,
                "std": float(observed.std(ddof=1)) if observed.size > 1 else 0.0,
                "ci_low": low if math.isfinite(low) else mean,
                "ci_high": high if math.isfinite(high) else mean,
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------- paired tests


def sign_flip_p_value(
    differences: np.ndarray, n_permutations: int = DEFAULT_PERMUTATIONS, rng: np.random.Generator | None = None
) -> float:
    """Two-sided sign-flip permutation p-value of the mean paired difference being 0.

    Exact (all 2**n sign patterns) for n <= 12, Monte Carlo with ``n_permutations`` draws and the
    (1 + hits) / (1 + draws) correction (so p is never 0) up to NORMAL_APPROXIMATION_MIN_ITEMS, and
    from there the normal limit of the sign-flip distribution: the flipped sum has mean 0 and
    variance sum(d**2).
    """
    d = np.asarray(differences, dtype=float)
    n = d.size
    if n == 0:
        raise ValueError("no paired differences")
    observed = abs(d.mean())
    if np.allclose(d, 0.0):
        return 1.0
    if n >= NORMAL_APPROXIMATION_MIN_ITEMS:
        return float(min(1.0, math.erfc(abs(d.sum()) / math.sqrt(float(np.dot(d, d))) / math.sqrt(2.0))))
    tolerance = 1e-12 * max(1.0, observed)
    if n <= EXACT_SIGN_FLIP_MAX_N:
        patterns = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        means = np.abs(patterns @ d) / n
        return float(np.mean(means >= observed - tolerance))
    rng = rng or np.random.default_rng(0)
    signs = rng.choice((1.0, -1.0), size=(n_permutations, n))
    means = np.abs(signs @ d) / n
    return float((1 + np.sum(means >= observed - tolerance)) / (1 + n_permutations))


def holm_adjust(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (controls the family-wise error rate)."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for step, index in enumerate(order):
        running = max(running, min(1.0, (m - step) * p[index]))
        adjusted[index] = running
    return adjusted


def paired_tests(
    scores: pd.DataFrame,
    direction: int = 1,
    n_boot: int = DEFAULT_BOOTSTRAP,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    alpha: float = ALPHA,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Every pair of models compared on the items both have: mean difference (a - b) with a
    paired-bootstrap CI, sign-flip permutation p, Holm-adjusted p over all pairs, ``significant``,
    ``better`` (the significantly better model, "" otherwise) and a plain ``noise_note``.

    ``direction`` (+1 higher is better, -1 lower) only decides which model is ``better``.
    """
    columns = ["model_a", "model_b", "n_items", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high",
               "p_value", "p_adjusted", "significant", "better", "noise_note"]
    matrix = item_matrix(scores)
    if matrix.empty or matrix.shape[1] < 2:
        return pd.DataFrame({c: [] for c in columns})
    rng = np.random.default_rng(seed)
    rows = []
    models = sorted(matrix.columns)
    values = matrix[models].to_numpy(dtype=float)
    present = np.isfinite(values)
    for (i, model_a), (j, model_b) in itertools.combinations(enumerate(models), 2):
        shared = present[:, i] & present[:, j]
        if not shared.any():
            continue  # no shared item: nothing to compare (absent, not a NaN row)
        a, b = values[shared, i], values[shared, j]
        d = a - b
        if d.size >= NORMAL_APPROXIMATION_MIN_ITEMS:
            low, high = _normal_interval(d, confidence)
        else:
            indices = rng.integers(0, d.size, size=(n_boot, d.size))
            low, high = _percentile_interval(d[indices].mean(axis=1), confidence)
        rows.append(
            {
                "model_a": model_a,
                "model_b": model_b,
                "n_items": int(d.size),
                "mean_a": float(a.mean()),
                "mean_b": float(b.mean()),
                "mean_diff": float(d.mean()),
                "ci_low": low,
                "ci_high": high,
                "p_value": sign_flip_p_value(d, n_permutations, rng) if d.size > 1 else 1.0,
            }
        )
    if not rows:
        return pd.DataFrame({c: [] for c in columns})
    table = pd.DataFrame(rows)
    table["p_adjusted"] = holm_adjust(table["p_value"].to_numpy())
    table["significant"] = table["p_adjusted"] < alpha
    better = []
    notes = []
    for row in table.itertuples():
        if row.significant and direction != 0:
            winner = row.model_a if (row.mean_diff > 0) == (direction > 0) else row.model_b
            better.append(winner)
            notes.append(f"{winner} better (p_adj={row.p_adjusted:.3g}, n={row.n_items} items)")
        else:
            better.append("")
            notes.append(f"{NOISE} (p_adj={row.p_adjusted:.3g}, n={row.n_items} items)")
    table["better"] = better
    table["noise_note"] = notes
    return table[columns]


# ------------------------------------------------------------------------------ Bradley-Terry


def outcomes_from_ranks(ranks: pd.DataFrame) -> pd.DataFrame:
    """Pairwise outcomes implied by per-item ranks (lower rank wins; equal ranks tie).

    ``ranks``: rows ``item_id, model, rank``. Returns ``item_id, model_a, model_b, score_a`` with
    score_a 1 (a wins), 0.5 (tie) or 0 (b wins).
    """
    rows = []
    for item_id, group in ranks.groupby("item_id", sort=True):
        ordered = group.sort_values("model")
        for (_, a), (_, b) in itertools.combinations(ordered.iterrows(), 2):
            score = 0.5 if a["rank"] == b["rank"] else (1.0 if a["rank"] < b["rank"] else 0.0)
            rows.append({"item_id": item_id, "model_a": a["model"], "model_b": b["model"], "score_a": score})
    return pd.DataFrame(rows, columns=["item_id", "model_a", "model_b", "score_a"])


def _bt_fit(wins: np.ndarray, prior: float, iterations: int = 500, tolerance: float = 1e-10) -> np.ndarray:
    """Bradley-Terry strengths (sum 1) by Hunter's MM algorithm on a wins matrix (wins[i, j] = i over j).

    ``prior`` adds that many virtual ties to every pair, so a model that won every comparison
    still gets a finite strength.
    """
    k = wins.shape[0]
    wins = wins + prior / 2.0 * (1 - np.eye(k))
    games = wins + wins.T
    total_wins = wins.sum(axis=1)
    strength = np.full(k, 1.0 / k)
    for _ in range(iterations):
        denominator = (games / (strength[:, None] + strength[None, :])).sum(axis=1)
        updated = np.where(denominator > 0, total_wins / np.maximum(denominator, 1e-300), strength)
        updated = updated / updated.sum()
        if np.max(np.abs(updated - strength)) < tolerance:
            return updated
        strength = updated
    return strength


def bradley_terry(
    outcomes: pd.DataFrame,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    prior: float = 0.5,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Bradley-Terry strengths from pairwise outcomes, with bootstrap intervals over items.

    ``outcomes``: rows ``item_id, model_a, model_b, score_a`` (1 a wins, 0.5 tie, 0 b wins; a tie
    counts as half a win each). Strengths sum to 1 (the chance of beating a model of strength s
    is p / (p + s)). Returns ``model, strength, ci_low, ci_high, n_comparisons, wins`` best first.
    """
    columns = ["model", "strength", "ci_low", "ci_high", "n_comparisons", "wins"]
    if outcomes.empty:
        return pd.DataFrame({c: [] for c in columns})
    models = sorted(set(outcomes["model_a"]) | set(outcomes["model_b"]))
    position = {m: i for i, m in enumerate(models)}
    items = sorted(outcomes["item_id"].unique())
    item_position = {item: i for i, item in enumerate(items)}
    per_item = np.zeros((len(items), len(models), len(models)))
    for row in outcomes.itertuples():
        i, a, b = item_position[row.item_id], position[row.model_a], position[row.model_b]
        per_item[i, a, b] += row.score_a
        per_item[i, b, a] += 1.0 - row.score_a
    strength = _bt_fit(per_item.sum(axis=0), prior)
    rng = np.random.default_rng(seed)
    replicates = np.empty((n_boot, len(models)))
    for r in range(n_boot):
        sample = rng.integers(0, len(items), size=len(items))
        replicates[r] = _bt_fit(per_item[sample].sum(axis=0), prior, iterations=200, tolerance=1e-8)
    comparisons = (per_item + per_item.transpose(0, 2, 1)).sum(axis=(0, 2))
    rows = []
    for model, i in position.items():
        low, high = _percentile_interval(replicates[:, i], confidence)
        rows.append(
            {
                "model": model,
                "strength": float(strength[i]),
                "ci_low": low,
                "ci_high": high,
                "n_comparisons": round(float(comparisons[i])),
                "wins": float(per_item[:, i, :].sum()),
            }
        )
    return pd.DataFrame(rows, columns=columns).sort_values("strength", ascending=False).reset_index(drop=True)


def noise_summary(pairwise: pd.DataFrame) -> str:
    """One sentence on how many pairwise differences survive the Holm correction."""
    if pairwise.empty:
        return "no pairwise comparisons"
    significant = int(pairwise["significant"].sum())
    total = len(pairwise)
    items = int(pairwise["n_items"].max())
    if significant == 0:
        return f"all {total} pairwise differences are within noise (n<={items} items)"
    return f"{significant} of {total} pairwise differences are significant after Holm (n<={items} items); the rest are within noise"
