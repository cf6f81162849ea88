"""Luster's own Reflex config (REDIS_URL and all), serving the one-counter test app instead of Luster's pages."""

import importlib.util
import os
from pathlib import Path

# The repository root: LUSTER_ROOT when the app was copied elsewhere to build, else two levels up.
_root = Path(os.environ.get("LUSTER_ROOT") or Path(__file__).resolve().parents[2])
_spec = importlib.util.spec_from_file_location("luster_rxconfig", _root / "rxconfig.py")
_luster = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_luster)

# Exactly the settings Luster's rxconfig gave Reflex (Reflex records them), with only the app swapped.
_given = {name: getattr(_luster.config, name) for name in _luster.config._non_default_attributes}
config = type(_luster.config)(**{**_given, "app_name": "counter_app"})
