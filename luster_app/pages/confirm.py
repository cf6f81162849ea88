"""/auth/confirm: the page a sign-in link opens. It names the account and signs in only on a click,
and only in the browser that asked for the link (against login CSRF: a link someone else sent
must not sign this browser into their account, silently or not)."""

from __future__ import annotations

import asyncio

import reflex as rx

from luster_app import routes
from luster_app.auth import AuthError
from luster_app.components.shell import page_shell
from luster_app.context import AppContext
from luster_app.services import auth as auth_service
from luster_app.services.errors import ServiceError
from luster_app.state import AuthState, app_context


def _check(context: AppContext, *, token: str, link_type: str, browser_nonce: str) -> str:
    with context.session() as session:
        return auth_service.check_browser_link(
            session=session, auth=context.auth, token=token, link_type=link_type, browser_nonce=browser_nonce
        )


def _confirm(context: AppContext, *, token: str, link_type: str, browser_nonce: str) -> auth_service.SignedIn:
    with context.session() as session:
        return auth_service.confirm_browser_link(
            session=session, auth=context.auth, token=token, link_type=link_type, browser_nonce=browser_nonce
        )


class ConfirmState(AuthState):
    """The account a link signs into, or why it cannot be used here."""

    account: str = ""
    failure: str = ""
    signing_in: bool = False

    def _link(self) -> dict[str, str]:
        # Local links carry `token`, Supabase's `token_hash` and `type`.
        params = self.router.url.query_parameters
        return {
            "token": params.get("token_hash") or params.get("token") or "",
            "link_type": params.get("type") or "magiclink",
            "browser_nonce": self.signin_nonce,
        }

    def _fail(self, exc: ServiceError) -> None:
        self.account, self.failure = getattr(exc, "email", None) or "", str(exc)

    @rx.event
    async def load(self):
        """Check the link without using it: opening the page signs nobody in."""
        self.account, self.failure, self.signing_in = "", "", False
        try:
            self.account = await asyncio.to_thread(_check, app_context(), **self._link())
        except auth_service.OtherBrowser as exc:
            self._fail(exc)
        except AuthError as exc:
            if self._signed_in_user() is not None:
                # This browser already used the link (a reload, a second click): just go on.
                return rx.redirect(self._next_path(self.router.url.query_parameters.get("next"), self.return_to))
            self._fail(exc)
        except ServiceError as exc:
            self._fail(exc)
        return None

    @rx.event
    async def sign_in(self):
        """The click: use the link, once, for the account the page named."""
        self.signing_in = True
        yield
        try:
            signed_in = await asyncio.to_thread(_confirm, app_context(), **self._link())
        except ServiceError as exc:
            self._fail(exc)
            return
        finally:
            self.signing_in = False
        assert signed_in.tokens is not None
        self._remember_session(signed_in.tokens)
        self.signed_in, self.email, self.signin_nonce = True, signed_in.user.email, ""
        destination = self._next_path(signed_in.tokens.next_path, self.router.url.query_parameters.get("next"),
                                      self.return_to)
        self.return_to = ""
        yield rx.redirect(destination)


def _ask_to_sign_in() -> rx.Component:
    return rx.vstack(
        rx.heading("Sign in to Luster", size="7"),
        rx.text("This link signs you in as ", rx.text.strong(ConfirmState.account, id="confirm-email"), "."),
        rx.button("Sign in as ", ConfirmState.account, size="3", on_click=ConfirmState.sign_in,
                  loading=ConfirmState.signing_in, id="confirm-sign-in"),
        rx.text("Not you? Close this page: nothing happens until you click.", color_scheme="gray", size="2"),
        spacing="4",
    )


def confirm_page() -> rx.Component:
    """Sign in as <email> (one click), or why the link cannot be used here, with a way to get a new one."""
    return page_shell(
        rx.cond(
            ConfirmState.failure != "",
            rx.vstack(
                rx.callout(ConfirmState.failure, color_scheme="red", id="confirm-failure"),
                rx.cond(ConfirmState.account != "",
                        rx.text("The link is for ", rx.text.strong(ConfirmState.account), ".", id="confirm-other-account")),
                rx.link(rx.button("Get a new link"), href=routes.LOGIN, id="confirm-new-link"),
                spacing="3",
            ),
            rx.cond(ConfirmState.account != "", _ask_to_sign_in(), rx.text("Checking your link…", id="confirm-pending")),
        ),
    )
