"""How far a judge can be trusted: abstentions, position consistency, agreement with reference ranks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rag_pipeline.evaluate.judge.listwise import listwise_scores
from rag_pipeline.evaluate.judge.pairwise import pairwise_outcomes


def judge_reliability(verdicts: pd.DataFrame, reference_ranks: pd.DataFrame | None = None) -> dict:
    """How far the judge can be trusted, as plain numbers (None with a note where undefined).

    - ``abstention_rate``: share of verdict rows the judge abstained on.
    - ``position_consistency_pairwise``: share of pairs whose verdict is the same in both orders.
    - ``position_consistency_listwise``: share of items whose ranking of the models is identical
      in every cyclic shift.
    - ``position_consistency``: the pairwise value when pairwise verdicts exist, else the listwise.
    - ``first_position_win_rate``: share of decided pairwise calls won by the output shown first
      (0.5 = no position bias).
    - ``kendall_tau``: agreement of the listwise mean ranks with ``reference_ranks`` (rows
      ``task, item_id, model, rank``; e.g. the notebook's GPT-4o ranks): scipy's tau-b per item,
      then the mean over items (items where either ranking is constant are skipped, tau is
      undefined there); ``kendall_tau_items`` counts the items used.
    - ``n_items``: judged items.
    """
    from scipy.stats import kendalltau  # scipy.stats is slow to import: only when reliability is asked for

    result: dict = {"n_items": 0, "abstention_rate": None, "position_consistency": None,
                    "position_consistency_pairwise": None, "position_consistency_listwise": None,
                    "first_position_win_rate": None, "kendall_tau": None, "kendall_tau_items": 0,
                    "kendall_tau_method": "scipy.stats.kendalltau (tau-b) per item, mean over items",
                    "notes": []}
    if verdicts is None or verdicts.empty:
        result["notes"].append("no verdicts")
        return result
    result["n_items"] = int(verdicts[["task", "item_id"]].drop_duplicates().shape[0])
    result["abstention_rate"] = float(verdicts["abstained"].mean())

    outcomes = pairwise_outcomes(verdicts)
    both = outcomes[outcomes["orders"] >= 2] if not outcomes.empty else outcomes
    if not both.empty:
        result["position_consistency_pairwise"] = float((both["consistent"] == "True").mean())
    pairwise = verdicts[(verdicts["mode"] == "pairwise") & ~verdicts["abstained"] & (verdicts["position"] == 1)]
    decided = pairwise[pairwise["win"].astype(float) != 0.5]
    if not decided.empty:
        result["first_position_win_rate"] = float(decided["win"].astype(float).mean())

    listwise = verdicts[(verdicts["mode"] == "listwise") & ~verdicts["abstained"]]
    if not listwise.empty:
        stable = []
        for _, group in listwise.groupby(["task", "item_id", "judge"]):
            rankings = {tuple(sorted(zip(g["model"], g["rank"].astype(float)))) for _, g in group.groupby("permutation")}
            if group["permutation"].nunique() >= 2:
                stable.append(len(rankings) == 1)
        if stable:
            result["position_consistency_listwise"] = float(np.mean(stable))
    result["position_consistency"] = (result["position_consistency_pairwise"]
                                      if result["position_consistency_pairwise"] is not None
                                      else result["position_consistency_listwise"])
    if result["position_consistency"] is None:
        result["notes"].append("position consistency needs pairwise verdicts or >= 2 listwise permutations")

    if reference_ranks is not None and not listwise.empty:
        ours = listwise_scores(verdicts)
        merged = ours.merge(reference_ranks[["task", "item_id", "model", "rank"]], on=["task", "item_id", "model"])
        taus, skipped = [], 0
        for _, group in merged.groupby(["task", "item_id"]):
            if len(group) < 2 or group["value"].nunique() < 2 or group["rank"].nunique() < 2:
                skipped += 1
                continue
            tau = kendalltau(group["value"].astype(float), group["rank"].astype(float)).statistic
            if not np.isnan(tau):
                taus.append(float(tau))
            else:
                skipped += 1
        result["kendall_tau_items"] = len(taus)
        if taus:
            result["kendall_tau"] = float(np.mean(taus))
        if skipped:
            result["notes"].append(f"kendall tau: {skipped} items skipped (a constant ranking leaves tau undefined)")
    elif reference_ranks is None:
        result["notes"].append("no reference ranks given: kendall tau not computed")
    return result
