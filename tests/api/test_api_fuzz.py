"""Schemathesis against the receiver's own OpenAPI document: whatever a client sends within (or
just outside) the documented shapes, the receiver never fails with a 500, answers only
documented status codes, and its bodies match the documented schemas. Bounded (40 examples per
route, derandomized) so it stays a quick, repeatable part of `make test`."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core import clock
from core.config import set_settings
from receiver.main import create_app
from tests.conftest import make_settings
from tests.support.api import AUTH, MONDAY_0800, TOKEN, stripe_values

pytest_plugins = ["tests.support.api"]


@schemathesis.check
def no_internal_error(ctx, response, case) -> None:
    """Like schemathesis' not_a_server_error, but 503 is a documented answer here (an outside
    service or a setting is missing) and must say so in a sentence."""
    if response.status_code == 503:
        assert response.json().get("detail"), "a 503 without a detail"
    elif response.status_code >= 500:
        raise AssertionError(f"{response.status_code}: {response.text[:300]}")


# Not negative_data_rejection: it counts unknown query parameters as invalid (the receiver
# ignores them, like most HTTP APIs) and tries to drop the Authorization header we always send.
CHECKS = [no_internal_error, status_code_conformance, content_type_conformance, response_schema_conformance]


# Loaded when the module is imported (the document does not depend on settings or data);
# schemathesis' lazy `from_fixture` loader does not work with pytest 9.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(start_worker=False))


@pytest.fixture
def fuzz_settings(tmp_path, engine, tutor, fake_stripe):
    # Stripe (a fake) and its webhook secret are configured, so requests get past "not
    # configured" into the real code paths: bookings are held with a Checkout URL, signed-looking
    # garbage reaches the signature check.
    set_settings(make_settings(tmp_path, bot_api_token=TOKEN, **stripe_values(fake_stripe)))
    clock.set_now(MONDAY_0800)


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_receiver_keeps_its_documented_contract(case, fuzz_settings):
    case.call_and_validate(headers=AUTH, checks=CHECKS)
