"""Where each stage's output lives on disk: immutable versions, one current pointer per partition.

    <state>/artifacts/<asset>/<partition keys...>/
        versions/<version>/data.parquet|.json|.md|.pdf   written once, never overwritten
        versions/<version>/manifest.json                 the versions of every input read
        current.json                                     the version the latest materialization wrote

A stage writes through :meth:`ArtifactStore.writing`: it reads its inputs through the same draft
(so the manifest records exactly which input versions it used), writes its files into a hidden
draft directory, and only a complete draft becomes a version (its name is the content hash of its
files and inputs), after which ``current.json`` is replaced atomically. A failed stage leaves the
previous version current and no partial files. Old versions stay until ``rag-pipeline gc`` finds
nothing referencing them, so a score can always be explained with the inputs that produced it.

The Dagster assets, the CLI (`explain`, `report`, `gc`) and the tests all use this one class.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rag_pipeline import atomic
from rag_pipeline.hashing import canonical_json, sha256_bytes, sha256_file
from rag_pipeline.ids import validate_slug

DATA = "data"
CURRENT = "current.json"
MANIFEST = "manifest.json"
VERSIONS = "versions"
DRAFT_PREFIX = ".draft-"


@dataclass(frozen=True)
class ArtifactRef:
    """One stored version of one partition of one asset."""

    asset: str
    keys: tuple[str, ...]
    version: str

    @property
    def label(self) -> str:
        return f"{self.asset}/{'/'.join(self.keys) or 'all'}@{self.version}"

    def as_dict(self) -> dict:
        return {"asset": self.asset, "keys": list(self.keys), "version": self.version}

    @classmethod
    def from_dict(cls, data: dict) -> ArtifactRef:
        return cls(data["asset"], tuple(data["keys"]), data["version"])


class NotMaterialized(FileNotFoundError):
    """The partition (or the requested version of it) is not stored."""


class ArtifactStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    # -- layout ---------------------------------------------------------------------------------

    def partition_dir(self, asset: str, *keys: str) -> Path:
        parts = [validate_slug(key, f"{asset} partition key") for key in keys] or ["all"]
        return self.root / asset / Path(*parts)

    def version_dir(self, asset: str, *keys: str, version: str | None = None) -> Path:
        version = version or self.current_version(asset, *keys)
        if version is None:
            raise NotMaterialized(f"{asset} for {'/'.join(keys) or 'all'} has not been materialized yet "
                                  f"({self.partition_dir(asset, *keys)})")
        path = self.partition_dir(asset, *keys) / VERSIONS / version
        if not path.is_dir():
            raise NotMaterialized(f"{asset} for {'/'.join(keys) or 'all'}: version {version} is no longer stored ({path})")
        return path

    def current_version(self, asset: str, *keys: str) -> str | None:
        pointer = self.partition_dir(asset, *keys) / CURRENT
        if not pointer.exists():
            return None
        return json.loads(pointer.read_text(encoding="utf-8"))["version"]

    def current_ref(self, asset: str, *keys: str) -> ArtifactRef:
        version = self.current_version(asset, *keys)
        if version is None:
            raise NotMaterialized(f"{asset} for {'/'.join(keys) or 'all'} has not been materialized yet")
        return ArtifactRef(asset, tuple(keys), version)

    def path(self, asset: str, *keys: str, suffix: str, name: str = DATA, version: str | None = None) -> Path:
        """The file ``name+suffix`` of the current (or the given) version of a partition."""
        return self.version_dir(asset, *keys, version=version) / f"{name}{suffix}"

    def exists(self, asset: str, *keys: str, suffix: str = ".parquet", name: str = DATA) -> bool:
        try:
            return self.path(asset, *keys, suffix=suffix, name=name).exists()
        except NotMaterialized:
            return False

    def manifest(self, ref: ArtifactRef) -> dict:
        return json.loads((self.version_dir(ref.asset, *ref.keys, version=ref.version) / MANIFEST).read_text(encoding="utf-8"))

    # -- reading ----------------------------------------------------------------------------------

    def read_frame(self, asset: str, *keys: str, name: str = DATA, version: str | None = None) -> pd.DataFrame:
        return pd.read_parquet(self._existing(asset, keys, f"{name}.parquet", version))

    def read_json(self, asset: str, *keys: str, name: str = DATA, version: str | None = None) -> Any:
        return json.loads(self._existing(asset, keys, f"{name}.json", version).read_text(encoding="utf-8"))

    def read_text(self, asset: str, *keys: str, suffix: str = ".md", name: str = DATA, version: str | None = None) -> str:
        return self._existing(asset, keys, f"{name}{suffix}", version).read_text(encoding="utf-8")

    def _existing(self, asset: str, keys, file_name: str, version: str | None) -> Path:
        path = self.version_dir(asset, *keys, version=version) / file_name
        if not path.exists():
            raise NotMaterialized(f"{asset} for {'/'.join(keys) or 'all'} has no {file_name} ({path.parent})")
        return path

    def partitions(self, asset: str) -> list[tuple[str, ...]]:
        """Every partition of an asset with a current version (retired ones included)."""
        base = self.root / asset
        if not base.exists():
            return []
        return sorted(tuple(p.parent.relative_to(base).parts) for p in base.rglob(CURRENT))

    def read_all_frames(self, asset: str, name: str = DATA, partitions: list[tuple[str, ...]] | None = None) -> pd.DataFrame:
        """The current table of every stored partition (or of ``partitions``), concatenated."""
        frames = []
        for keys in self.partitions(asset) if partitions is None else partitions:
            keys = () if keys == ("all",) else keys
            if self.exists(asset, *keys, name=name):
                frames.append(self.read_frame(asset, *keys, name=name))
        frames = [f for f in frames if not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def versions(self, asset: str, *keys: str) -> list[str]:
        """Stored versions of a partition, oldest first."""
        base = self.partition_dir(asset, *keys) / VERSIONS
        if not base.exists():
            return []
        return [p.name for p in sorted(base.iterdir(), key=lambda p: p.stat().st_mtime) if p.is_dir()]

    def all_refs(self) -> list[ArtifactRef]:
        """Every stored version of every partition of every asset."""
        refs = []
        if not self.root.exists():
            return refs
        for version_dir in self.root.glob(f"*/**/{VERSIONS}/*"):
            if version_dir.is_dir() and not version_dir.name.startswith(DRAFT_PREFIX):
                partition = version_dir.parent.parent
                parts = partition.relative_to(self.root).parts
                keys = tuple(parts[1:])
                refs.append(ArtifactRef(parts[0], () if keys == ("all",) else keys, version_dir.name))
        return sorted(refs, key=lambda r: r.label)

    # -- writing ----------------------------------------------------------------------------------

    @contextmanager
    def writing(self, asset: str, *keys: str) -> Iterator[Draft]:
        """A draft version of one partition; on success it becomes a version and the current one."""
        partition = self.partition_dir(asset, *keys)
        (partition / VERSIONS).mkdir(parents=True, exist_ok=True)
        draft = Draft(self, asset, tuple(keys), partition / VERSIONS / f"{DRAFT_PREFIX}{uuid.uuid4().hex}")
        draft.dir.mkdir()
        try:
            yield draft
            draft.commit()
        finally:
            if draft.dir.exists():
                shutil.rmtree(draft.dir, ignore_errors=True)

    def write_frame(self, asset: str, *keys: str, frame: pd.DataFrame) -> Path:
        """A version holding one table (tests and tools; stages record their inputs with ``writing``)."""
        with self.writing(asset, *keys) as draft:
            draft.write_frame(frame)
        return self.path(asset, *keys, suffix=".parquet")

    def write_json(self, asset: str, *keys: str, obj: Any) -> Path:
        with self.writing(asset, *keys) as draft:
            draft.write_json(obj)
        return self.path(asset, *keys, suffix=".json")

    # -- garbage collection -----------------------------------------------------------------------

    def reachable(self, roots: list[ArtifactRef]) -> set[ArtifactRef]:
        """``roots`` and every version they were built from, through the manifests."""
        seen: set[ArtifactRef] = set()
        stack = list(roots)
        while stack:
            ref = stack.pop()
            if ref in seen:
                continue
            seen.add(ref)
            try:
                inputs = self.manifest(ref).get("inputs", [])
            except (NotMaterialized, FileNotFoundError):
                continue
            stack.extend(ArtifactRef.from_dict(item) for item in inputs)
        return seen

    def current_refs(self) -> list[ArtifactRef]:
        refs = []
        for asset_dir in sorted(p for p in self.root.glob("*") if p.is_dir()) if self.root.exists() else []:
            for keys in self.partitions(asset_dir.name):
                keys = () if keys == ("all",) else keys
                refs.append(self.current_ref(asset_dir.name, *keys))
        return refs

    def collect_garbage(self, keep: list[ArtifactRef] = (), dry_run: bool = False, draft_age_s: float = 3600) -> dict:
        """Remove versions that neither a current pointer nor ``keep`` reaches (directly or as an
        input), and drafts older than ``draft_age_s`` left by killed runs. Returns what was freed."""
        live = self.reachable([*self.current_refs(), *keep])
        removed, freed = [], 0
        for ref in self.all_refs():
            if ref in live:
                continue
            path = self.version_dir(ref.asset, *ref.keys, version=ref.version)
            freed += _size(path)
            removed.append(ref.label)
            if not dry_run:
                shutil.rmtree(path)
        now = time.time()
        for draft in self.root.glob(f"*/**/{VERSIONS}/{DRAFT_PREFIX}*") if self.root.exists() else []:
            if now - draft.stat().st_mtime > draft_age_s:
                freed += _size(draft)
                removed.append(str(draft.relative_to(self.root)))
                if not dry_run:
                    shutil.rmtree(draft, ignore_errors=True)
        return {"removed": removed, "kept": len(live), "freed_bytes": freed, "dry_run": dry_run}


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Draft:
    """One version being written: read inputs through it (they are recorded), write files into it."""

    def __init__(self, store: ArtifactStore, asset: str, keys: tuple[str, ...], directory: Path):
        self.store, self.asset, self.keys, self.dir = store, asset, keys, directory
        self.inputs: dict[str, ArtifactRef] = {}
        self.version: str | None = None

    # Inputs: the current version of each is read once and recorded, so the manifest is exact.
    def input_ref(self, asset: str, *keys: str) -> ArtifactRef:
        label = f"{asset}/{'/'.join(keys)}"
        if label not in self.inputs:
            self.inputs[label] = self.store.current_ref(asset, *keys)
        return self.inputs[label]

    def record_input(self, ref: ArtifactRef) -> None:
        """An input the caller read itself (by this exact version)."""
        self.inputs[f"{ref.asset}/{'/'.join(ref.keys)}"] = ref

    def read_frame(self, asset: str, *keys: str, name: str = DATA) -> pd.DataFrame:
        return self.store.read_frame(asset, *keys, name=name, version=self.input_ref(asset, *keys).version)

    def read_json(self, asset: str, *keys: str, name: str = DATA) -> Any:
        return self.store.read_json(asset, *keys, name=name, version=self.input_ref(asset, *keys).version)

    def read_text(self, asset: str, *keys: str, suffix: str = ".md", name: str = DATA) -> str:
        return self.store.read_text(asset, *keys, suffix=suffix, name=name, version=self.input_ref(asset, *keys).version)

    def input_path(self, asset: str, *keys: str, suffix: str, name: str = DATA) -> Path:
        return self.store.path(asset, *keys, suffix=suffix, name=name, version=self.input_ref(asset, *keys).version)

    def has_input(self, asset: str, *keys: str) -> bool:
        return self.store.current_version(asset, *keys) is not None

    # Outputs.
    def file(self, suffix: str, name: str = DATA) -> Path:
        return self.dir / f"{name}{suffix}"

    def write_frame(self, frame: pd.DataFrame, name: str = DATA) -> None:
        frame.to_parquet(self.file(".parquet", name), index=False)

    def write_json(self, obj: Any, name: str = DATA) -> None:
        self.file(".json", name).write_text(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True, default=str), encoding="utf-8")

    def write_text(self, text: str, name: str = DATA, suffix: str = ".md") -> None:
        self.file(suffix, name).write_text(text, encoding="utf-8")

    def commit(self) -> str:
        """Name the draft by the hash of its files and inputs, make it a version, point current at it."""
        files = sorted(p for p in self.dir.iterdir() if p.is_file())
        inputs = [ref.as_dict() for _, ref in sorted(self.inputs.items())]
        self.version = sha256_bytes(canonical_json({"files": {p.name: sha256_file(p) for p in files}, "inputs": inputs})
                                    .encode("utf-8"))[:16]
        manifest = {"asset": self.asset, "keys": list(self.keys), "version": self.version, "inputs": inputs,
                    "files": [p.name for p in files], "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (self.dir / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        target = self.dir.parent / self.version
        if target.exists() and all((target / name).exists() for name in [*manifest["files"], MANIFEST]):
            shutil.rmtree(self.dir)  # identical content and inputs: the stored version stands, untouched
        else:
            if target.exists():  # damaged by hand (a file deleted): replaced by the complete draft
                shutil.rmtree(target)
            self.dir.rename(target)
        atomic.write_json(self.dir.parent.parent / CURRENT, {"version": self.version, "asset": self.asset, "keys": list(self.keys)})
        return self.version
