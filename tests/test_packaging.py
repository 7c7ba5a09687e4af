"""The wheel holds every module of the three apps and each imports from the wheel alone, so a
package added to the source cannot be left out of an installed Cutout."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("webapp", "removal", "billing")

IMPORT_ALL = """
import importlib, os, sys
sys.path.insert(0, sys.argv[1])
os.environ["DJANGO_SETTINGS_MODULE"] = "webapp.settings"
import django
django.setup()
import webapp
assert webapp.__file__.startswith(sys.argv[1]), webapp.__file__
for name in sys.argv[2:]:
    module = importlib.import_module(name)
    assert module.__file__.startswith(sys.argv[1]), module.__file__
print("imported", len(sys.argv) - 2)
"""


def source_modules() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *APPS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {name.removesuffix(".py").replace("/", ".") for name in listed if name.endswith(".py")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("cutout-*.whl")
    return built


def test_the_wheel_holds_every_module_of_the_apps(wheel):
    with zipfile.ZipFile(wheel) as archive:
        packed = {
            name.removesuffix(".py").replace("/", ".")
            for name in archive.namelist()
            if name.endswith(".py")
        }
    assert source_modules() - packed == set()


def test_every_module_imports_from_the_wheel_alone(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    modules = sorted(
        name.removesuffix(".__init__")
        for name in source_modules()
        if ".migrations." not in name or name.endswith("__init__")
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_ALL, str(site), *modules],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={
            "DJANGO_SECRET_KEY": "packaging-test-secret-key-0123456789-abcdefghij",
            "CUTOUT_DATA_DIR": str(tmp_path / "var"),
            "PATH": "/usr/bin:/bin",
        },
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"imported {len(modules)}" in result.stdout
