"""Reflex configuration: the app module, one port, the state manager for scale-out, allowed origins."""

from urllib.parse import urlsplit

import reflex as rx

from luster_app.config import get_settings

_settings = get_settings()


def _allowed_origins() -> tuple[str, ...]:
    """Outside development, only APP_URL's origin may open the websocket (Reflex's default is `*`)."""
    if _settings.luster_env == "development":
        return ("*",)
    app_url = urlsplit(_settings.app_url)
    return (f"{app_url.scheme}://{app_url.netloc}",)


config = rx.Config(
    app_name="luster_app",
    # One port serves the UI and the API (`reflex run --single-port`), as hosts like Railway expect.
    backend_port=_settings.port,
    frontend_port=_settings.port,
    # Several app replicas share user sessions through Redis when REDIS_URL is set.
    redis_url=_settings.redis_url or None,
    cors_allowed_origins=_allowed_origins(),
    trusted_proxy_hops=_settings.trusted_proxy_hops,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    disable_plugins=[rx.plugins.SitemapPlugin],
    # The theme lives here, not in `rx.App(theme=...)`, which Reflex deprecates.
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="amber", radius="medium"))],
)
