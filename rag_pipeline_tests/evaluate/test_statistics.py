"""Statistics on simulated data with a known answer: CI coverage, test size and power, BT order."""

import numpy as np
import pandas as pd
import pytest

from rag_pipeline.evaluate import statistics as st


def long_scores(matrix: np.ndarray, models: list[str]) -> pd.DataFrame:
    """Items x models array -> long rows ``item_id, model, value``."""
    return pd.DataFrame(
        [{"item_id": f"i{i:03d}", "model": model, "value": float(matrix[i, j])}
         for i in range(matrix.shape[0]) for j, model in enumerate(models)]
    )


def test_per_item_ranks_use_min_for_ties_and_respect_direction():
    scores = pd.DataFrame({"item_id": ["x"] * 3 + ["y"] * 3, "model": ["a", "b", "c"] * 2,
                           "value": [0.9, 0.9, 0.1, 0.2, 0.5, 0.8]})
    ranks = st.per_item_ranks(scores, direction=1).set_index(["item_id", "model"])["rank"]
    assert ranks[("x", "a")] == ranks[("x", "b")] == 1 and ranks[("x", "c")] == 3
    assert ranks[("y", "c")] == 1 and ranks[("y", "a")] == 3
    lower = st.per_item_ranks(scores, direction=-1).set_index(["item_id", "model"])["rank"]
    assert lower[("y", "a")] == 1  # latency: smaller is better
    means = st.mean_ranks(scores, direction=1).set_index("model")["mean_rank"]
    assert means["a"] == 2.0 and means["c"] == 2.0 and means["b"] == 1.5


def test_ranks_use_only_items_every_model_has():
    scores = pd.DataFrame({"item_id": ["x", "x", "y"], "model": ["a", "b", "a"], "value": [1.0, 0.0, 5.0]})
    ranked = st.mean_ranks(scores)
    assert ranked.set_index("model")["n_items"].to_dict() == {"a": 1, "b": 1}


def test_holm_adjustment_matches_hand_computation():
    adjusted = st.holm_adjust([0.01, 0.04, 0.03])
    assert adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert st.holm_adjust([0.5, 0.9]).tolist() == pytest.approx([1.0, 1.0])


def test_exact_sign_flip_p_value():
    assert st.sign_flip_p_value(np.array([1.0, 1.0, 1.0])) == pytest.approx(2 / 8)
    assert st.sign_flip_p_value(np.zeros(5)) == 1.0


def test_bootstrap_ci_covers_the_true_mean_about_95_percent():
    rng = np.random.default_rng(7)
    true_means = np.array([0.4, 0.6])
    covered = 0
    simulations = 200
    for simulation in range(simulations):
        matrix = rng.normal(true_means, 0.2, size=(40, 2))
        table = st.bootstrap_means(long_scores(matrix, ["a", "b"]), n_boot=300, seed=simulation).set_index("model")
        covered += table.loc["a", "ci_low"] <= true_means[0] <= table.loc["a", "ci_high"]
    coverage = covered / simulations
    assert 0.88 <= coverage <= 0.99, coverage


def test_bootstrap_resamples_items_paired_across_models():
    # model b = model a + 1 on every item: paired resampling keeps the CIs exactly 1 apart
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, size=30)
    table = st.bootstrap_means(long_scores(np.column_stack([a, a + 1]), ["a", "b"]), n_boot=200).set_index("model")
    assert table.loc["b", "ci_low"] - table.loc["a", "ci_low"] == pytest.approx(1.0)
    assert table.loc["b", "ci_high"] - table.loc["a", "ci_high"] == pytest.approx(1.0)


def test_a_null_difference_is_called_significant_at_about_the_nominal_rate():
    rng = np.random.default_rng(11)
    simulations, rejections = 200, 0
    for simulation in range(simulations):
        matrix = rng.normal(0.5, 0.2, size=(30, 2))
        tests = st.paired_tests(long_scores(matrix, ["a", "b"]), n_boot=50, n_permutations=400, seed=simulation)
        rejections += bool(tests["significant"].iloc[0])
    assert rejections / simulations <= 0.10


def test_a_large_difference_is_called_significant_and_small_samples_stay_noise():
    rng = np.random.default_rng(3)
    base = rng.normal(0.5, 0.1, size=(50, 1))
    matrix = np.hstack([base, base + 0.2 + rng.normal(0, 0.05, size=(50, 1)), base + rng.normal(0, 0.05, size=(50, 1))])
    tests = st.paired_tests(long_scores(matrix, ["a", "b", "c"]), direction=1, n_boot=200, n_permutations=2000)
    by_pair = tests.set_index(["model_a", "model_b"])
    assert by_pair.loc[("a", "b"), "significant"] and by_pair.loc[("a", "b"), "better"] == "b"
    assert by_pair.loc[("a", "b"), "mean_diff"] < 0 and by_pair.loc[("a", "b"), "ci_high"] < 0
    assert not by_pair.loc[("a", "c"), "significant"]
    assert "within noise" in by_pair.loc[("a", "c"), "noise_note"]
    assert (tests["p_adjusted"] >= tests["p_value"]).all()
    # lower-is-better metric: the same numbers make "a" the better one
    lower = st.paired_tests(long_scores(matrix, ["a", "b", "c"]), direction=-1, n_boot=50, n_permutations=500)
    assert lower.set_index(["model_a", "model_b"]).loc[("a", "b"), "better"] == "a"


