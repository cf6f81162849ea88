"""Taking credits back never spends the credits queued jobs reserved, and `luster audit` finds a
balance that drifted from its ledger."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import text

from luster_app.context import AppContext
from luster_app.services.job_queue import claim_jobs
from tests.admin_support import make_admin, queue_job
from tests.billing_support import Shop, fake_stripe, shop  # noqa: F401  (fixtures)
from tests.engines_for_tests import InvertEngine, WaitingEngine, indexed_image
from tests.jobs_support import add_photo, job_charges, user_with_credits
from tests.test_worker_lifecycle import make_app  # noqa: F401  (fixture: API and in-process workers on SQLite and PostgreSQL)
from worker.worker import Worker

ROOT = Path(__file__).resolve().parents[1]


def luster(context: AppContext, *args: str) -> subprocess.CompletedProcess[str]:
    """The `luster` command in its own process, on the test's database."""
    url = context.db.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url,
           "LUSTER_DATA_DIR": str(context.settings.luster_data_dir)}
    command = [sys.executable, "-m", "luster_app.cli", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _credits(client, headers) -> dict[str, int]:  # noqa: ANN001
    return client.get("/api/me", headers=headers).json()["credits"]


def test_luster_credits_grant_minus_n_cancels_the_queued_jobs_it_uncovers(make_app) -> None:
    context, client = make_app(InvertEngine())
    user, headers = user_with_credits(context, 2)
    jobs = [queue_job(client, headers, add_photo(context, user, indexed_image(n)).id) for n in (1, 2)]

    taken = luster(context, "credits", "grant", user.email, "-2", "--reason", "duplicate grant")
    assert taken.returncode == 0, taken.stderr
    assert Worker(context, concurrency=2, drain=True).run() == 0

    # Before: both jobs still ran and charged, leaving the balance at -2.
    assert _credits(client, headers) == {"balance": 0, "reserved": 0, "available": 0}
    assert job_charges(context, user.id) == 0
    assert "balance 0" in taken.stdout and "2 queued jobs" in taken.stdout
    for job_id in jobs:
        job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
        assert job["status"] == "canceled"
        assert "taken back" in job["error_message"] and "duplicate grant" in job["error_message"]
        assert "No credit was charged" in job["error_message"]
        assert "credits_taken_back" in [event["type"] for event in job["events"]]
    over = luster(context, "credits", "grant", user.email, "-1")
    assert over.returncode == 1 and "at most 0" in over.stderr
    assert _credits(client, headers)["balance"] == 0


def test_an_admin_take_back_keeps_the_oldest_covered_jobs_and_spares_jobs_in_progress(make_app) -> None:
    context, client = make_app(InvertEngine())
    _, admin_headers = make_admin(context)
    user, headers = user_with_credits(context, 4)
    jobs = [queue_job(client, headers, add_photo(context, user, indexed_image(n)).id) for n in range(1, 5)]
    with context.session() as session:
        claimed = claim_jobs(session=session, owner="worker-a", limit=1, lease_seconds=300)
    assert [str(c.job.id) for c in claimed] == [jobs[0]]

    refused = client.post(f"/api/admin/users/{user.id}/credits", json={"delta": -4, "reason": "chargeback"},
                          headers=admin_headers)
    assert refused.status_code == 422
    assert "at most 3" in refused.json()["detail"] and "processed" in refused.json()["detail"]

    response = client.post(f"/api/admin/users/{user.id}/credits", json={"delta": -2, "reason": "chargeback"},
                           headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["balance"] == 2 and response.json()["available"] == 0
    statuses = [client.get(f"/api/jobs/{job_id}", headers=headers).json()["status"] for job_id in jobs]
    assert statuses == ["processing", "queued", "canceled", "canceled"]


def test_a_refund_cancels_the_queued_jobs_its_credits_reserved(shop: Shop) -> None:
    user, headers = shop.new_user()
    session_id = shop.checkout(headers, "starter")  # 10 credits for $12.00
    shop.deliver_ok(shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id)))
    jobs = [queue_job(shop.client, headers, add_photo(shop.context, user, indexed_image(n)).id) for n in (1, 2, 3)]
    shop.stripe.refund(session_id, 360)  # 3 of the 10 credits' worth
    outcome = shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))["outcome"]
    assert outcome == "refund: took 3 credits (refund)"
    assert _credits(shop.client, headers) == {"balance": 7, "reserved": 3, "available": 4}

    shop.stripe.refund(session_id, 840)  # the rest: every credit goes back, and the jobs they reserved
    outcome = shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))["outcome"]
    assert outcome == "refund: canceled 3 queued jobs, took 7 credits (refund)"
    assert _credits(shop.client, headers) == {"balance": 0, "reserved": 0, "available": 0}
    for job_id in jobs:
        job = shop.client.get(f"/api/jobs/{job_id}", headers=headers).json()
        assert job["status"] == "canceled" and "refunded" in job["error_message"]


