"""Where each stage's output lives: immutable versions, one current pointer per partition.

    <root>/<asset>/<partition keys...>/
        versions/<version>/data.parquet|.json|.md|.pdf   written once, never overwritten
        versions/<version>/manifest.json                 the versions of every input read
        current.json                                     the version the latest materialization wrote

The root is ``StatePaths.artifacts``: ``<state>/artifacts`` unless ``$RAG_PIPELINE_ARTIFACTS`` names
another path, a shared mount or any fsspec URL (``s3://bucket/prefix``, ``gs://…``, ``memory://…``).

A stage writes through :meth:`ArtifactStore.writing`: it reads its inputs through the same draft
(so the manifest records exactly which input versions it used), writes its files into a draft
directory, and only a complete draft becomes a version (its name is the content hash of its files
and inputs), after which ``current.json`` is replaced atomically. A failed stage leaves the
previous version current and no partial files. Old versions stay until ``rag-pipeline gc`` finds
nothing referencing them, so a score can always be explained with the inputs that produced it.

On a local root (a plain path, a mount) the draft is a hidden directory beside the versions and
becomes one by a directory rename; ``current.json`` is written then renamed. An object store has
no directory rename, so there the draft is a local temporary directory, hashed the same way, whose
files are uploaded with ``manifest.json`` last, and ``current.json`` is one single-object put. On
every filesystem a version directory without its manifest is incomplete: not a version to readers,
and removed by gc once older than the draft age. Files a library must open from disk (the PDF) are
downloaded once per version into ``StatePaths.artifact_cache`` (see :meth:`ArtifactStore.path`).

The Dagster assets, the CLI (`explain`, `report`, `gc`) and the tests all use this one class.
"""

from __future__ import annotations

import calendar
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import fsspec
import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from rag_pipeline import atomic
from rag_pipeline.hashing import canonical_json, sha256_bytes, sha256_file
from rag_pipeline.ids import validate_slug
from rag_pipeline.settings import ARTIFACTS_ENV, state_paths

DATA = "data"
CURRENT = "current.json"
MANIFEST = "manifest.json"
VERSIONS = "versions"
DRAFT_PREFIX = ".draft-"

# The fsspec implementations the usual object stores need (fsspec itself ships local, memory, http…).
PACKAGE_FOR_SCHEME = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs",
                      "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs", "adl": "adlfs"}
CREDENTIAL_VARIABLES = {"s3fs": "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
                        "gcsfs": "GOOGLE_APPLICATION_CREDENTIALS",
                        "adlfs": "AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_NAME / AZURE_STORAGE_ACCOUNT_KEY"}


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


class ArtifactRootError(ValueError):
    """The artifact store's root (``$RAG_PIPELINE_ARTIFACTS``) cannot be opened."""


