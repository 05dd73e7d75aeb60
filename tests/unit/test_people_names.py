"""Whom `people export/erase ADDRESS` means, and where a text names them (models/people.py)."""

from __future__ import annotations

import pytest

from models.people import person_of, scrub, scrub_bytes


@pytest.mark.parametrize(("value", "key", "kind"), [
    ("Anna@Logistik-Nord.DE", "anna@logistik-nord.de", "email"),
    (" U0ANNA ", "U0ANNA", "slack"),
    ("W012ABCDEF", "W012ABCDEF", "slack"),
])
def test_an_address_or_a_slack_user_names_a_person(value: str, key: str, kind: str) -> None:
    person = person_of(value)
    assert person is not None
    assert (person.key, person.kind) == (key, kind)


@pytest.mark.parametrize("value", ["", "anna", "a@b@c", "u0anna", "%@x.de x"])
def test_anything_else_names_nobody(value: str) -> None:
    assert person_of(value) is None


def test_only_the_whole_address_is_replaced_in_any_case() -> None:
    person = person_of("anna@x.de")
    assert person is not None
    text = "Cc: jo.anna@x.de, <ANNA@X.DE>, anna@x.de. anna@x.de.com anna@x.dex"
    assert scrub(text, person, "erased-1") == \
        "Cc: jo.anna@x.de, <erased-1>, erased-1. anna@x.de.com anna@x.dex"


def test_a_slack_id_is_not_replaced_inside_a_longer_one() -> None:
    person = person_of("U0ANNA")
    assert person is not None
    assert scrub_bytes(b'{"text": "<@U0ANNA> <@U0ANNAB>"}', person, "erased-2") == \
        b'{"text": "<@erased-2> <@U0ANNAB>"}'
