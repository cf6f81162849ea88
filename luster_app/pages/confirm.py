"""/auth/confirm: the page a sign-in link opens; it uses the link once and goes on where the user was."""

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


def _confirm(context: AppContext, *, token: str, link_type: str) -> auth_service.SignedIn:
    with context.session() as session:
        return auth_service.confirm_magic_link(session=session, auth=context.auth, token=token, link_type=link_type)


class ConfirmState(AuthState):
    """Why a link did not work, when it did not."""

    failure: str = ""

    @rx.event
    async def confirm(self):
        """Local links carry `token`, Supabase's `token_hash` and `type`; either way, used once."""
        params = self.router.url.query_parameters
        self.failure = ""
        try:
            signed_in = await asyncio.to_thread(
                _confirm,
                app_context(),
                token=params.get("token_hash") or params.get("token") or "",
                link_type=params.get("type") or "magiclink",
            )
        except AuthError as exc:
            if self._signed_in_user() is not None:
                # This browser already used the link (a reload, a second click): just go on.
                return rx.redirect(self._next_path(params.get("next"), self.return_to))
            self.failure = str(exc)
            return None
        except ServiceError as exc:
            self.failure = str(exc)
            return None
        assert signed_in.tokens is not None
        self._remember_session(signed_in.tokens)
        self.signed_in, self.email = True, signed_in.user.email
        destination = self._next_path(signed_in.tokens.next_path, params.get("next"), self.return_to)
        self.return_to = ""
        return rx.redirect(destination)


def confirm_page() -> rx.Component:
    """Signing in…, or why the link failed with a way to get a new one."""
    return page_shell(
        rx.cond(
            ConfirmState.failure != "",
            rx.vstack(
                rx.callout(ConfirmState.failure, color_scheme="red", id="confirm-failure"),
                rx.link(rx.button("Get a new link"), href=routes.LOGIN, id="confirm-new-link"),
                spacing="3",
            ),
            rx.text("Signing you in…", id="confirm-pending"),
        ),
    )
