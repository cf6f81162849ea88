"""The REST API fuzzed from its own OpenAPI document (schemathesis), in-process, as a signed-in user.

Requests valid and invalid against the schema go to every documented operation with Alice's
token, with no token, and with Bob's ids spliced into the path. No answer may be a server error,
and none may carry anything of Bob's. Bounded: a few dozen examples per operation.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from luster_app.api import create_api
from tests.tenants import TwoTenants, leaked, tenant_worlds, two_tenants  # noqa: F401  (fixture)

EXAMPLES_PER_OPERATION = 40
CALLERS = ["alice", "nobody", "alice-with-bobs-ids"]


def documented_operations() -> list[tuple[str, str]]:
    paths = create_api().openapi()["paths"]
    return sorted((method.upper(), path) for path, methods in paths.items() for method in methods)


def _bobs_ids(tenants: TwoTenants) -> list[str]:
    """Ids to splice into paths: guessing another user's ids is the attack a fuzzer cannot make alone."""
    bob = tenants.victim
    return [
        bob.shoot_id, bob.ready_asset_id, bob.pending_asset_id, bob.checkout_session_id, bob.job_id, bob.output_id,
        bob.bracket_id,
    ]


OPERATIONS = documented_operations()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[" ".join(operation) for operation in OPERATIONS])
def test_fuzzed_requests_get_no_server_error_and_nothing_of_another_user(
    two_tenants: TwoTenants, method: str, path: str
) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", two_tenants.client.app)
    operation = schema[path][method.lower()]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases, caller=st.sampled_from(CALLERS), pick=st.integers(0, 20))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples on every run: a CI failure reproduces on any machine
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case, caller: str, pick: int) -> None:
        headers = dict(case.headers or {})
        headers.pop("Authorization", None)
        if caller != "nobody":
            headers["Authorization"] = two_tenants.caller.headers["Authorization"]
        if caller == "alice-with-bobs-ids":
            ids = _bobs_ids(two_tenants)
            for name in case.path_parameters or {}:
                case.path_parameters[name] = ids[pick % len(ids)]
        case.headers = headers
        response = case.call()
        assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
        # An id Alice sent may come back in a validation error; anything else of Bob's is a leak.
        sent = [str(value) for value in (case.path_parameters or {}).values()]
        assert [s for s in leaked(response.content, two_tenants.victim) if s not in sent] == [], "an answer carried Bob's data"

    fuzz()


def test_a_ledger_cursor_past_the_id_range_is_a_client_error(two_tenants: TwoTenants) -> None:
    """Found by the fuzzer: PostgreSQL refused the number and the API answered 500."""
    response = two_tenants.client.get(
        "/api/billing/ledger", params={"before": 4357485363512879874048}, headers=two_tenants.caller.headers
    )
    assert response.status_code == 422
