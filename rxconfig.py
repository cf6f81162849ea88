"""Reflex configuration: the app module, one port, and the state manager for scale-out."""

import reflex as rx

from luster_app.config import get_settings

_settings = get_settings()

config = rx.Config(
    app_name="luster_app",
    # One port serves the UI and the API (`reflex run --single-port`), as hosts like Railway expect.
    backend_port=_settings.port,
    frontend_port=_settings.port,
    # Several app replicas share user sessions through Redis when REDIS_URL is set.
    redis_url=_settings.redis_url or None,
    # In production only the app's own origin may open the websocket or call the API from a browser.
    cors_allowed_origins=(_settings.app_url,) if _settings.is_production else ("*",),
    telemetry_enabled=False,
    show_built_with_reflex=False,
    disable_plugins=[rx.plugins.SitemapPlugin],
)
