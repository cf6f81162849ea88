"""The `luster` command: migrate, serve, worker, token, credits, audit, admin."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from luster_app.config import get_settings


def _context():  # noqa: ANN202
    from luster_app.context import default_context

    return default_context()


def cmd_migrate(_args: argparse.Namespace) -> int:
    from luster_app.migrations import upgrade

    settings = get_settings()
    settings.luster_data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url_or_default)
    print("database is at the latest migration")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Migrate, then run the app (UI and API on one port) and one worker until Ctrl-C."""
    import signal
    import subprocess

    if cmd_migrate(args) != 0:
        return 1
    port = str(args.port or get_settings().port)
    children = [subprocess.Popen([sys.executable, "-m", "luster_app.cli", "worker"])] if args.worker else []
    app = subprocess.Popen(
        [sys.executable, "-m", "reflex", "run", "--env", "prod", "--single-port",
         "--backend-port", port, "--frontend-port", port, "--loglevel", "warning"]
    )
    children.append(app)
    try:
        return app.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the worker until SIGTERM/SIGINT, or with --drain until no job is due."""
    from luster_app.context import AppContext
    from worker.worker import Worker

    return Worker(AppContext.for_worker(get_settings()), concurrency=args.concurrency, drain=args.drain).run()


def cmd_token(args: argparse.Namespace) -> int:
    from luster_app.auth import AuthConfigError
    from luster_app.auth.local import LocalAuth
    from luster_app.services.users import ensure_user_for_email

    context = _context()
    try:
        context.auth
    except AuthConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not isinstance(context.auth, LocalAuth):
        print("luster token works only with the embedded auth provider (SUPABASE_URL is set)", file=sys.stderr)
        return 2
    with context.session() as session:
        user = ensure_user_for_email(session=session, email=args.email)
    print(context.auth.issue_access_token(user_id=user.id, email=user.email))
    return 0


def cmd_credits_grant(args: argparse.Namespace) -> int:
    from luster_app.services.errors import ServiceError
    from luster_app.services.takeback import adjust_balance
    from luster_app.services.users import credit_summary, find_user_by_email

    with _context().session() as session:
        user = find_user_by_email(session=session, email=args.email)
        if user is None:
            print(f"no user with email {args.email}", file=sys.stderr)
            return 1
        try:
            canceled = adjust_balance(session=session, user_id=user.id, delta=args.n, reason=args.reason)
        except ServiceError as exc:
            print(f"{args.email}: {exc}", file=sys.stderr)
            return 1
        balance = credit_summary(session=session, user_id=user.id)["balance"]
    print(f"{args.email}: {args.n:+d} credits, balance {balance}")
    if canceled:
        print(f"{len(canceled)} queued jobs the balance no longer covers were canceled, uncharged")
    return 0


def cmd_audit(_args: argparse.Namespace) -> int:
    """Compare every balance with the sum of its ledger; exit 1 naming each user that differs."""
    from luster_app.services.takeback import find_drift

    with _context().session() as session:
        drifts = find_drift(session=session)
    for drift in drifts:
        print(f"DRIFT {drift.email} ({drift.user_id}): balance {drift.balance}, ledger sum {drift.ledger_sum}, "
              f"reserved {drift.reserved}, jobs holding a credit {drift.reserving_jobs}")
    if drifts:
        print(f"{len(drifts)} users' balances differ from their ledgers or reserved counts from their jobs", file=sys.stderr)
        return 1
    print("every balance equals the sum of its ledger, every reserved count its jobs holding a credit")
    return 0


def cmd_admin(args: argparse.Namespace) -> int:
    """Make a signed-up user an admin (grant) or a plain user again (revoke)."""
    from luster_app.services.admin import set_admin
    from luster_app.services.errors import NotFound

    with _context().session() as session:
        try:
            user = set_admin(session=session, email=args.email, is_admin=args.admin_command == "grant")
        except NotFound as exc:
            print(exc, file=sys.stderr)
            return 1
    print(f"{user.email} is {'now' if user.is_admin else 'no longer'} an admin")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="luster", description="Luster: listing-ready real-estate photos.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="upgrade the database to the latest migration").set_defaults(func=cmd_migrate)

    serve = sub.add_parser("serve", help="migrate, then serve the app and a worker on one port")
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--no-worker", dest="worker", action="store_false")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run jobs: claim, enhance, store, charge")
    worker.add_argument("--concurrency", type=int, default=None, help="jobs in flight at once (default: WORKER_CONCURRENCY)")
    worker.add_argument("--drain", action="store_true", help="exit once no job is due")
    worker.set_defaults(func=cmd_worker)

    token = sub.add_parser("token", help="embedded auth only: print a bearer token for EMAIL")
    token.add_argument("email")
    token.set_defaults(func=cmd_token)

    credits = sub.add_parser("credits", help="credit adjustments").add_subparsers(dest="credits_command", required=True)
    grant = credits.add_parser(
        "grant", help="add N credits as a ledger adjustment (negative takes, never more than the balance less jobs in progress)"
    )
    grant.add_argument("email")
    grant.add_argument("n", type=int)
    grant.add_argument("--reason", default="manual adjustment")
    grant.set_defaults(func=cmd_credits_grant)

    sub.add_parser("audit", help="compare every balance with its ledger and reserved count with its jobs (exit 1 on a drift)").set_defaults(func=cmd_audit)

    admin = sub.add_parser("admin", help="who may use the admin console").add_subparsers(dest="admin_command", required=True)
    for action, text in (("grant", "make the user with EMAIL an admin"), ("revoke", "take admin away from EMAIL")):
        admin_action = admin.add_parser(action, help=text)
        admin_action.add_argument("email")
        admin_action.set_defaults(func=cmd_admin)
    return parser


# Commands that run the service or touch its database refuse unsafe production settings first.
GUARDED_COMMANDS = frozenset({"serve", "worker", "migrate"})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in GUARDED_COMMANDS:
        from luster_app.guards import UnsafeSettingsError, prepare_process

        try:
            prepare_process(get_settings())
        except UnsafeSettingsError as exc:
            print(exc, file=sys.stderr)
            return 2
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
