"""Where a model comes from (a local directory or a hub id) and what identifies its weights.

Loading by hub id on a machine without the hub must fail fast with ``ModelUnavailableError``:
the libraries retry for over a minute before giving up, so a cheap probe runs first.
"""

from __future__ import annotations

import os
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.hashing import content_hash, sha256_file

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
# Files that determine a local model's outputs (weights, configs, tokenizer); exported runtimes
# (onnx/openvino copies of the same weights) do not, and can be gigabytes.
FINGERPRINT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".json", ".txt", ".model"}
FINGERPRINT_SKIP_DIRS = {"onnx", "openvino", ".git", ".cache", "__pycache__"}
PROBE_TIMEOUT_S = 5.0

_fingerprints: dict[tuple, str] = {}


def package_version(name: str) -> str:
    """Installed version of a distribution, or "unknown" (signatures must never fail on this)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def hub_offline() -> bool:
    """True when the Hugging Face hub is switched off for this process (HF_HUB_OFFLINE=1)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_model_source(model: str) -> str:
    """Return ``model`` as a loadable source: an existing local directory (absolute) or a hub id.

    Raises ModelUnavailableError when it is a path that does not exist, or a hub id that is
    neither in the local hub cache nor reachable (checked with a short probe instead of the
    libraries' minute of retries).
    """
    if not model or not str(model).strip():
        raise ModelUnavailableError(str(model), "empty model name")
    model = str(model).strip()
    local = Path(model).expanduser()
    if local.exists():
        return str(local.resolve())
    if not HUB_ID.match(model) or model.startswith((".", "/", "~")):
        raise ModelUnavailableError(model, f"local path {local} does not exist")
    if _in_hub_cache(model):
        return model
    if hub_offline():
        raise ModelUnavailableError(
            model,
            f"no local directory {local} and not in the local hub cache (HF_HUB_OFFLINE is set)",
        )
    try:
        import huggingface_hub

        huggingface_hub.model_info(model, timeout=PROBE_TIMEOUT_S)
    except Exception as exc:  # network, DNS, 404, auth: any of them means "cannot load"
        raise ModelUnavailableError(
            model, f"the model hub did not answer for it ({type(exc).__name__}: {exc})"
        ) from exc
    return model


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except (ValueError, OSError):  # an invalid repo id, an unreadable cache
        return False


def model_revision(source: str) -> str:
    """What identifies the weights: the hub commit for a hub id, a content hash for a local dir.

    A local fingerprint hashes every weight/config/tokenizer file (path, size, sha256), computed
    once per directory and process; "unknown" when a hub model is not in the cache.
    """
    local = Path(source)
    if local.is_dir():
        return "sha256:" + _directory_fingerprint(local)
    if local.is_file():
        stat = local.stat()
        key = (str(local.resolve()), ((stat.st_size, stat.st_mtime_ns),))
        if key not in _fingerprints:  # a GGUF is gigabytes: hashed once per file version and process
            _fingerprints[key] = sha256_file(local)
        return "sha256:" + _fingerprints[key]
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, "config.json")
    except (ValueError, OSError):  # an invalid repo id, an unreadable cache
        cached = None
    if isinstance(cached, str):
        commit = Path(cached).parent.name
        if COMMIT.match(commit):
            return commit
    return "unknown"


def _directory_fingerprint(directory: Path) -> str:
    files = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part in FINGERPRINT_SKIP_DIRS for part in relative.parts[:-1]):
            continue
        if path.is_file() and path.suffix in FINGERPRINT_SUFFIXES:
            files.append(path)
    # Hash the contents once per set of (name, size, mtime): a file rewritten in place is seen,
    # an unchanged directory costs only a stat per file.
    key = (str(directory.resolve()), tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if key not in _fingerprints:
        entries = [[p.relative_to(directory).as_posix(), p.stat().st_size, sha256_file(p)] for p in files]
        _fingerprints[key] = content_hash(entries, length=32)
    return _fingerprints[key]
