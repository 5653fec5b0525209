"""Execution provider choice, with availability faked (no GPU here)."""

import logging

import pytest

from datasentinel.engine.errors import ProviderError
from datasentinel.engine.model.providers import (
    CPU,
    CUDA,
    DEFAULT_PREFERENCE,
    TENSORRT,
    TensorRTOptions,
    check_active,
    provider_options,
    select_providers,
)


def test_all_available_keeps_preference_order():
    available = [CPU, CUDA, TENSORRT]
    assert select_providers(DEFAULT_PREFERENCE, available, strict=False) == [TENSORRT, CUDA, CPU]


def test_cpu_only_build_asks_only_for_cpu_and_warns(caplog):
    with caplog.at_level(logging.WARNING):
        chosen = select_providers(DEFAULT_PREFERENCE, [CPU, "AzureExecutionProvider"], strict=False)
    assert chosen == [CPU]
    assert TENSORRT in caplog.text and CUDA in caplog.text


def test_cuda_build_without_tensorrt_falls_to_cuda_then_cpu():
    assert select_providers(DEFAULT_PREFERENCE, [CUDA, CPU], strict=False) == [CUDA, CPU]


def test_strict_refuses_a_missing_provider():
    with pytest.raises(ProviderError, match="TensorrtExecutionProvider"):
        select_providers(DEFAULT_PREFERENCE, [CUDA, CPU], strict=True)


def test_strict_accepts_when_everything_asked_is_there():
    assert select_providers([CPU], [CPU, CUDA], strict=True) == [CPU]


def test_nothing_available_is_an_error():
    with pytest.raises(ProviderError, match="none of"):
        select_providers([TENSORRT], [CPU], strict=False)


def test_session_fallback_is_reported(caplog):
    with caplog.at_level(logging.WARNING):
        assert check_active([TENSORRT, CPU], [CPU], strict=False) == CPU
    assert "fell back to CPUExecutionProvider" in caplog.text


def test_session_fallback_is_refused_when_strict():
    with pytest.raises(ProviderError, match="fell back"):
        check_active([CUDA, CPU], [CPU], strict=True)


def test_tensorrt_options_carry_fp16_and_cache(tmp_path):
    options = provider_options(
        [TENSORRT, CPU], TensorRTOptions(fp16=True, engine_cache_dir=tmp_path)
    )
    assert options[0] == {
        "trt_fp16_enable": "True",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(tmp_path),
    }
    assert options[1] == {}
