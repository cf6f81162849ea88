"""The Reflex app: pages plus the REST API mounted on the same backend."""

import reflex as rx

from luster_app.api import create_api
from luster_app.config import get_settings
from luster_app.guards import prepare_process
from luster_app.pages.landing import landing


def _prepare_backend() -> None:
    """Each backend worker, before it serves: logging, then refuse unsafe production settings."""
    prepare_process(get_settings())


app = rx.App(api_transformer=create_api(), theme=rx.theme(accent_color="amber", radius="medium"))
app.register_lifespan_task(_prepare_backend)
app.add_page(landing, route="/", title="Luster — listing-ready real-estate photos")