def test_luster_audit_finds_a_balance_that_drifted_from_its_ledger(make_app) -> None:
    context, client = make_app(InvertEngine())
    _, admin_headers = make_admin(context)
    steady, _ = user_with_credits(context, 5)
    drifted, _ = user_with_credits(context, 5)
    clean = luster(context, "audit")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert client.get("/api/admin/credit-drift", headers=admin_headers).json() == []

    with context.db.begin() as conn:  # a write that bypassed the ledger
        conn.execute(text("UPDATE credits SET balance = balance + 3 WHERE user_id = :u"), {"u": drifted.id.hex
                     if context.db.dialect.name == "sqlite" else drifted.id})

    found = luster(context, "audit")
    assert found.returncode == 1
    assert drifted.email in found.stdout and "balance 8, ledger sum 5" in found.stdout
    assert steady.email not in found.stdout
    listed = client.get("/api/admin/credit-drift", headers=admin_headers).json()
    assert [(d["email"], d["balance"], d["ledger_sum"]) for d in listed] == [(drifted.email, 8, 5)]


def test_luster_audit_finds_a_reserved_count_that_drifted_from_the_jobs(make_app) -> None:
    context, client = make_app(InvertEngine())
    _, admin_headers = make_admin(context)
    drifted, _ = user_with_credits(context, 5)
    with context.db.begin() as conn:  # e.g. a table rebuilt without its triggers, or a hand edit
        conn.execute(text("UPDATE credits SET reserved = 2 WHERE user_id = :u"), {"u": drifted.id.hex
                     if context.db.dialect.name == "sqlite" else drifted.id})

    found = luster(context, "audit")
    assert found.returncode == 1
    assert f"{drifted.email} ({drifted.id}): balance 5, ledger sum 5, reserved 2, jobs holding a credit 0" in found.stdout
    listed = client.get("/api/admin/credit-drift", headers=admin_headers).json()
    assert [(d["email"], d["reserved"], d["reserving_jobs"]) for d in listed] == [(drifted.email, 2, 0)]


def test_a_take_back_racing_busy_workers_never_leaves_a_negative_balance(make_app) -> None:
    context, client = make_app(WaitingEngine(0.05))
    _, admin_headers = make_admin(context)
    for _ in range(2):
        user, headers = user_with_credits(context, 12)
        jobs = [queue_job(client, headers, add_photo(context, user, indexed_image(n)).id) for n in range(12)]
        worker = threading.Thread(target=Worker(context, concurrency=4, drain=True).run)
        worker.start()
        while {client.get(f"/api/jobs/{job}", headers=headers).json()["status"] for job in jobs[:2]} == {"queued"}:
            pass  # until the worker has claimed some: the take-back then races its next claims
        taken = 0
        for amount in (6, 4, 2, 1):  # jobs finishing meanwhile may leave less to take (422 says how much)
            response = client.post(f"/api/admin/users/{user.id}/credits", json={"delta": -amount, "reason": "refund"},
                                   headers=admin_headers)
            assert response.status_code in (200, 422), response.text
            if response.status_code == 200:
                taken = amount
                break
        worker.join()
        final = _credits(client, headers)
        succeeded = [j for j in jobs if client.get(f"/api/jobs/{j}", headers=headers).json()["status"] == "succeeded"]
        assert final["balance"] >= 0 and final["reserved"] == 0
        assert final["balance"] == 12 - taken - len(succeeded)
        assert job_charges(context, user.id) == len(succeeded)
