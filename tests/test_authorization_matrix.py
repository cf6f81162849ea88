"""The authorisation matrix: every route of the API, called by Alice with Bob's object ids.

Each route is listed once, by how another user's data could reach it. A route that names an
object answers 404 for someone else's (the same as for an id that does not exist) and changes
nothing of Bob's; every other answer carries none of Bob's identifiers. A route added to the API
without a line here fails `test_every_route_is_in_the_matrix`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from luster_app.api import create_api
from luster_app.api.deps import UncheckedCaller, api_router
from luster_app.context import AppContext
from tests.tenants import Tenant, TwoTenants, leaked, tenant_worlds, two_tenants  # noqa: F401  (fixture)


@dataclass(frozen=True)
class Probe:
    """One request: method, URL (path and query) and keyword arguments for the test client."""

    method: str
    url: str
    kwargs: dict[str, Any]


def probe(method: str, url: str, **kwargs: Any) -> Callable[[TwoTenants], Probe]:
    """A request built from the tenants: `{name}` in the URL and in JSON values is Bob's `name`."""

    def build(tenants: TwoTenants) -> Probe:
        ids = vars(tenants.victim)

        def fill(value: Any) -> Any:
            if isinstance(value, list):
                return [fill(item) for item in value]
            return value.format(**ids) if isinstance(value, str) else value

        body = {key: fill(value) for key, value in kwargs.get("json", {}).items()}
        return Probe(method, fill(url), {**kwargs, "json": body} if "json" in kwargs else kwargs)

    return build


