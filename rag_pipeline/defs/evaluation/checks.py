"""Asset checks of the evaluation stages, and the language of the generations (non-blocking, per
model × paper: summaries and answers in the expected language of pipeline.yaml `language`)."""

import dagster as dg

from rag_pipeline import contracts as c
from rag_pipeline.config import LanguageConfig
from rag_pipeline.defs.checks import checked_partitions, evaluate_each, no_partition
from rag_pipeline.defs.partitions import PAPER_MODEL, model_and_paper
from rag_pipeline.defs.resources import LanguageResource, StateResource
from rag_pipeline.evaluate.language_id import identifier_signature, language_report


@dg.asset_check(asset=c.GENERATION_METRICS.name, description="No NaN: every missing value carries its reason.")
def metrics_have_reasons(context: dg.AssetCheckExecutionContext, state: StateResource) -> dg.AssetCheckResult:
    keys = checked_partitions(context, PAPER_MODEL)
    if not keys:
        return no_partition()
    store = state.store()
    rows = unexplained = 0
    for key in keys:
        frame = store.read_frame(c.GENERATION_METRICS.name, *model_and_paper(key))
        if frame.empty:
            continue
        rows += len(frame)
        unexplained += int((frame["value"].isna() & (frame["error"] == "")).sum())
    return dg.AssetCheckResult(
        passed=unexplained == 0, metadata={"partitions": len(keys), "rows": rows, "unexplained_missing": unexplained}
    )


def language_check(asset: c.StageAsset):
    """A non-blocking check per model × paper: the share of `asset`'s outputs in the expected
    language (pipeline.yaml `language`), identified by py3langid. It warns below `min_share` and
    reports per-language counts; failed generations and empty outputs are not counted."""

    @dg.asset_check(
        name=f"{asset.name}_in_expected_language", asset=asset.name, partitions_def=PAPER_MODEL, blocking=False,
        description=f"The share of {asset.name} in the expected language (pipeline.yaml `language`: expected, "
                    "min_share), by py3langid; warns below min_share, reports per-language counts.",
    )
    def _check(context: dg.AssetCheckExecutionContext, state: StateResource, language: LanguageResource) -> dg.AssetCheckResult:
        config, store = language.section(), state.store()
        return evaluate_each(context, PAPER_MODEL, lambda key: language_result(store, asset, key, config))

    return _check


def language_result(store, asset: c.StageAsset, key: str, config: LanguageConfig) -> dg.AssetCheckResult:
    """One model × paper partition's language check result (WARN when below the share)."""
    model, paper = model_and_paper(key)
    frame = store.read_frame(asset.name, model, paper) if store.exists(asset.name, model, paper) else None
    metadata = {"expected": config.expected, "min_share": config.min_share,
                "identifier": dg.MetadataValue.json(identifier_signature(config.expected))}
    if frame is None or frame.empty:
        return dg.AssetCheckResult(passed=True, description=f"{key}: no {asset.name}", metadata={**metadata, "outputs": 0})
    ok = frame[(frame["error"] == "") & (frame["output"].fillna("").str.strip() != "")]
    report = language_report(zip(ok["item_id"].astype(str), ok["output"].astype(str)), config.expected)
    passed = report.passes(config.min_share)
    share = "n/a: nothing identifiable" if report.share is None else f"{report.share:.2f}"
    others = ", ".join(f"{name} {count}" for name, count in report.counts.items() if name != config.expected)
    description = (
        f"{key}: {report.n_expected} of {report.n_identified} identified {asset.name} in {config.expected} "
        f"(share {share}, min {config.min_share:.2f}" + (f"; others: {others}" if others else "") + ")"
        + ("" if passed else f"; e.g. {', '.join(f'{item}: {name}' for item, name in report.offending[:5])}")
    )
    metadata.update({
        "outputs": report.n_texts, "identified": report.n_identified, "in_expected": report.n_expected,
        "failed_generations": int(len(frame) - len(ok)), "counts": dg.MetadataValue.json(report.counts),
        "offending": dg.MetadataValue.json([list(pair) for pair in report.offending[:20]]),
    })
    if report.share is not None:
        metadata["share"] = round(report.share, 4)
    return dg.AssetCheckResult(passed=passed, severity=dg.AssetCheckSeverity.WARN, description=description, metadata=metadata)


checks = [metrics_have_reasons, *(language_check(asset) for asset in c.GENERATION_ASSETS)]
