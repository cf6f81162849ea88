"""The Reflex app: pages plus the REST API mounted on the same backend."""

import reflex as rx

from luster_app.api import create_api
from luster_app.pages.landing import landing

app = rx.App(api_transformer=create_api(), theme=rx.theme(accent_color="amber", radius="medium"))
app.add_page(landing, route="/", title="Luster — listing-ready real-estate photos")
