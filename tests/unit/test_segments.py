"""Specification of customer segments (core/segments.py): the seed's precedence, whitelists that
match however an identifier was typed, explanations for the console, and never caching."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core.booking import suggest_slots
from core.db import read_session, write_session
from core.errors import NotFound, ValidationFailed
from core.models import Contact, PlanningProfile, Tutor, WhitelistEntry
from core.segments import EXISTING_FLAGS, add_to_whitelist, detect_segment, explain_segment

PHONE_NOTATIONS = ["06 12345678", "+31 6 1234 5678", "0031612345678", "+31612345678", "06-12345678"]


@pytest.fixture
def contact(engine):
    """Create a contact: `contact("c1", phone=..., attributes={...}, segment_override=...)`."""

    def create(contact_id: str = "c1", **fields) -> str:
        with write_session() as session:
            session.add(Contact(id=contact_id, **fields))
        return contact_id

    return create


@pytest.fixture
def on_list(engine):
    """Put identifiers on a whitelist: `on_list("weekend", "06 12345678", ...)`."""

    def add(list_name: str, *identifiers: str) -> None:
        with write_session() as session:
            for identifier in identifiers:
                add_to_whitelist(session, list_name, identifier, added_by="admin@test")

    return add


def segment_of(contact_id: str) -> str:
    return detect_segment(contact_id)


def set_attributes(contact_id: str, **attributes) -> None:
    with write_session() as session:
        row = session.get(Contact, contact_id)
        row.attributes.update(attributes)


# --- precedence -------------------------------------------------------------------------------

PRECEDENCE = [
    # override, lists the contact is on, attributes, expected segment
    pytest.param(
        "new",
        ["weekend", "returning_broadcast"],
        {"has_paid_lesson": True},
        "new",
        id="override beats everything",
    ),
    pytest.param("existing", [], {}, "existing", id="override alone"),
    pytest.param(
        None,
        ["weekend", "returning_broadcast"],
        {"has_paid_lesson": True},
        "weekend",
        id="weekend list beats returning list and flags",
    ),
    pytest.param(
        None,
        [],
        {"weekend_whitelisted": True, "returning_broadcast": True},
        "weekend",
        id="weekend attribute beats returning attribute",
    ),
    pytest.param(
        None,
        ["returning_broadcast"],
        {"has_paid_lesson": True},
        "returning_broadcast",
        id="returning list beats existing flags",
    ),
    pytest.param(
        None,
        [],
        {"returning_broadcast": True, "customer_status": "active"},
        "returning_broadcast",
        id="returning attribute beats customer_status",
    ),
    *[pytest.param(None, [], {flag: True}, "existing", id=f"flag {flag}") for flag in EXISTING_FLAGS],
    pytest.param(None, [], {"customer_since": "2024-09-01"}, "existing", id="customer_since as a date"),
    pytest.param(None, [], {"customer_status": "active"}, "existing", id="customer_status active"),
    pytest.param(None, [], {"customer_status": "inactive"}, "new", id="customer_status inactive"),
    pytest.param(None, [], {"has_paid_lesson": False, "lesson_booked": None}, "new", id="false flags"),
    pytest.param(None, [], {"weekend_whitelisted": False}, "new", id="weekend attribute false"),
    pytest.param(None, [], {}, "new", id="nothing known"),
]


@pytest.mark.parametrize(("override", "lists", "attributes", "expected"), PRECEDENCE)
def test_segment_precedence(contact, on_list, override, lists, attributes, expected):
    cid = contact("c1", phone="+31612345678", attributes=attributes, segment_override=override)
    for list_name in lists:
        on_list(list_name, "06 12345678")
    assert segment_of(cid) == expected


def test_detect_segment_opens_its_own_session(contact):
    cid = contact("c1", attributes={"has_paid_lesson": True})
    assert detect_segment(cid) == "existing"


def test_unknown_contact_is_not_found(engine):
    with pytest.raises(NotFound, match="nobody"):
        detect_segment("nobody")


# --- whitelist matching -----------------------------------------------------------------------


@pytest.mark.parametrize("listed", PHONE_NOTATIONS)
@pytest.mark.parametrize("stored", ["+31612345678", "06 12345678", "0031 6 12345678"])
def test_whitelisted_phone_matches_in_any_dutch_notation(contact, on_list, listed, stored):
    cid = contact("c1", phone=stored)
    on_list("weekend", listed)
    assert segment_of(cid) == "weekend"


def test_another_phone_number_does_not_match(contact, on_list):
    cid = contact("c1", phone="+31612345679")
    on_list("weekend", "06 12345678")
    assert segment_of(cid) == "new"


@pytest.mark.parametrize(
    ("listed", "stored"),
    [
        ("Anna@Example.NL", "anna@example.nl"),
        ("anna@example.nl", "ANNA@EXAMPLE.NL"),
        ("  anna@example.nl ", "Anna@example.nl"),
    ],
)
def test_whitelisted_email_matches_case_insensitively(contact, on_list, listed, stored):
    cid = contact("c1", email=stored, email_confirmed=True)
    on_list("returning_broadcast", listed)
    assert segment_of(cid) == "returning_broadcast"


def test_whitelisted_contact_id_matches(contact, on_list):
    cid = contact("chatwoot-4711")
    contact("chatwoot-4712")
    on_list("weekend", "chatwoot-4711")
    assert segment_of(cid) == "weekend"
    assert segment_of("chatwoot-4712") == "new"


def test_a_list_only_decides_its_own_segment(contact, on_list):
    cid = contact("c1", email="anna@example.nl", email_confirmed=True)
    on_list("returning_broadcast", "anna@example.nl")
    assert segment_of(cid) == "returning_broadcast"
    on_list("weekend", "anna@example.nl")
    assert segment_of(cid) == "weekend"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("06 12345678", "+31 6 1234 5678"),
        ("06 12345678", "06 12345678"),
        ("Anna@Example.nl", "anna@example.NL"),
        ("c-1", "c-1"),
    ],
)
def test_adding_the_same_person_twice_keeps_one_entry(engine, first, second):
    with write_session() as session:
        assert add_to_whitelist(session, "weekend", first) is not None
    with write_session() as session:
        assert add_to_whitelist(session, "weekend", second) is None
    with read_session() as session:
        assert len(session.exec(select(WhitelistEntry)).all()) == 1


def test_the_same_person_may_be_on_both_lists(engine):
    with write_session() as session:
        add_to_whitelist(session, "weekend", "06 12345678")
        add_to_whitelist(session, "returning_broadcast", "06 12345678")
    with read_session() as session:
        rows = session.exec(select(WhitelistEntry.list, WhitelistEntry.identifier)).all()
    assert sorted(rows) == [("returning_broadcast", "+31612345678"), ("weekend", "+31612345678")]


def test_whitelist_entry_is_stored_normalised_with_who_added_it(engine):
    with write_session() as session:
        add_to_whitelist(session, "weekend", "+31 6 1234 5678", note="broadcast March", added_by="admin@x.nl")
    with read_session() as session:
        entry = session.exec(select(WhitelistEntry)).one()
    assert (entry.identifier, entry.note, entry.added_by) == ("+31612345678", "broadcast March", "admin@x.nl")
    assert entry.added_at.tzinfo is not None


@pytest.mark.parametrize(
    ("identifier", "message"),
    [
        pytest.param("+31 6 123", "not a valid phone number", id="too short"),
        pytest.param("0031 99 1234567890", "not a valid phone number", id="no such number"),
        pytest.param("061234567890123", "not a valid phone number", id="too long"),
        pytest.param("anna@", "not a valid e-mail address", id="no domain"),
        pytest.param("@example.nl", "not a valid e-mail address", id="no name"),
        pytest.param("anna smit@example.nl", "not a valid e-mail address", id="space"),
        pytest.param("   ", "empty", id="blank"),
    ],
)
def test_invalid_identifier_is_refused_with_a_message(engine, identifier, message):
    with write_session() as session, pytest.raises(ValidationFailed, match=message):
        add_to_whitelist(session, "weekend", identifier)
    with read_session() as session:
        assert session.exec(select(WhitelistEntry)).all() == []


def test_unknown_list_is_refused(engine):
    with write_session() as session, pytest.raises(ValidationFailed, match="weekend, returning_broadcast"):
        add_to_whitelist(session, "vip", "06 12345678")


# --- explanations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "lists", "attributes", "segment", "reason"),
    [
        (None, ["weekend"], {}, "weekend", "weekend whitelist (+31612345678)"),
        (None, [], {"weekend_whitelisted": True}, "weekend", "weekend_whitelisted"),
        (None, ["returning_broadcast"], {}, "returning_broadcast", "returning-broadcast list"),
        (None, [], {"returning_broadcast": True}, "returning_broadcast", "attribute returning_broadcast"),
        *[(None, [], {flag: True}, "existing", flag) for flag in EXISTING_FLAGS],
        (None, [], {"customer_status": "active"}, "existing", "customer_status"),
        ("weekend", [], {}, "weekend", "override"),
        (None, [], {}, "new", "no list or customer attribute matched"),
    ],
)
def test_explanation_names_the_list_or_attribute_that_decided(
    contact, on_list, override, lists, attributes, segment, reason
):
    cid = contact("c1", phone="0612345678", attributes=attributes, segment_override=override)
    for list_name in lists:
        on_list(list_name, "+31612345678")
    with read_session() as session:
        decision = explain_segment(session, session.get(Contact, cid))
    assert decision.segment == segment
    assert reason in decision.reason


# --- never cached (the seed's bug) -----------------------------------------------------------


def test_new_contact_who_pays_is_existing_on_the_next_call(contact):
    cid = contact("c1")
    assert segment_of(cid) == "new"
    assert detect_segment(cid) == "new"
    set_attributes(cid, has_paid_lesson=True)
    assert segment_of(cid) == "existing"
    assert detect_segment(cid) == "existing"


def test_whitelisting_takes_effect_on_the_next_call(contact, on_list):
    cid = contact("c1", email="anna@example.nl", email_confirmed=True, attributes={"has_paid_lesson": True})
    assert segment_of(cid) == "existing"
    on_list("weekend", "anna@example.nl")
    assert segment_of(cid) == "weekend"


def test_suggestions_switch_from_new_to_existing_profile_after_payment(contact, frozen_now):
    frozen_now(2026, 11, 30, 9, 0)  # Monday
    with write_session() as session:
        for profile in session.exec(select(PlanningProfile)):
            profile.requires_payment = False
        session.add(Tutor(name="Tutor", email="tutor@lesplanner.test", calendar_id="primary"))
    cid = contact("c1")

    before = suggest_slots("conv-1", contact_id=cid)
    assert (before.segment, before.profile) == ("new", "new")
    assert before.slots[0].start.isoformat() == "2026-12-01T09:00:00+00:00"  # Tue 10:00, 12 h lead

    set_attributes(cid, has_paid_lesson=True)
    after = suggest_slots("conv-1")
    assert (after.segment, after.profile) == ("existing", "existing")
    assert after.slots[0].start.isoformat() == "2026-11-30T14:00:00+00:00"  # Mon 15:00, 6 h lead
