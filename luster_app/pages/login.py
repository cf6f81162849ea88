"""Sign-in: type an email, get a link ("check your email"); and the sign-out route."""

from __future__ import annotations

import asyncio

import reflex as rx

from luster_app.components.shell import page_shell, submit_button
from luster_app.context import AppContext
from luster_app.services import auth as auth_service
from luster_app.services.errors import ServiceError
from luster_app.state import AuthState, app_context


def _request_link(context: AppContext, *, email: str, client_address: str, next_path: str, browser_nonce: str) -> None:
    with context.session() as session:
        auth_service.request_magic_link(
            session=session,
            auth=context.auth,
            settings=context.settings,
            email=email,
            client_address=client_address,
            next_path=next_path,
            browser_nonce=browser_nonce,
        )


class LoginState(AuthState):
    """The email form and what happened to it."""

    sent_to: str = ""
    error: str = ""
    sending: bool = False

    @rx.event
    def load(self):
        """Signed-in visitors go straight on; others see a fresh form."""
        self.sent_to, self.error = "", ""
        if self._signed_in_user() is not None:
            return rx.redirect(self._next_path(self.router.url.query_parameters.get("next")))

    @rx.event
    async def submit(self, form_data: dict):
        """Ask for a link; the answer is the same whether or not the address has an account."""
        email = str(form_data.get("email", "")).strip()
        next_path = self._next_path(self.router.url.query_parameters.get("next"))
        browser_nonce = self.signin_nonce or auth_service.new_browser_nonce()
        self.sending, self.error = True, ""
        yield
        try:
            await asyncio.to_thread(
                _request_link,
                app_context(),
                email=email,
                client_address=self.router.session.client_ip,
                next_path=next_path,
                browser_nonce=browser_nonce,
            )
        except ServiceError as exc:
            self.error = str(exc)
        else:
            self.sent_to, self.return_to, self.signin_nonce = email.lower(), next_path, browser_nonce
        finally:
            self.sending = False


def _email_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.input(name="email", type="email", placeholder="you@example.com", required=True, size="3",
                     width="100%", id="login-email"),
            submit_button("Email me a sign-in link", size="3", loading=LoginState.sending, id="login-submit"),
            rx.cond(LoginState.error != "", rx.callout(LoginState.error, color_scheme="red", id="login-error")),
            spacing="3",
            width="100%",
        ),
        on_submit=LoginState.submit,
        reset_on_submit=False,
        width="100%",
    )


def _check_your_email() -> rx.Component:
    return rx.callout(
        rx.text("Check your email. We sent a sign-in link to ", rx.text.strong(LoginState.sent_to),
                ". It works once, for 30 minutes, in this browser."),
        icon="mail",
        color_scheme="green",
        id="login-sent",
    )


def login_page() -> rx.Component:
    """/login: email in, "check your email" out."""
    return page_shell(
        rx.heading("Sign in to Luster", size="7", id="login-title"),
        rx.text("No password: we email you a link that signs you in.", color_scheme="gray"),
        rx.box(rx.cond(LoginState.sent_to != "", _check_your_email(), _email_form()), max_width="28em", width="100%"),
    )


def logout_page() -> rx.Component:
    """/logout: its on_load signs out and goes to the landing page."""
    return page_shell(rx.text("Signing you out…", id="logout-message"))
