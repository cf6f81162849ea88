"""The Reflex app: pages plus the REST API mounted on the same backend."""

import reflex as rx
from reflex.constants import Dirs
from reflex.utils.prerequisites import get_web_dir

from luster_app import routes
from luster_app.api import create_api
from luster_app.config import get_settings
from luster_app.context import default_context
from luster_app.guards import prepare_process
from luster_app.pages.account import account_page
from luster_app.pages.account_state import AccountState
from luster_app.pages.admin import admin_page
from luster_app.pages.admin_state import AdminState
from luster_app.pages.billing import BillingState, billing_cancel_page, billing_page, billing_success_page
from luster_app.pages.confirm import ConfirmState, confirm_page
from luster_app.pages.job import JobState, job_page
from luster_app.pages.landing import landing
from luster_app.pages.login import LoginState, login_page, logout_page
from luster_app.pages.shoot import ShootState, shoot_page
from luster_app.pages.shoot_brackets import ShootBracketState
from luster_app.pages.shoot_delivery import ShootDeliveryState
from luster_app.pages.shoot_own import ShootOwnState
from luster_app.pages.shoots import ShootsState, shoots_page
from luster_app.state import AuthState


def _prepare_backend() -> None:
    """Before serving: logging, refuse unsafe production settings, and build the auth provider
    so settings it cannot work with stop the app now, not at the first sign-in."""
    prepare_process(get_settings())
    default_context().auth  # noqa: B018 - building the provider is the check


app = rx.App(
    # The compiled pages this backend serves (`--single-port`): their inline scripts go into the CSP.
    api_transformer=create_api(frontend_dir=(get_web_dir() / Dirs.STATIC).resolve()),
    # The direct-upload helper and the shoot page's upload queue (the only JavaScript of the app).
    head_components=[rx.script(src="/direct_upload.js")],
    # Accessible contrast for the amber accent (see the file).
    stylesheets=["/luster.css"],
)
app.register_lifespan_task(_prepare_backend)
app.add_page(landing, route=routes.LANDING, title="Luster — listing-ready real-estate photos", on_load=AuthState.load_user)
app.add_page(login_page, route=routes.LOGIN, title="Sign in — Luster", on_load=LoginState.load)
app.add_page(confirm_page, route=routes.CONFIRM, title="Confirm sign-in — Luster", on_load=ConfirmState.load)
app.add_page(logout_page, route=routes.LOGOUT, title="Sign out — Luster", on_load=AuthState.sign_out)
app.add_page(shoot_page, route=routes.SHOOT, title="Shoot — Luster",
             on_load=[ShootState.load, ShootOwnState.load_refused, ShootBracketState.load_suggestions,
                      ShootDeliveryState.load_share])
app.add_page(shoots_page, route=routes.SHOOTS, title="Shoots — Luster", on_load=ShootsState.load)
app.add_page(job_page, route=routes.JOB, title="Job — Luster", on_load=JobState.load)
app.add_page(billing_success_page, route=routes.BILLING_SUCCESS, title="Payment — Luster",
             on_load=BillingState.start_success)
app.add_page(billing_cancel_page, route=routes.BILLING_CANCEL, title="Checkout cancelled — Luster",
             on_load=AuthState.require_sign_in)
app.add_page(billing_page, route=routes.BILLING, title="Billing — Luster", on_load=BillingState.load)
app.add_page(account_page, route=routes.ACCOUNT, title="Account — Luster", on_load=AccountState.load)
app.add_page(admin_page, route=routes.ADMIN, title="Admin — Luster", on_load=AdminState.load)
