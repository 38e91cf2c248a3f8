"""Adapts a registry model into the judge's chat function (the model shares the process's BackendPool)."""

import pandas as pd

from rag_pipeline.datasets import papers_by_id, questions_for_paper


def judge_paper(generations: pd.DataFrame, paper: str, references: dict[str, str], judge_config, state, spec, pool) -> pd.DataFrame:
    """All verdicts for one paper: every item judged across the models that answered it."""
    from rag_pipeline.evaluate.judge import Judge, run_judge
    from rag_pipeline.generate.types import GenerationRequest

    def complete(messages: list[dict]) -> str:
        backend = pool.get(spec, state.paths())
        request = GenerationRequest(task="judge", paper_id=paper, item_id="judge", messages=messages)
        [result] = backend.generate([request], progress=False)
        if result.error:
            raise RuntimeError(f"judge model {spec.name!r} failed: {result.error}")
        return result.output

    contexts = {q.question_id: q.text for q in questions_for_paper(paper)}
    registry = papers_by_id()
    contexts[paper] = registry[paper].title if paper in registry else paper
    if judge_config.max_items_per_paper:
        keep = sorted(generations["item_id"].unique())[: judge_config.max_items_per_paper]
        generations = generations[generations["item_id"].isin(keep)]
    judge = Judge(complete=complete, name=spec.name, identity=spec.identity(), cache=state.judge_cache())
    return run_judge(generations, references, judge, modes=judge_config.modes, contexts=contexts, n_permutations=judge_config.permutations)
