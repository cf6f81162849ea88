"""The core and the worker never import Reflex (DESIGN.md §1)."""

import pkgutil
import subprocess
import sys

import luster_app
from luster_app.migrations import ROOT

# The Reflex side of the package: the app module, its pages, components and UI state.
UI_MODULES = ("luster_app.luster_app", "luster_app.pages", "luster_app.components", "luster_app.state")


def _core_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(luster_app.__path__, "luster_app.")]
    return [n for n in names if not n.startswith(UI_MODULES)]


def test_core_and_worker_do_not_import_reflex() -> None:
    modules = _core_modules() + ["worker"]
    assert "luster_app.services.users" in modules
    code = "import importlib, sys\n" f"for m in {modules!r}: importlib.import_module(m)\n" "print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    imported = set(out.stdout.split())
    assert "luster_app.models" in imported
    assert not {m for m in imported if m == "reflex" or m.startswith("reflex.")}
