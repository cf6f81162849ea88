"""A local HTTP server speaking the part of Stripe's API Luster uses, plus Stripe's side of webhooks.

Wire format as the official client sends and expects it: form-encoded bodies and query strings
with bracketed keys (`metadata[pack]`, `line_items[0][price_data][currency]`, `expand[0]`),
Bearer auth, JSON objects and lists, Stripe's error envelope, idempotency keys on POST.
The test-side methods (`pay`, `refund`, `charge`, `dispute`, `event`, `sign`) play what
happens at Stripe when a customer pays, a refund is issued or a bank opens a dispute.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

API_VERSION = "2025-01-27.acacia"


class StripeApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str = "", param: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.param = status, code, param


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracketed form keys back into nested dicts and lists (`a[b][0]=x`, `a[]=x`)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part or str(len(node)), {})
        node[parts[-1] or str(len(node))] = value
    return _lists_from_indexes(root)


def _lists_from_indexes(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        return [_lists_from_indexes(node[key]) for key in sorted(node, key=int)]
    return {key: _lists_from_indexes(value) for key, value in node.items()}


def _new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


class FakeStripe:
    """The fake Stripe: start(), point STRIPE_API_BASE at `url`, stop()."""

    def __init__(self) -> None:
        self.api_key = "sk_test_" + secrets.token_hex(12)
        self.webhook_secret = "whsec_" + secrets.token_hex(16)
        self.sessions: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, list[dict[str, Any]]] = {}  # charge id -> refunds
        self.disputes: dict[str, list[dict[str, Any]]] = {}  # charge id -> disputes
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, decoded params)
        self.failures_left = 0
        self.latency_seconds = 0.0
        # Called with (method, path) while a request is in flight: a test looks at the app's database then.
        self.on_request: Callable[[str, str], None] | None = None
        self._idempotent: dict[str, tuple[int, dict[str, Any]]] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---
    def start(self) -> FakeStripe:
        fake = self

        class Handler(_Handler):
            stripe_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- the API ---
    def handle(self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            raise StripeApiError(401, "Invalid API Key provided.", code="api_key_invalid")
        with self._lock:
            self.requests.append((method, path, params))
            if self.failures_left:
                self.failures_left -= 1
                raise StripeApiError(500, "An unknown error occurred (fake outage).")
            key = headers.get("idempotency-key")
            if method == "POST" and key and key in self._idempotent:
                return self._idempotent[key]
        if self.on_request is not None:
            self.on_request(method, path)
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        with self._lock:
            answer = 200, self._route(method, path, params)
            if method == "POST" and key:
                self._idempotent[key] = answer
            return answer

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        expand = params.get("expand") or []
        if (method, path) == ("POST", "/v1/checkout/sessions"):
            return self._create_session(params)
        if method == "GET" and path == "/v1/checkout/sessions":
            found = [s for s in self.sessions.values() if s["payment_intent"] == params.get("payment_intent")]
            return self._list(path, [self._expanded(s, "line_items" if "data.line_items" in expand else "") for s in found])
        if method == "GET" and (m := re.fullmatch(r"/v1/checkout/sessions/([^/]+)", path)):
            return self._expanded(self._session(m.group(1)), "line_items" if "line_items" in expand else "")
        if method == "GET" and path == "/v1/refunds":
            refunds = sorted(self.refunds.get(params.get("charge", ""), []), key=lambda r: -r["created"])
            return self._list(path, refunds)
        if method == "GET" and path == "/v1/disputes":
            return self._list(path, list(reversed(self.disputes.get(params.get("charge", ""), []))))
        raise StripeApiError(404, f"Unrecognized request URL ({method}: {path}).")

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("mode") not in ("payment", "setup", "subscription"):
            raise StripeApiError(400, "Missing required param: mode.", code="parameter_missing", param="mode")
        if not params.get("success_url"):
            raise StripeApiError(400, "Missing required param: success_url.", code="parameter_missing", param="success_url")
        items = []
        for index, item in enumerate(params.get("line_items") or []):
            if "price" in item:
                price = self.prices.get(item["price"])
                if price is None:
                    raise StripeApiError(400, f"No such price: '{item['price']}'", code="resource_missing",
                                         param=f"line_items[{index}][price]")
            else:
                data = item["price_data"]
                price = {"id": _new_id("price"), "object": "price", "currency": data["currency"],
                         "unit_amount": int(data["unit_amount"]), "product": _new_id("prod")}
            quantity = int(item.get("quantity", 1))
            items.append({"id": _new_id("li"), "object": "item", "price": price, "quantity": quantity,
                          "currency": price["currency"], "amount_subtotal": price["unit_amount"] * quantity,
                          "amount_total": price["unit_amount"] * quantity,
                          "description": (item.get("price_data") or {}).get("product_data", {}).get("name", "")})
        if not items:
            raise StripeApiError(400, "line_items is required in payment mode.", code="parameter_missing", param="line_items")
        session_id = "cs_test_" + secrets.token_hex(24)
        now = int(time.time())
        session = {
            "id": session_id, "object": "checkout.session", "mode": params["mode"], "livemode": False,
            "status": "open", "payment_status": "unpaid", "created": now, "expires_at": now + 24 * 3600,
            "amount_subtotal": sum(i["amount_total"] for i in items), "amount_total": sum(i["amount_total"] for i in items),
            "currency": items[0]["currency"], "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {}, "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"), "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "payment_intent": None, "customer": None, "customer_email": params.get("customer_email"),
            "customer_details": {"email": params.get("customer_email")} if params.get("customer_email") else None,
            "_line_items": items,
        }
        self.sessions[session_id] = session
        return self._expanded(session, "")

    def _session(self, session_id: str) -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise StripeApiError(404, f"No such checkout.session: '{session_id}'", code="resource_missing", param="session")
        return session

    def _expanded(self, session: dict[str, Any], expand: str) -> dict[str, Any]:
        public = {k: v for k, v in session.items() if not k.startswith("_")}
        if expand == "line_items":
            public["line_items"] = self._list(f"/v1/checkout/sessions/{session['id']}/line_items", session["_line_items"])
        return json.loads(json.dumps(public))

    @staticmethod
    def _list(url: str, data: list[dict[str, Any]]) -> dict[str, Any]:
        return {"object": "list", "url": url, "has_more": False, "data": data}

    # --- what happens at Stripe (test side) ---
    def add_price(self, *, unit_amount: int, currency: str = "usd") -> str:
        price_id = _new_id("price")
        self.prices[price_id] = {"id": price_id, "object": "price", "currency": currency, "unit_amount": unit_amount,
                                 "product": _new_id("prod")}
        return price_id

    def pay(self, session_id: str, *, payment_status: str = "paid") -> dict[str, Any]:
        """The customer completes the hosted page; `unpaid` is a bank debit still clearing."""
        with self._lock:
            session = self._session(session_id)
            session["status"] = "complete"
            session["payment_status"] = payment_status
            if session["payment_intent"] is None:
                session["payment_intent"] = _new_id("pi")
                session["_charge"] = _new_id("ch")
            return self.session_object(session_id)

    def expire(self, session_id: str) -> dict[str, Any]:
        """Nobody paid within the session's lifetime."""
        with self._lock:
            self._session(session_id)["status"] = "expired"
            return self.session_object(session_id)

    def session_object(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            return self._expanded(self._session(session_id), "")

    def refund(self, session_id: str, amount: int, *, created: int | None = None, refund_id: str | None = None) -> dict[str, Any]:
        """A refund of part of the charge; `created` (seconds, like Stripe's) lets two share one second."""
        with self._lock:
            session = self._session(session_id)
            charge_id = session["_charge"]
            if created is None:
                created = int(time.time()) + len(self.refunds.get(charge_id, []))
            refund = {"id": refund_id or _new_id("re"), "object": "refund", "amount": amount, "charge": charge_id,
                      "payment_intent": session["payment_intent"], "created": created,
                      "currency": "usd", "status": "succeeded"}
            self.refunds.setdefault(charge_id, []).append(refund)
            return dict(refund)

    def fail_refund(self, refund_id: str, *, status: str = "failed") -> dict[str, Any]:
        """The bank bounced a refund (or it was cancelled): the money stays with the merchant."""
        with self._lock:
            refund = next(r for refunds in self.refunds.values() for r in refunds if r["id"] == refund_id)
            refund.update(status=status, failure_reason="expired_or_canceled_card" if status == "failed" else None)
            return dict(refund)

    def charge(self, session_id: str, *, embed_refunds: bool = True) -> dict[str, Any]:
        """The charge as a `charge.refunded` event carries it (refunds listed only on older API versions)."""
        with self._lock:
            session = self._session(session_id)
            refunds = self.refunds.get(session["_charge"], [])
            refunded = sum(r["amount"] for r in refunds if r["status"] not in ("failed", "canceled"))
            charge = {"id": session["_charge"], "object": "charge", "amount": session["amount_total"],
                      "amount_refunded": refunded, "currency": session["currency"],
                      "payment_intent": session["payment_intent"], "paid": True,
                      "refunded": refunded >= session["amount_total"]}
            if embed_refunds:
                charge["refunds"] = self._list(f"/v1/charges/{session['_charge']}/refunds",
                                               sorted(refunds, key=lambda r: -r["created"]))
            return json.loads(json.dumps(charge))

    def dispute(self, session_id: str, *, status: str = "needs_response", dispute_id: str | None = None,
                amount: int | None = None) -> dict[str, Any]:
        """A bank's dispute of the charge: by default of what was not refunded already, which is
        what a cardholder can usually dispute; `amount` plays one who disputes money refunded too."""
        with self._lock:
            session = self._session(session_id)
            refunded = sum(r["amount"] for r in self.refunds.get(session["_charge"], [])
                           if r["status"] not in ("failed", "canceled"))
            if amount is None:
                amount = session["amount_total"] - refunded
            dispute = {"id": dispute_id or _new_id("dp"), "object": "dispute", "amount": amount,
                       "charge": session["_charge"], "payment_intent": session["payment_intent"],
                       "currency": session["currency"], "reason": "fraudulent", "status": status}
            self.disputes.setdefault(session["_charge"], []).append(dispute)
            return dict(dispute)

    def close_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        """The bank decides: `won`, `lost`, or `warning_closed` for an inquiry."""
        with self._lock:
            dispute = next(d for disputes in self.disputes.values() for d in disputes if d["id"] == dispute_id)
            dispute["status"] = status
            return dict(dispute)

    @staticmethod
    def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        return {"id": event_id or _new_id("evt"), "object": "event", "api_version": API_VERSION,
                "created": int(time.time()), "livemode": False, "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None}, "type": event_type, "data": {"object": obj}}

    def sign(self, event: dict[str, Any], *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a webhook delivery, signed as Stripe signs them."""
        payload = json.dumps(event, indent=2)  # Stripe sends pretty-printed JSON
        header = stripe.WebhookSignature.generate_signature_header(payload, self.webhook_secret, timestamp=timestamp)
        return payload.encode(), {"Stripe-Signature": header, "Content-Type": "application/json; charset=utf-8"}


class _Handler(BaseHTTPRequestHandler):
    stripe_fake: FakeStripe
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (keep test output quiet)
        pass

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        pairs = parse_qsl(url.query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, payload = self.stripe_fake.handle(method, url.path, decode_form(pairs), headers)
        except StripeApiError as exc:
            kind = "api_error" if exc.status >= 500 else "invalid_request_error"
            status, payload = exc.status, {"error": {"type": kind, "message": str(exc), "code": exc.code, "param": exc.param}}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_" + secrets.token_hex(8))
        if status >= 500:
            self.send_header("Stripe-Should-Retry", "false")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")