def _resampled(monkeypatch):
    """Resampling at every size: what the normal approximation stands in for from its threshold on."""
    monkeypatch.setattr(st, "NORMAL_APPROXIMATION_MIN_ITEMS", 10**9)


@pytest.mark.parametrize("shift", [0.0, 0.01, 0.02, 0.05])
def test_from_the_threshold_on_the_p_value_and_intervals_are_the_resampled_ones_limits(monkeypatch, shift):
    n = st.NORMAL_APPROXIMATION_MIN_ITEMS
    rng = np.random.default_rng(5)
    base = rng.uniform(0, 1, size=(n, 1))
    matrix = np.hstack([base, base + shift + rng.normal(0, 0.3, size=(n, 1))])
    scores = long_scores(matrix, ["a", "b"])
    approximate = (st.paired_tests(scores, n_boot=2000, n_permutations=20_000).iloc[0],
                   st.bootstrap_means(scores, n_boot=2000).set_index("model"))
    _resampled(monkeypatch)
    resampled = (st.paired_tests(scores, n_boot=2000, n_permutations=20_000).iloc[0],
                 st.bootstrap_means(scores, n_boot=2000).set_index("model"))
    (pair, means), (pair_r, means_r) = approximate, resampled
    assert pair["p_value"] == pytest.approx(pair_r["p_value"], abs=0.01)
    width = pair_r["ci_high"] - pair_r["ci_low"]
    assert abs(pair["ci_low"] - pair_r["ci_low"]) < 0.1 * width and abs(pair["ci_high"] - pair_r["ci_high"]) < 0.1 * width
    for model in ("a", "b"):
        width = means_r.loc[model, "ci_high"] - means_r.loc[model, "ci_low"]
        assert abs(means.loc[model, "ci_low"] - means_r.loc[model, "ci_low"]) < 0.1 * width
        assert abs(means.loc[model, "ci_high"] - means_r.loc[model, "ci_high"]) < 0.1 * width


def test_below_the_threshold_nothing_changes_and_above_it_nothing_is_drawn(monkeypatch):
    rng = np.random.default_rng(9)
    small = long_scores(rng.normal(0.5, 0.2, size=(60, 2)), ["a", "b"])
    before = st.paired_tests(small, n_boot=300, n_permutations=1000, seed=1)
    _resampled(monkeypatch)
    pd.testing.assert_frame_equal(before, st.paired_tests(small, n_boot=300, n_permutations=1000, seed=1))
    monkeypatch.undo()
    large = long_scores(rng.normal(0.5, 0.2, size=(st.NORMAL_APPROXIMATION_MIN_ITEMS, 2)), ["a", "b"])
    pd.testing.assert_frame_equal(st.paired_tests(large, seed=1), st.paired_tests(large, seed=2))
    pd.testing.assert_frame_equal(st.bootstrap_means(large, seed=1), st.bootstrap_means(large, seed=2))


def test_bradley_terry_recovers_the_order_of_known_strengths():
    rng = np.random.default_rng(5)
    strengths = {"strong": 4.0, "good": 2.0, "fair": 1.0, "weak": 0.5}
    models = list(strengths)
    rows = []
    for item in range(150):
        for i in range(len(models)):
            for j in range(i + 1, len(models)):
                a, b = models[i], models[j]
                p_a = strengths[a] / (strengths[a] + strengths[b])
                rows.append({"item_id": f"i{item}", "model_a": a, "model_b": b, "score_a": float(rng.random() < p_a)})
    table = st.bradley_terry(pd.DataFrame(rows), n_boot=100, seed=1)
    assert table["model"].tolist() == models
    assert table["strength"].sum() == pytest.approx(1.0)
    ratio = table.set_index("model")["strength"]
    assert ratio["strong"] / ratio["weak"] == pytest.approx(8.0, rel=0.35)
    assert (table["ci_low"] <= table["strength"]).all() and (table["strength"] <= table["ci_high"]).all()


def test_bradley_terry_counts_ties_as_half_wins_and_stays_finite_for_a_perfect_record():
    outcomes = pd.DataFrame({"item_id": ["1", "2", "3"], "model_a": ["a", "a", "a"], "model_b": ["b", "b", "b"],
                             "score_a": [1.0, 1.0, 0.5]})
    table = st.bradley_terry(outcomes, n_boot=20).set_index("model")
    assert table.loc["a", "wins"] == 2.5 and table.loc["b", "wins"] == 0.5
    assert np.isfinite(table["strength"]).all() and table.loc["a", "strength"] > table.loc["b", "strength"]


def test_outcomes_from_ranks():
    ranks = pd.DataFrame({"item_id": ["x"] * 3, "model": ["a", "b", "c"], "rank": [1.0, 2.0, 2.0]})
    outcomes = st.outcomes_from_ranks(ranks).set_index(["model_a", "model_b"])["score_a"]
    assert outcomes[("a", "b")] == 1.0 and outcomes[("b", "c")] == 0.5 and outcomes[("a", "c")] == 1.0
