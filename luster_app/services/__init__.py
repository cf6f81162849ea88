"""Service functions: keyword-only, each owns its transaction; the API, UI and worker share them."""
