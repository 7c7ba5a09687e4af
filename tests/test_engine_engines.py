"""removal/engines.py: one engine per process, built lazily from settings, clear errors."""

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from removal import active_engine
from removal.engine.local import LocalRemover
from removal.engine.types import RemovalOptions
from tests.support_engine import encode_image

ROOT = Path(__file__).resolve().parent.parent


def test_get_remover_gives_every_thread_the_same_engine(engine):
    seen = []
    threads = [
        threading.Thread(target=lambda: seen.append(active_engine.get_remover())) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 4 and all(remover is engine for remover in seen)
    assert isinstance(engine, LocalRemover) and engine.spec.name == "u2netp"


def test_a_missing_model_is_a_clear_error_when_the_engine_is_built(settings, tmp_path):
    settings.CUTOUT_MODELS_DIR = tmp_path
    with pytest.raises(active_engine.EngineUnavailableError, match="install_model u2netp"):
        active_engine.build_remover()


def test_an_unknown_model_is_a_clear_error(settings):
    settings.CUTOUT_MODEL = "u3net"
    with pytest.raises(active_engine.EngineUnavailableError, match="unknown model 'u3net'"):
        active_engine.build_remover()


def test_management_commands_run_without_any_model(tmp_path):
    env = {
        **os.environ,
        "CUTOUT_DATA_DIR": str(tmp_path),  # an empty data folder: no models at all
        "DJANGO_SECRET_KEY": "x" * 50,
        "CUTOUT_MODEL": "u2net",
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def _tiny_redness_model(path: Path, size: int = 1024) -> None:
    """A one-layer ONNX model with the shape of ISNet/BiRefNet-class models (one input of
    1x3x1024x1024, one output of 1x1x1024x1024, logits rather than probabilities): its
    "saliency" is how much redder than grey a pixel is (R - (G + B) / 2, after ImageNet
    normalisation). Built here, so the test needs no downloaded weights."""
    import onnx
    from onnx import TensorProto, helper

    weights = helper.make_tensor("w", TensorProto.FLOAT, [1, 3, 1, 1], [1.0, -0.5, -0.5])
    bias = helper.make_tensor("b", TensorProto.FLOAT, [1], [0.0])
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w", "b"], ["mask"])],
        "redness",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, size, size])],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def test_a_custom_onnx_model_is_a_setting_away(settings, tmp_path):
    _tiny_redness_model(tmp_path / "my-model.onnx")
    settings.CUTOUT_MODELS_DIR = tmp_path
    settings.CUTOUT_MODEL = "mine"
    settings.CUTOUT_CUSTOM_MODEL_FILE = "my-model.onnx"
    settings.CUTOUT_CUSTOM_MODEL_INPUT_SIZE = 1024
    settings.CUTOUT_CUSTOM_MODEL_NORMALISATION = "imagenet"
    remover = active_engine.build_remover()
    assert remover.spec.name == "mine" and remover.spec.sha256 is None
    assert remover.spec.input_size == 1024 and not remover.spec.divide_by_max
    # A red disc on grey, 3:2: the model's logits are min-max normalised into a map.
    yy, xx = np.mgrid[:400, :600]
    disc = np.hypot(yy - 200, xx - 300) < 120
    photo = np.full((400, 600, 3), 128, np.uint8)
    photo[disc] = (200, 30, 30)
    result = remover.remove(encode_image(photo), RemovalOptions(output_format="mask"))
    mask = np.asarray(Image.open(io.BytesIO(result.body)).convert("L"))
    inner = np.hypot(yy - 200, xx - 300) < 110
    outer = np.hypot(yy - 200, xx - 300) > 130
    assert mask[inner].min() == 255 and mask[outer].max() == 0
    settings.CUTOUT_CUSTOM_MODEL_NORMALISATION = "zscore"
    with pytest.raises(active_engine.EngineUnavailableError, match="NORMALISATION"):
        active_engine.build_remover()
