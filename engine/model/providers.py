"""Choice of ONNX Runtime execution providers: preference order, availability, strictness.

Kept free of onnxruntime itself (availability is passed in) so the logic is testable on a machine
without a GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from datasentinel.engine.errors import ProviderError

log = logging.getLogger(__name__)

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEFAULT_PREFERENCE = (TENSORRT, CUDA, CPU)


@dataclass(frozen=True)
class TensorRTOptions:
    fp16: bool = False
    engine_cache_dir: Path | None = None


def select_providers(preferred: Sequence[str], available: Sequence[str], strict: bool) -> list[str]:
    """The preferred providers this onnxruntime build has, in preference order.

    Asking only for available providers keeps onnxruntime from warning about (or, in some builds,
    failing on) unknown ones. ``strict``: every preferred provider must be available.
    """
    if not preferred:
        raise ProviderError("no execution providers requested")
    chosen = [name for name in preferred if name in available]
    missing = [name for name in preferred if name not in available]
    if strict and missing:
        raise ProviderError(
            f"strict providers: {', '.join(missing)} not available in this onnxruntime build "
            f"(available: {', '.join(available)})"
        )
    if not chosen:
        raise ProviderError(
            f"none of {', '.join(preferred)} is available (available: {', '.join(available)})"
        )
    if missing:
        log.warning(
            "execution providers not available, skipped: %s (available: %s)",
            ", ".join(missing),
            ", ".join(available),
        )
    return chosen


def provider_options(providers: Sequence[str], trt: TensorRTOptions) -> list[dict[str, str]]:
    """Per-provider options, aligned with ``providers``."""
    options: list[dict[str, str]] = []
    for name in providers:
        if name == TENSORRT:
            opts = {"trt_fp16_enable": str(trt.fp16)}
            if trt.engine_cache_dir is not None:
                opts["trt_engine_cache_enable"] = "True"
                opts["trt_engine_cache_path"] = str(trt.engine_cache_dir)
            options.append(opts)
        else:
            options.append({})
    return options


def check_active(requested: Sequence[str], active: Sequence[str], strict: bool) -> str:
    """Compares what the session actually runs on with what was asked for; returns the provider in
    use. A provider that was available but failed to initialise (no driver, wrong CUDA) shows up
    here as a fallback: reported loudly, or refused when strict."""
    in_use = active[0] if active else CPU
    if in_use != requested[0]:
        message = f"execution provider {requested[0]} failed to start; fell back to {in_use}"
        if strict:
            raise ProviderError(f"strict providers: {message}")
        log.warning(message)
    return in_use