# Routes naming one of Bob's objects: 404 for Alice, and not 404 for Bob himself.
OTHERS_OBJECT = {
    ("GET", "/api/shoots/{shoot_id}/assets"): probe("GET", "/api/shoots/{shoot_id}/assets"),
    ("POST", "/api/uploads/presign"): probe(
        "POST", "/api/uploads/presign",
        json={"shoot_id": "{shoot_id}", "filename": "x.jpg", "content_type": "image/jpeg", "size": 100},
    ),
    ("POST", "/api/uploads/{asset_id}/complete"): probe("POST", "/api/uploads/{ready_asset_id}/complete"),
    ("GET", "/api/billing/sessions/{session_id}"): probe("GET", "/api/billing/sessions/{checkout_session_id}"),
    ("POST", "/api/jobs"): probe("POST", "/api/jobs", json={"asset_id": "{ready_asset_id}", "preset": "enhance"}),
    ("POST", "/api/jobs/batch"): probe("POST", "/api/jobs/batch", json={"asset_ids": ["{ready_asset_id}"], "preset": "enhance"}),
    ("GET", "/api/jobs/{job_id}"): probe("GET", "/api/jobs/{job_id}"),
    ("POST", "/api/jobs/{job_id}/accept"): probe("POST", "/api/jobs/{job_id}/accept"),
    ("POST", "/api/jobs/{job_id}/reject"): probe("POST", "/api/jobs/{job_id}/reject"),
    ("GET", "/api/shoots/{shoot_id}/outputs.zip"): probe("GET", "/api/shoots/{shoot_id}/outputs.zip"),
    ("GET", "/api/outputs/{asset_id}/download"): probe("GET", "/api/outputs/{output_id}/download"),
    ("PATCH", "/api/shoots/{shoot_id}"): probe("PATCH", "/api/shoots/{shoot_id}", json={"name": "Alice was here"}),
    ("DELETE", "/api/shoots/{shoot_id}"): probe("DELETE", "/api/shoots/{shoot_id}"),
    ("DELETE", "/api/assets/{asset_id}"): probe("DELETE", "/api/assets/{ready_asset_id}"),
    ("POST", "/api/jobs/{job_id}/cancel"): probe("POST", "/api/jobs/{job_id}/cancel"),
    ("GET", "/api/shoots/{shoot_id}/brackets"): probe("GET", "/api/shoots/{shoot_id}/brackets"),
    ("POST", "/api/shoots/{shoot_id}/brackets"): probe(
        "POST", "/api/shoots/{shoot_id}/brackets", json={"asset_ids": ["{ready_asset_id}", "{spare_asset_id}"]}
    ),
    ("DELETE", "/api/brackets/{bracket_id}"): probe("DELETE", "/api/brackets/{bracket_id}"),
    ("POST", "/api/shoots/{shoot_id}/share"): probe("POST", "/api/shoots/{shoot_id}/share"),
    ("GET", "/api/shoots/{shoot_id}/share"): probe("GET", "/api/shoots/{shoot_id}/share"),
    ("DELETE", "/api/shoots/{shoot_id}/share"): probe("DELETE", "/api/shoots/{shoot_id}/share"),
}
# Bob's job has succeeded, so canceling or deciding on it is a conflict of state for him (409), never a 404.
OWNER_ANSWERS = {
    ("POST", "/api/jobs/{job_id}/cancel"): (409,), ("POST", "/api/jobs/{job_id}/accept"): (409,),
    ("POST", "/api/jobs/{job_id}/reject"): (409,), ("DELETE", "/api/brackets/{bracket_id}"): (204,),
    ("DELETE", "/api/shoots/{shoot_id}/share"): (204,),
}
# Routes about the caller alone: Alice's answer is about Alice.
OWN_DATA = {
    ("GET", "/api/me"): probe("GET", "/api/me"),
    ("GET", "/api/shoots"): probe("GET", "/api/shoots"),
    ("POST", "/api/shoots"): probe("POST", "/api/shoots", json={"name": "Alice's new listing"}),
    ("GET", "/api/billing/ledger"): probe("GET", "/api/billing/ledger", params={"limit": 200}),
    ("POST", "/api/billing/checkout"): probe("POST", "/api/billing/checkout", json={"pack": "starter"}),
    ("POST", "/api/auth/logout"): probe("POST", "/api/auth/logout"),
    ("DELETE", "/api/me"): probe("DELETE", "/api/me"),
}
# Routes for anyone (sign-in, catalogue, health, Stripe): nothing of Bob's in any answer.
PUBLIC = {
    ("GET", "/api/health"): probe("GET", "/api/health"),
    ("GET", "/api/ready"): probe("GET", "/api/ready"),
    ("GET", "/metrics"): probe("GET", "/metrics"),  # open while METRICS_TOKEN is unset: counts, never ids
    ("GET", "/api/presets"): probe("GET", "/api/presets"),
    ("GET", "/api/billing/packs"): probe("GET", "/api/billing/packs"),
    ("POST", "/api/auth/magic-link"): probe("POST", "/api/auth/magic-link", json={"email": "{user.email}"}),
    ("POST", "/api/auth/confirm"): probe("POST", "/api/auth/confirm", json={"token": "{checkout_session_id}"}),
    ("POST", "/api/auth/refresh"): probe("POST", "/api/auth/refresh", json={"refresh_token": "{user.id}"}),
    ("POST", "/api/webhooks/stripe"): probe("POST", "/api/webhooks/stripe", content=b'{"type": "checkout.session.completed"}'),
}
# Local storage's signed URLs: a signature is for one key, so Bob's key under Alice's signature is refused.
SIGNED_FILES = {("GET", "/api/files/{key:path}"), ("PUT", "/api/files/{key:path}")}
# The local checkout page stands in for Stripe's hosted page: its unguessable session id is the
# capability (no sign-in, as on Stripe). It shows the pack and price only, and pays for the
# checkout's owner, never for whoever opened it.
CHECKOUT_LINK = {
    ("GET", "/api/billing/local-checkout/{session_id}"): probe("GET", "/api/billing/local-checkout/{checkout_session_id}"),
    ("POST", "/api/billing/local-checkout/{session_id}/pay"): probe(
        "POST", "/api/billing/local-checkout/{checkout_session_id}/pay", follow_redirects=False
    ),
}
# The web UI's download links: an unguessable token made after an ownership check is the capability.
DOWNLOAD_LINK = {("GET", "/api/downloads")}
# A shoot's public disclosure page (AB 723): the unguessable token its owner published is the capability.
DISCLOSURE_LINK = {
    ("GET", "/disclosure/{token}"),
    ("GET", "/disclosure/{token}/photos/{output_id}.jpg"),
    ("GET", "/disclosure/{token}/originals/{original_id}"),
}
# Operator routes, every one under /api/admin/: 403 for a photographer, even with Bob's real ids.
ADMIN_PATH_VALUES = {"user_id": "{user.id}", "job_id": "{job_id}", "preset": "enhance", "version": "1"}
ADMIN_BODIES = {
    "/api/admin/users/{user_id}/credits": {"delta": 5, "reason": "goodwill"},
    "/api/admin/presets/{preset}/prompt-versions": {"template": "Brighten the room.", "activate": True},
}

MATRIX = {**OTHERS_OBJECT, **OWN_DATA, **PUBLIC, **CHECKOUT_LINK}