def open_root(root: str | os.PathLike) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and base path of a store root: a local path or an fsspec URL."""
    text = os.fspath(root)
    scheme = text.split("://", 1)[0].split("::")[-1] if "://" in text else ""
    if scheme:
        parts = urlsplit(text.split("::")[-1])
        if parts.password is not None:
            shown = f"{parts.scheme}://***@{parts.hostname or ''}{parts.path}"
            variables = CREDENTIAL_VARIABLES.get(PACKAGE_FOR_SCHEME.get(scheme, ""), "the filesystem's own variables")
            raise ArtifactRootError(
                f"{ARTIFACTS_ENV}={shown}: the URL carries a password; credentials in the URL would end up in "
                f"logs and run metadata. Remove them and give them through the filesystem's own environment "
                f"variables instead ({variables})")
    try:
        fs, base = fsspec.core.url_to_fs(text)
    except ImportError as exc:
        package = PACKAGE_FOR_SCHEME.get(scheme)
        needed = f"the {package} package (pip install {package})" if package else f"its fsspec implementation ({exc})"
        raise ArtifactRootError(f"{ARTIFACTS_ENV}={text}: the {scheme}:// filesystem needs {needed}") from None
    except ValueError as exc:
        if "Protocol not known" not in str(exc):
            raise ArtifactRootError(f"{ARTIFACTS_ENV}={text}: {exc}") from None
        raise ArtifactRootError(
            f"{ARTIFACTS_ENV}={text}: unknown filesystem scheme {scheme!r}; use a local path or an fsspec URL "
            f"such as s3://bucket/prefix (package s3fs), gs://bucket/prefix (gcsfs) or az://container/prefix (adlfs)"
        ) from None
    return fs, base.rstrip("/") or "/"


class ArtifactStore:
    def __init__(self, root: str | Path, cache_dir: str | Path | None = None):
        self.fs, self.base = open_root(root)
        # A directory rename and a file rename are atomic only on a local (or mounted) filesystem.
        self.is_local = isinstance(self.fs, LocalFileSystem)
        self.url = self.base if self.is_local else self.fs.unstrip_protocol(self.base)
        self.root = self.location()
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None

    # -- layout ---------------------------------------------------------------------------------

    def location(self, *parts: str) -> Path | str:
        """Where ``<root>/<parts>`` is: a Path on a local store, the URL on a remote one (messages, lineage)."""
        path = self._join(self.base, *parts)
        return Path(path) if self.is_local else self.fs.unstrip_protocol(path)

    def partition_dir(self, asset: str, *keys: str) -> Path | str:
        return self.location(*self._relative(self._partition(asset, *keys)))

    def version_dir(self, asset: str, *keys: str, version: str | None = None) -> Path | str:
        return self.location(*self._relative(self._version(asset, keys, version)))

    def current_version(self, asset: str, *keys: str) -> str | None:
        try:
            return json.loads(self.fs.cat_file(self._join(self._partition(asset, *keys), CURRENT)))["version"]
        except FileNotFoundError:
            return None

    def current_ref(self, asset: str, *keys: str) -> ArtifactRef:
        version = self.current_version(asset, *keys)
        if version is None:
            raise NotMaterialized(f"{asset} for {'/'.join(keys) or 'all'} has not been materialized yet")
        return ArtifactRef(asset, tuple(keys), version)

    def path(self, asset: str, *keys: str, suffix: str, name: str = DATA, version: str | None = None) -> Path:
        """A local file holding ``name+suffix`` of the current (or the given) version of a partition:
        the stored file itself on a local store, a cached copy on a remote one (versions never change,
        so each file is downloaded once into ``StatePaths.artifact_cache``)."""
        if self.is_local:
            return Path(self._version(asset, keys, version)) / f"{name}{suffix}"
        stored = self._existing(asset, keys, f"{name}{suffix}", version)
        copy = self._cache_root().joinpath(*self._relative(stored))
        if not copy.exists():
            with atomic.atomic_path(copy) as partial:
                self.fs.get_file(stored, str(partial))
        return copy

    def url_of(self, asset: str, *keys: str, suffix: str, name: str = DATA, version: str | None = None) -> str:
        """Where the file is, for people (metadata, lineage): its path, or its URL on a remote store."""
        return str(self.location(*self._relative(self._version(asset, keys, version)), f"{name}{suffix}"))

    def exists(self, asset: str, *keys: str, suffix: str = ".parquet", name: str = DATA) -> bool:
        try:
            return self._exists(self._join(self._version(asset, keys, None), f"{name}{suffix}"))
        except NotMaterialized:
            return False

    def manifest(self, ref: ArtifactRef) -> dict:
        return json.loads(self.fs.cat_file(self._join(self._version(ref.asset, ref.keys, ref.version), MANIFEST)))

    # -- reading ----------------------------------------------------------------------------------

    def read_frame(self, asset: str, *keys: str, name: str = DATA, version: str | None = None) -> pd.DataFrame:
        with self.fs.open(self._existing(asset, keys, f"{name}.parquet", version), "rb") as handle:
            return pd.read_parquet(handle)

    def read_json(self, asset: str, *keys: str, name: str = DATA, version: str | None = None) -> Any:
        return json.loads(self._read_text(self._existing(asset, keys, f"{name}.json", version)))

    def read_text(self, asset: str, *keys: str, suffix: str = ".md", name: str = DATA, version: str | None = None) -> str:
        return self._read_text(self._existing(asset, keys, f"{name}{suffix}", version))

    def _read_text(self, path: str) -> str:
        # Text mode as Path.read_text: universal newlines, so every filesystem reads the same string.
        with self.fs.open(path, "r", encoding="utf-8") as handle:
            return handle.read()

    def partitions(self, asset: str) -> list[tuple[str, ...]]:
        """Every partition of an asset with a current version (retired ones included)."""
        return sorted(keys for found, keys in self._pointers(asset) if found == asset)

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
        """Complete stored versions of a partition, oldest first."""
        base = self._join(self._partition(asset, *keys), VERSIONS)
        files = set(self._find(base))
        names = [PurePosixPath(path).parent.name for path in files if _is_manifest(path, base)]
        return sorted(names, key=lambda version: (self._written_at(self._join(base, version, MANIFEST)), version))

    def all_refs(self) -> list[ArtifactRef]:
        """Every complete stored version of every partition of every asset."""
        refs = []
        for path in self._find(self.base):
            parts = self._relative(path)
            # <asset>/<keys...>/versions/<version>/manifest.json
            if len(parts) >= 4 and parts[-1] == MANIFEST and parts[-3] == VERSIONS and not parts[-2].startswith(DRAFT_PREFIX):
                keys = tuple(parts[1:-3])
                refs.append(ArtifactRef(parts[0], () if keys == ("all",) else keys, parts[-2]))
        return sorted(refs, key=lambda r: r.label)

    # -- writing ----------------------------------------------------------------------------------

    @contextmanager
    def writing(self, asset: str, *keys: str) -> Iterator[Draft]:
        """A draft version of one partition; on success it becomes a version and the current one."""
        partition = self._partition(asset, *keys)
        if self.is_local:
            drafts = Path(partition) / VERSIONS
            drafts.mkdir(parents=True, exist_ok=True)
            directory = drafts / f"{DRAFT_PREFIX}{uuid.uuid4().hex}"
            directory.mkdir()
        else:
            directory = Path(tempfile.mkdtemp(prefix=DRAFT_PREFIX))
        draft = Draft(self, asset, tuple(keys), directory)
        try:
            yield draft
            draft.commit()
        finally:
            if draft.dir.exists():
                shutil.rmtree(draft.dir, ignore_errors=True)

    def write_frame(self, asset: str, *keys: str, frame: pd.DataFrame) -> Path | str:
        """A version holding one table (tests and tools; stages record their inputs with ``writing``)."""
        with self.writing(asset, *keys) as draft:
            draft.write_frame(frame)
        return self._written(asset, keys, ".parquet")

    def write_json(self, asset: str, *keys: str, obj: Any) -> Path | str:
        with self.writing(asset, *keys) as draft:
            draft.write_json(obj)
        return self._written(asset, keys, ".json")

    def _written(self, asset: str, keys, suffix: str) -> Path | str:
        return self.path(asset, *keys, suffix=suffix) if self.is_local else self.url_of(asset, *keys, suffix=suffix)

    def _store_version(self, draft: Draft, files: list[str]) -> None:
        """Make a committed draft the version ``draft.version`` and point current at it."""
        partition = self._partition(draft.asset, *draft.keys)
        target = self._join(partition, VERSIONS, draft.version)
        if all(self._exists(self._join(target, name)) for name in [*files, MANIFEST]):
            pass  # identical content and inputs: the stored version stands, untouched
        elif self.is_local:
            if os.path.exists(target):  # damaged by hand (a file deleted): replaced by the complete draft
                shutil.rmtree(target)
            draft.dir.rename(target)
        else:
            # No directory rename here: the manifest, uploaded last, is what makes the version complete.
            for name in [*files, MANIFEST]:
                self.fs.put_file(str(draft.dir / name), self._join(target, name))
        pointer = {"version": draft.version, "asset": draft.asset, "keys": list(draft.keys)}
        if self.is_local:
            atomic.write_json(Path(partition) / CURRENT, pointer)
        else:
            self.fs.pipe_file(self._join(partition, CURRENT), atomic.json_text(pointer).encode("utf-8"))

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
        return [self.current_ref(asset, *(() if keys == ("all",) else keys)) for asset, keys in sorted(self._pointers())]

    def collect_garbage(self, keep: list[ArtifactRef] = (), dry_run: bool = False, draft_age_s: float = 3600) -> dict:
        """Remove versions that neither a current pointer nor ``keep`` reaches (directly or as an
        input), and drafts or incomplete uploads older than ``draft_age_s`` left by killed runs.
        Returns what was freed."""
        live = self.reachable([*self.current_refs(), *keep])
        removed, freed = [], 0
        for ref in self.all_refs():
            if ref in live:
                continue
            path = self._version(ref.asset, ref.keys, ref.version)
            freed += self.fs.du(path)
            removed.append(ref.label)
            if not dry_run:
                self.fs.rm(path, recursive=True)
        now = time.time()
        for path in self._incomplete():
            written = self._last_written(path)
            if draft_age_s <= 0 or (written is not None and now - written > draft_age_s):
                freed += self.fs.du(path)
                removed.append("/".join(self._relative(path)))
                if not dry_run:
                    try:
                        self.fs.rm(path, recursive=True)
                    except FileNotFoundError:  # its writer finished or cleaned up meanwhile
                        pass
        return {"removed": removed, "kept": len(live), "freed_bytes": freed, "dry_run": dry_run}

    # -- filesystem paths (fsspec's: no protocol, '/'-separated) ----------------------------------

    @staticmethod
    def _join(base: str, *parts: str) -> str:
        return "/".join([base.rstrip("/"), *parts]) if parts else base

    # Other workers write to the same store: ask it, never this process's listing cache (s3fs, gcsfs).
    def _exists(self, path: str) -> bool:
        self.fs.invalidate_cache(path)
        return self.fs.exists(path)

    def _find(self, path: str, **options) -> Any:
        self.fs.invalidate_cache(path)
        return self.fs.find(path, **options)

    def _relative(self, path: str) -> tuple[str, ...]:
        return PurePosixPath(path).relative_to(self.base).parts

    def _partition(self, asset: str, *keys: str) -> str:
        parts = [validate_slug(key, f"{asset} partition key") for key in keys] or ["all"]
        return self._join(self.base, asset, *parts)

    def _version(self, asset: str, keys, version: str | None) -> str:
        """The directory of a complete version (the current one unless given)."""
        version = version or self.current_version(asset, *keys)
        if version is None:
            raise NotMaterialized(f"{asset} for {'/'.join(keys) or 'all'} has not been materialized yet "
                                  f"({self.location(*self._relative(self._partition(asset, *keys)))})")
        path = self._join(self._partition(asset, *keys), VERSIONS, version)
        if not self._exists(self._join(path, MANIFEST)):
            raise NotMaterialized(f"{asset} for {'/'.join(keys) or 'all'}: version {version} is no longer stored "
                                  f"({self.location(*self._relative(path))})")
        return path

    def _existing(self, asset: str, keys, file_name: str, version: str | None) -> str:
        directory = self._version(asset, keys, version)
        path = self._join(directory, file_name)
        if not self._exists(path):
            raise NotMaterialized(f"{asset} for {'/'.join(keys) or 'all'} has no {file_name} "
                                  f"({self.location(*self._relative(directory))})")
        return path

    def _pointers(self, asset: str | None = None) -> list[tuple[str, tuple[str, ...]]]:
        """(asset, partition keys as stored, ``("all",)`` for none) of every current.json (of `asset`'s
        partitions only, when given: one listing of its directory, not of the whole store)."""
        found = []
        for path in self._find(self.base if asset is None else self._join(self.base, asset)):
            parts = self._relative(path)
            if len(parts) >= 3 and parts[-1] == CURRENT and not (len(parts) >= 4 and parts[-3] == VERSIONS):
                found.append((parts[0], tuple(parts[1:-1])))
        return found

    def _incomplete(self) -> list[str]:
        """Drafts and version directories without a manifest (a killed run, an interrupted upload)."""
        listing = self._find(self.base, withdirs=True, detail=True)
        files = {path for path, info in listing.items() if info["type"] == "file"}
        return sorted(path for path, info in listing.items()
                      if info["type"] == "directory" and PurePosixPath(path).parent.name == VERSIONS
                      and len(self._relative(path)) >= 3
                      and (PurePosixPath(path).name.startswith(DRAFT_PREFIX) or self._join(path, MANIFEST) not in files))

    def _modified(self, path: str) -> float | None:
        try:
            return self.fs.modified(path).timestamp()
        except (NotImplementedError, OSError, KeyError, AttributeError, ValueError):
            return None

    def _written_at(self, manifest_path: str) -> float:
        """When a version was completed: its manifest's modification time, else its created_at."""
        modified = self._modified(manifest_path)
        if modified is not None:
            return modified
        created = json.loads(self.fs.cat_file(manifest_path)).get("created_at", "1970-01-01T00:00:00Z")
        return float(calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")))

    def _last_written(self, directory: str) -> float | None:
        """The newest modification time of a directory and its files (None where none is known)."""
        times = [self._modified(path) for path in [directory, *self._find(directory)]]
        known = [t for t in times if t is not None]
        return max(known) if known else None

    def _cache_root(self) -> Path:
        cache = self._cache_dir or state_paths().artifact_cache
        return cache / sha256_bytes(self.url.encode("utf-8"))[:16]


def _is_manifest(path: str, versions_dir: str) -> bool:
    relative = PurePosixPath(path).relative_to(versions_dir).parts
    return len(relative) == 2 and relative[1] == MANIFEST and not relative[0].startswith(DRAFT_PREFIX)


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
        """A local file of the input (a cached copy on a remote store), for libraries that open paths."""
        return self.store.path(asset, *keys, suffix=suffix, name=name, version=self.input_ref(asset, *keys).version)

    def has_input(self, asset: str, *keys: str) -> bool:
        return self.store.current_version(asset, *keys) is not None

    # Outputs: always local files (a remote store uploads them on commit).
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
        self.store._store_version(self, manifest["files"])
        return self.version
