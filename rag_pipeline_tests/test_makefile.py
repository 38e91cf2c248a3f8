"""The Makefile's llama.cpp build flags follow the CPU: an instruction set the CPU lacks is never
compiled in (the wheel would die with "Illegal instruction" on its first model load)."""

from __future__ import annotations

import os
import platform
import subprocess

import pytest

from rag_pipeline.settings import REPO_ROOT

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="the CPU flags are read on x86-64 only")

AVX512_BASE = "avx512f avx512cd avx512vl avx512dq avx512bw"


def _build_args(cpu_flags: str) -> set[str]:
    """The -D arguments `make llama-args` prints for a /proc/cpuinfo "flags" line."""
    env = {name: value for name, value in os.environ.items() if name not in ("CMAKE_ARGS", "LLAMA_CMAKE_ARGS")}
    out = subprocess.run(["make", "-s", "--no-print-directory", "llama-args", f"CPU_FLAGS=flags : {cpu_flags}"],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True, env=env)
    return set(out.stdout.split())


def test_a_cpu_without_avx512_gets_no_avx512():
    # This machine's AMD EPYC flags, abridged: AVX2 and VAES, no AVX-512.
    args = _build_args("sse4_2 avx f16c fma bmi2 avx2 vaes vpclmulqdq")
    assert "-DGGML_AVX2=ON" in args
    assert not {arg for arg in args if "AVX512" in arg or "AVX_VNNI" in arg}


def test_avx512_needs_every_base_flag():
    assert "-DGGML_AVX512=ON" in _build_args(f"avx2 fma {AVX512_BASE}")
    for missing in AVX512_BASE.split():
        flags = " ".join(flag for flag in AVX512_BASE.split() if flag != missing)
        assert "-DGGML_AVX512=ON" not in _build_args(f"avx2 fma {flags}"), missing


def test_avx512_extensions_follow_their_own_flags():
    args = _build_args(f"avx2 {AVX512_BASE} avx512_vnni avx_vnni")
    assert {"-DGGML_AVX512=ON", "-DGGML_AVX512_VNNI=ON", "-DGGML_AVX_VNNI=ON"} <= args
    assert "-DGGML_AVX512_VBMI=ON" not in args and "-DGGML_AVX512_BF16=ON" not in args
    assert "-DGGML_AVX512_VBMI=ON" not in _build_args("avx2 avx512vbmi")  # not without the base set
