"""The engine is plain Python: importing every module of removal/engine pulls in no Django."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import removal.engine

ROOT = Path(__file__).resolve().parent.parent


def test_no_engine_module_imports_django():
    modules = [f"removal.engine.{m.name}" for m in pkgutil.iter_modules(removal.engine.__path__)]
    assert "removal.engine.local" in modules and "removal.engine.decode" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(','.join(leaked))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_no_engine_source_mentions_a_django_import():
    for path in Path(removal.engine.__path__[0]).glob("*.py"):
        text = path.read_text()
        assert "import django" not in text and "from django" not in text, path.name