def api_routes() -> set[tuple[str, str]]:
    """(method, path) of every API route, those left out of the OpenAPI document included."""
    routes: list[Any] = create_api().routes
    try:  # FastAPI 0.16x includes routers lazily: their routes are reached through route contexts
        from fastapi.routing import iter_route_contexts

        routes = [context for context in iter_route_contexts(routes) if isinstance(context.original_route, APIRoute)]
    except ImportError:
        routes = [route for route in routes if isinstance(route, APIRoute)]
    return {(method, route.path) for route in routes for method in route.methods}


def send(tenants: TwoTenants, request: Probe, headers: dict[str, str]) -> Any:
    return tenants.client.request(request.method, request.url, headers=headers, **request.kwargs)


def bobs_view(tenants: TwoTenants) -> dict[str, Any]:
    """What Bob sees of his account: credits, shoots, photos and their states, ledger, checkout."""
    bob, client = tenants.victim, tenants.client

    def get(url: str, **params: Any) -> Any:
        response = client.get(url, headers=bob.headers, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    shoots = get("/api/shoots")
    return {
        "credits": get("/api/me")["credits"],
        "shoots": sorted((s["id"], s["name"], s["photo_count"]) for s in shoots),
        "photos": sorted((a["id"], a["status"], a["bracket_id"]) for s in shoots for a in get(f"/api/shoots/{s['id']}/assets")),
        "brackets": sorted(g["id"] for s in shoots for g in get(f"/api/shoots/{s['id']}/brackets")["groups"]),
        "ledger": [(e["id"], e["delta"]) for e in get("/api/billing/ledger", limit=200)["entries"]],
        "checkout": get(f"/api/billing/sessions/{bob.checkout_session_id}")["status"],
        "job": get(f"/api/jobs/{bob.job_id}")["status"],
    }


def admin_routes() -> list[tuple[str, str]]:
    return sorted(route for route in api_routes() if route[1].startswith("/api/admin/"))


def test_every_route_is_in_the_matrix() -> None:
    routes = api_routes() - set(admin_routes())
    listed = set(MATRIX) | SIGNED_FILES | DOWNLOAD_LINK | DISCLOSURE_LINK
    assert routes - listed == set(), "new routes: add them to the authorisation matrix"
    assert listed - routes == set(), "routes in the matrix that the API no longer has"
    assert len(admin_routes()) >= 1


def test_an_endpoint_that_never_checks_its_caller_fails_instead_of_answering(settings) -> None:
    # `UncheckedCaller` leaves the token to the endpoint (`caller.user(session)`); one that forgets
    # fails on every call, so the matrix below, which calls every route, would catch it.
    router = api_router()

    @router.get("/forgetful")
    def forgetful(caller: UncheckedCaller) -> dict[str, str]:
        return {"answered": "without checking"}

    api = FastAPI()
    api.state.context = AppContext(settings)
    api.include_router(router)
    with TestClient(api) as client, pytest.raises(RuntimeError, match="never checked"):
        client.get("/forgetful", headers={"Authorization": "Bearer anything"})


@pytest.mark.parametrize("route", sorted(OTHERS_OBJECT), ids=" ".join)
def test_another_users_object_is_404_and_untouched(two_tenants: TwoTenants, route: tuple[str, str]) -> None:
    before = bobs_view(two_tenants)
    request = OTHERS_OBJECT[route](two_tenants)
    response = send(two_tenants, request, two_tenants.caller.headers)
    assert response.status_code == 404, response.text
    assert leaked(response.content, two_tenants.victim) == []
    assert bobs_view(two_tenants) == before
    # The same request is fine for its owner: the 404 is about whose object it is.
    assert send(two_tenants, request, two_tenants.victim.headers).status_code in OWNER_ANSWERS.get(route, (200, 201))


@pytest.mark.parametrize("route", sorted(OWN_DATA), ids=" ".join)
def test_the_callers_own_routes_answer_about_the_caller_alone(two_tenants: TwoTenants, route: tuple[str, str]) -> None:
    before = bobs_view(two_tenants)
    response = send(two_tenants, OWN_DATA[route](two_tenants), two_tenants.caller.headers)
    assert response.status_code in (200, 201, 204), response.text
    assert leaked(response.content, two_tenants.victim) == []
    assert bobs_view(two_tenants) == before


@pytest.mark.parametrize("route", sorted(PUBLIC), ids=" ".join)
def test_public_routes_reveal_nothing_of_anyone(two_tenants: TwoTenants, route: tuple[str, str]) -> None:
    before = bobs_view(two_tenants)
    request = PUBLIC[route](two_tenants)
    for headers in (two_tenants.caller.headers, {}):
        response = send(two_tenants, request, headers)
        assert response.status_code < 500, response.text
        assert leaked(response.content, two_tenants.victim) == []
    assert bobs_view(two_tenants) == before


def _with_key(url: str, key: str) -> str:
    parts = urlsplit(url)
    return f"/api/files/{key}?" + "&".join(f"{name}={value}" for name, value in parse_qsl(parts.query))


def _assets(tenants: TwoTenants, tenant: Tenant) -> list[dict[str, Any]]:
    return tenants.client.get(f"/api/shoots/{tenant.shoot_id}/assets", headers=tenant.headers).json()


def test_a_signed_file_url_does_not_open_another_users_file(two_tenants: TwoTenants) -> None:
    alice, bob, client = two_tenants.caller, two_tenants.victim, two_tenants.client
    [alices_photo] = [a for a in _assets(two_tenants, alice) if a["id"] == alice.ready_asset_id]
    [bobs_photo] = [a for a in _assets(two_tenants, bob) if a["id"] == bob.ready_asset_id]
    bobs_key = urlsplit(bobs_photo["original_url"]).path.removeprefix("/api/files/")
    stolen = client.get(_with_key(alices_photo["original_url"], bobs_key), headers=alice.headers)
    assert stolen.status_code == 403
    assert client.get(bobs_photo["original_url"]).status_code == 200  # Bob's own link works

    # An upload link signed for Alice's pending photo cannot write over Bob's photo.
    presign = client.post(
        "/api/uploads/presign",
        json={"shoot_id": alice.shoot_id, "filename": "new.jpg", "content_type": "image/jpeg", "size": 10},
        headers=alice.headers,
    ).json()
    overwrite = client.put(_with_key(presign["upload"]["url"], bobs_key), content=b"0123456789", headers=presign["upload"]["headers"])
    assert overwrite.status_code == 403
    assert client.get(bobs_photo["original_url"]).content[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize("route", sorted(CHECKOUT_LINK), ids=" ".join)
def test_the_local_checkout_link_shows_only_the_pack_and_pays_for_its_owner(two_tenants: TwoTenants, route: tuple[str, str]) -> None:
    alice, bob = two_tenants.caller, two_tenants.victim
    alices_credits = two_tenants.client.get("/api/me", headers=alice.headers).json()["credits"]
    response = send(two_tenants, CHECKOUT_LINK[route](two_tenants), alice.headers)
    assert response.status_code in (200, 303)
    # The link names its own session id; nothing else of Bob's is on the page.
    assert leaked(response.content, bob) in ([], [bob.checkout_session_id])
    assert two_tenants.client.get("/api/me", headers=alice.headers).json()["credits"] == alices_credits
    missing = two_tenants.client.request(route[0], route[1].replace("{session_id}", "cs_local_does_not_exist"))
    assert missing.status_code == 404


@pytest.mark.parametrize("route", admin_routes(), ids=" ".join)
def test_operator_routes_are_403_for_a_photographer_even_with_real_ids(two_tenants: TwoTenants, route: tuple[str, str]) -> None:
    method, path = route
    url = re.sub(r"\{(\w+)\}", lambda name: ADMIN_PATH_VALUES[name.group(1)], path)
    before = bobs_view(two_tenants)
    response = send(two_tenants, probe(method, url, json=ADMIN_BODIES.get(path, {}))(two_tenants), two_tenants.caller.headers)
    assert response.status_code == 403, response.text
    assert leaked(response.content, two_tenants.victim) == []
    assert bobs_view(two_tenants) == before


def test_a_made_up_download_link_opens_nothing(two_tenants: TwoTenants) -> None:
    response = two_tenants.client.get("/api/downloads", params={"token": "x" * 43}, headers=two_tenants.caller.headers)
    assert response.status_code == 403
    assert leaked(response.content, two_tenants.victim) == []


def test_a_made_up_disclosure_link_opens_nothing_of_a_shared_shoot(two_tenants: TwoTenants) -> None:
    bob, client = two_tenants.victim, two_tenants.client
    shared = client.post(f"/api/shoots/{bob.shoot_id}/share", headers=bob.headers).json()["url"]
    assert client.get(urlsplit(shared).path).status_code == 200
    made_up = "/disclosure/" + "x" * 43
    for url in (made_up, f"{made_up}/photos/{bob.output_id}.jpg", f"{made_up}/originals/{bob.ready_asset_id}"):
        response = client.get(url, headers=two_tenants.caller.headers)
        assert response.status_code == 404, url
        assert [s for s in leaked(response.content, bob) if s not in url] == []
