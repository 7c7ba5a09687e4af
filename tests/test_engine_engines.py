"""removal/engines.py: one engine per process, built lazily from settings, clear errors."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from removal import active_engine
from removal.engine.local import LocalRemover
from removal.engine.types import RemovalOptions

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


def test_a_custom_onnx_model_is_a_setting_away(settings, tmp_path, chelsea_jpeg):
    source = Path(settings.CUTOUT_MODELS_DIR) / "u2netp.onnx"
    (tmp_path / "my-model.onnx").write_bytes(source.read_bytes())
    settings.CUTOUT_MODELS_DIR = tmp_path
    settings.CUTOUT_MODEL = "mine"
    settings.CUTOUT_CUSTOM_MODEL_FILE = "my-model.onnx"
    settings.CUTOUT_CUSTOM_MODEL_INPUT_SIZE = 320
    settings.CUTOUT_CUSTOM_MODEL_NORMALISATION = "u2net"
    remover = active_engine.build_remover()
    assert remover.spec.name == "mine" and remover.spec.sha256 is None
    assert remover.spec.input_size == 320 and remover.spec.divide_by_max
    result = remover.remove(chelsea_jpeg, RemovalOptions(output_format="mask"))
    assert result.result_foreground.width > 100
    settings.CUTOUT_CUSTOM_MODEL_NORMALISATION = "zscore"
    with pytest.raises(active_engine.EngineUnavailableError, match="NORMALISATION"):
        active_engine.build_remover()
