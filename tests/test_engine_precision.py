"""The model's precision: bfloat16 through onnxruntime's OpenVINO provider where the CPU has it
natively and the model was measured to hold in it, float32 on the CPU provider otherwise."""

import dataclasses

import numpy as np
import pytest
from django.conf import settings
from skimage import data as skdata

from removal import active_engine
from removal.engine import registry, segment
from tests.support_ci import require

U2NETP = registry.get_spec("u2netp")


def _model_path() -> str:
    return str(U2NETP.path(settings.CUTOUT_MODELS_DIR))


def test_native_bf16_reads_the_cpus_flags(tmp_path):
    amx = tmp_path / "amx"
    amx.write_text("flags\t\t: fpu sse2 avx512f amx_bf16 amx_tile\n")
    plain = tmp_path / "plain"
    plain.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    assert segment.native_bf16(amx)
    assert not segment.native_bf16(plain)
    assert not segment.native_bf16(tmp_path / "missing")


def test_auto_runs_bf16_only_for_a_model_measured_to_hold_in_it():
    assert segment.resolve_precision("auto", U2NETP) == "f32"  # u2netp lost IoU in bf16
    measured = dataclasses.replace(U2NETP, bf16=True)
    assert segment.resolve_precision("auto", measured) == ("bf16" if segment.bf16_here() else "f32")
    assert segment.resolve_precision("f32", measured) == "f32"
    assert registry.get_spec("u2net").bf16


def test_an_unknown_precision_is_refused():
    with pytest.raises(segment.PrecisionUnavailableError, match="auto, bf16, f32"):
        segment.resolve_precision("fp8", U2NETP)


def test_an_unknown_precision_setting_makes_the_engine_unavailable(settings):
    settings.CUTOUT_INFERENCE_PRECISION = "fp8"
    with pytest.raises(active_engine.EngineUnavailableError, match="fp8"):
        active_engine.build_local()


def test_f32_runs_on_the_cpu_provider():
    segmenter = segment.Segmenter(_model_path(), U2NETP, threads=1, precision="f32")
    assert segmenter.precision == "f32"
    assert segmenter.session.get_providers() == [segment.CPU]


def test_the_bf16_path_agrees_with_the_f32_path_on_real_photos():
    """bf16 asked for explicitly runs through OpenVINO; its maps of the same photos match
    float32's where it matters (u2netp, the small model: bigger differences than u2net's)."""
    require(
        "onnxruntime-openvino and a CPU with native bfloat16 (AMX, AVX-512 BF16)",
        segment.bf16_here(),
    )
    f32 = segment.Segmenter(_model_path(), U2NETP, threads=2, precision="f32")
    bf16 = segment.Segmenter(_model_path(), U2NETP, threads=2, precision="bf16")
    assert bf16.precision == "bf16"
    assert bf16.session.get_providers()[0] == segment.OPENVINO
    for photo in (skdata.chelsea(), skdata.coffee(), skdata.astronaut()):
        a, b = f32.predict(photo), bf16.predict(photo)
        assert a.shape == b.shape == (U2NETP.input_size, U2NETP.input_size)
        assert b.dtype == np.float32 and 0.0 <= b.min() and b.max() <= 1.0
        iou = ((a >= 0.5) & (b >= 0.5)).sum() / ((a >= 0.5) | (b >= 0.5)).sum()
        assert iou > 0.95
        assert np.abs(a - b).mean() < 0.03
