"""The default model in the precision the engine picks on this machine: what production runs
(u2net; bfloat16 through OpenVINO on a CPU with native bfloat16, float32 elsewhere). The rest
of the suite runs u2netp for speed."""

import pytest
from django.conf import settings
from skimage import data as skdata

from removal.engine import local, registry, segment
from removal.engine.types import RemovalOptions
from tests.support_ci import require
from tests.support_engine import encode_image

U2NET = registry.get_spec("u2net")


def _engine(precision: str) -> local.LocalRemover:
    require(
        "the default model (python manage.py install_model u2net)",
        U2NET.path(settings.CUTOUT_MODELS_DIR).is_file(),
    )
    return local.LocalRemover.from_name(
        "u2net", settings.CUTOUT_MODELS_DIR, threads=2, precision=precision
    )


@pytest.fixture(scope="module")
def default_engine() -> local.LocalRemover:
    return _engine("auto")


def test_the_default_model_runs_in_bf16_where_the_cpu_has_it(default_engine):
    assert default_engine.segmenter.precision == ("bf16" if segment.bf16_here() else "f32")


def test_the_default_model_keeps_the_cat_whole_and_opaque(default_engine):
    """skimage's chelsea: the face opaque (no background through the fur between the eyes and
    down to the nose), the wall at the top right clear."""
    alpha = default_engine.analyse(encode_image(skdata.chelsea()), RemovalOptions()).alpha
    assert (alpha[100:250, 60:300] >= 128).mean() > 0.99
    assert alpha[60:200, 150:330].min() >= 250
    assert (alpha[0:40, 400:451] < 128).mean() > 0.9


def test_bf16_and_f32_cut_outs_of_the_default_model_agree(default_engine):
    require(
        "onnxruntime-openvino and a CPU with native bfloat16 (AMX, AVX-512 BF16)",
        default_engine.segmenter.precision == "bf16",
    )
    float32 = _engine("f32")  # the float32 session lives for this test only
    for photo in (skdata.chelsea(), skdata.coffee(), skdata.astronaut()):
        data = encode_image(photo)
        a = default_engine.analyse(data, RemovalOptions()).alpha >= 128
        b = float32.analyse(data, RemovalOptions()).alpha >= 128
        assert (a & b).sum() / (a | b).sum() > 0.98
