"""Where each stage's output lives on disk: ``<state>/artifacts/<asset>/<partition...>.<ext>``.

The Dagster assets, the CLI (`explain`, `report`) and the tests all read and write stage outputs
through this one class, so lineage can be walked back from any score row to its PDF.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from rag_pipeline import atomic
from rag_pipeline.ids import validate_slug


class ArtifactStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, asset: str, *keys: str, suffix: str) -> Path:
        """Path of one asset partition's file; keys are slugs (model, paper), validated here."""
        parts = [validate_slug(key, f"{asset} partition key") for key in keys]
        if not parts:
            parts = ["all"]
        return self.root / asset / Path(*parts[:-1]) / f"{parts[-1]}{suffix}"

    def exists(self, asset: str, *keys: str, suffix: str = ".parquet") -> bool:
        return self.path(asset, *keys, suffix=suffix).exists()

    def write_frame(self, asset: str, *keys: str, frame: pd.DataFrame) -> Path:
        return atomic.write_parquet(self.path(asset, *keys, suffix=".parquet"), frame)

    def read_frame(self, asset: str, *keys: str) -> pd.DataFrame:
        path = self.path(asset, *keys, suffix=".parquet")
        if not path.exists():
            raise FileNotFoundError(
                f"{asset} for {'/'.join(keys) or 'all'} has not been materialized yet ({path})"
            )
        return pd.read_parquet(path)

    def write_json(self, asset: str, *keys: str, obj: Any) -> Path:
        return atomic.write_json(self.path(asset, *keys, suffix=".json"), obj)

    def read_json(self, asset: str, *keys: str) -> Any:
        path = self.path(asset, *keys, suffix=".json")
        if not path.exists():
            raise FileNotFoundError(
                f"{asset} for {'/'.join(keys) or 'all'} has not been materialized yet ({path})"
            )
        return json.loads(path.read_text(encoding="utf-8"))

    def write_text(self, asset: str, *keys: str, text: str, suffix: str = ".md") -> Path:
        return atomic.write_text(self.path(asset, *keys, suffix=suffix), text)

    def read_text(self, asset: str, *keys: str, suffix: str = ".md") -> str:
        path = self.path(asset, *keys, suffix=suffix)
        if not path.exists():
            raise FileNotFoundError(
                f"{asset} for {'/'.join(keys) or 'all'} has not been materialized yet ({path})"
            )
        return path.read_text(encoding="utf-8")

    def read_all_frames(self, asset: str) -> pd.DataFrame:
        """Concatenate every stored partition of an asset (an empty frame when there is none)."""
        files = sorted((self.root / asset).rglob("*.parquet")) if (self.root / asset).exists() else []
        frames = [pd.read_parquet(f) for f in files]
        frames = [f for f in frames if not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
