"""Credentials that name a person and a role: the settings' entries, the key file, the
ring, and the rules of acting as a person (service.core.people)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.core import acts
from service.core.people import (
    Actor,
    Credential,
    KeyRing,
    Role,
    acting_role,
    approver,
    check_person,
    key_file_entry,
    parse_key_file,
)
from service.errors import Forbidden, InvalidInput
from service.settings import Settings

ANNA = "anna-engineer-key-0123456789abcdef"
BORIS = "boris-engineer-key-0123456789abcdef"
OLD = "old-scada-key-0123456789abcdef"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def ring_of(setting: str) -> KeyRing:
    return KeyRing(k.credential() for k in Settings(api_keys=setting).api_keys)


def test_each_entry_form_names_its_person_or_only_its_role() -> None:
    ring = ring_of(
        f"engineer:a.ivanova:{ANNA},engineer:b.petrov:sha256:{sha(BORIS)},"
        f"scada:{OLD},hmi:sha256:{sha('hmi-key-0123456789abcdef')}"
    )
    anna, boris = ring.authenticate(ANNA), ring.authenticate(BORIS)
    assert anna is not None and (anna.role, anna.person, anna.named) == (
        Role.ENGINEER,
        "a.ivanova",
        True,
    )
    assert boris is not None and (boris.role, boris.person) == (Role.ENGINEER, "b.petrov")
    old = ring.authenticate(OLD)
    assert old is not None and not old.named
    # A key of the role alone acts as the role and its key's short id, as before.
    assert old.person == f"scada:{sha(OLD)[:8]}" == f"scada:{old.key_id}"
    hmi = ring.authenticate("hmi-key-0123456789abcdef")
    assert hmi is not None and hmi.person.startswith("hmi:")
    assert ring.authenticate(sha(ANNA)) is None  # a digest is not a key
    assert ring.people() == {"a.ivanova": {Role.ENGINEER}, "b.petrov": {Role.ENGINEER}}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (f"engineer:a.ivanova:x:{ANNA}", "role:person:key"),
        (f"engineer::{ANNA}", "role:person:key"),
        (f"engineer:sha256:{ANNA}", "sha256 digest must be 64 hex digits"),
        (f"engineer:Sha256:{ANNA}", "reserved"),
        (f"engineer:service:{ANNA}", "reserved"),
        (f"engineer:a.ivanova:sha256:{sha(ANNA)[:-1]}", "of a.ivanova: its sha256 digest"),
        ("engineer:a.ivanova:short", "of a.ivanova is a placeholder or shorter"),
        (f"engineer:a.ivanova:{ANNA},scada:b.petrov:{ANNA}", "the same key is given twice"),
        (f"engineer:{'x' * 41}:{ANNA}", "1-40 characters"),
        (f"engineer: a.ivanova:{ANNA}", None),  # spaces around the parts are trimmed
        (f"root:a.ivanova:{ANNA}", "role"),
    ],
)
def test_bad_person_entries_are_refused_naming_the_problem(entry: str, message: str | None) -> None:
    if message is None:
        (key,) = Settings(api_keys=entry).api_keys
        assert key.person == "a.ivanova"
        return
    with pytest.raises(ValidationError, match=message) as err:
        Settings(api_keys=entry)
    assert err.value.errors()[0]["loc"][0] == "api_keys"


@pytest.mark.parametrize(
    "name", ["Айгерим Н.", "a.ivanova", "J. O'Brien", "operator-7", "李雷", "x" * 40]
)
def test_a_person_may_be_named_in_any_script(name: str) -> None:
    assert check_person(name) == name


@pytest.mark.parametrize(
    "name", ["", " a", "a ", "a:b", "a,b", "a\nb", "a\u200bb", "SERVICE", "system", "x" * 41]
)
def test_a_name_that_would_break_an_entry_or_a_record_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_person(name, "person[3].name")
    assert err.value.field == "person[3].name"


def test_a_key_file_lists_people_with_their_role_and_digest_and_nothing_usable() -> None:
    text = key_file_entry("a.ivanova", Role.ENGINEER, ANNA) + key_file_entry(
        'N. "Kolya" Kim', Role.SCADA, OLD
    )
    assert ANNA not in text and OLD not in text
    credentials = parse_key_file(text)
    assert [(c.person, c.role) for c in credentials] == [
        ("a.ivanova", Role.ENGINEER),
        ('N. "Kolya" Kim', Role.SCADA),
    ]
    ring = KeyRing(credentials)
    who = ring.authenticate(OLD)
    assert who is not None and who.person == 'N. "Kolya" Kim' and who.named
    assert parse_key_file("") == []  # no people: every key of the file revoked


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[[person]]\nname = 'a'\nrole = 'engineer'\n", "person[0].sha256"),
        (f"[[person]]\nname = 'a'\nrole = 'boss'\nsha256 = '{sha(ANNA)}'\n", "person[0].role"),
        (f"[[person]]\nname = 'a:b'\nrole = 'lab'\nsha256 = '{sha(ANNA)}'\n", "person[0].name"),
        ("[[person]]\nname = 'a'\nrole = 'lab'\nsha256 = 'abc'\n", "person[0].sha256"),
        (
            f"[[person]]\nname = 'a'\nrole = 'lab'\nsha256 = '{sha(ANNA)}'\nkey = 'x'\n",
            "person[0].key",
        ),
        (
            f"[[person]]\nname = 'a'\nrole = 'lab'\nsha256 = '{sha(ANNA)}'\n"
            f"[[person]]\nname = 'b'\nrole = 'hmi'\nsha256 = '{sha(ANNA).upper()}'\n",
            "key_file",
        ),
        ("[people]\n", "key_file"),
        ("person = 3\n", "person"),
        ("[[person]\n", "key_file"),
    ],
)
def test_a_bad_key_file_names_the_table_and_field(text: str, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_key_file(text)
    assert err.value.field == field and err.value.code == "key_file_invalid"


def test_replacing_the_ring_revokes_one_key_and_keeps_the_others() -> None:
    anna = Credential(Role.ENGINEER, hashlib.sha256(ANNA.encode()).digest(), "a.ivanova")
    boris = Credential(Role.ENGINEER, hashlib.sha256(BORIS.encode()).digest(), "b.petrov")
    ring = KeyRing([anna, boris])
    assert ring.authenticate(ANNA) is not None
    ring.replace([boris])
    assert ring.authenticate(ANNA) is None
    who = ring.authenticate(BORIS)
    assert who is not None and who.person == "b.petrov"
    with pytest.raises(InvalidInput, match="twice"):
        ring.replace([boris, boris])
    assert ring.authenticate(BORIS) is not None  # a refused set leaves the ring as it was


def test_an_approval_is_the_approving_persons_own() -> None:
    ring = ring_of(f"engineer:a.ivanova:{ANNA},engineer:{OLD}")
    anna, old = ring.authenticate(ANNA), ring.authenticate(OLD)
    assert anna is not None and old is not None
    assert approver(anna, None) == "a.ivanova"
    assert approver(anna, "a.ivanova") == "a.ivanova"
    with pytest.raises(Forbidden) as err:
        approver(anna, "b.petrov")
    assert err.value.code == "approved_by_mismatch"
    assert err.value.to_dict()["field"] == "approved_by"
    assert "a.ivanova" in err.value.detail and "b.petrov" in err.value.detail
    # A key of the role alone can only claim a name, recorded as given (as before).
    assert approver(old, "J. Engineer") == "J. Engineer"
    assert approver(old, None) == old.person


def test_the_acting_role_is_the_narrowest_allowed_one() -> None:
    assert acting_role({Role.SCADA, Role.ADMIN}, Role.SCADA) is Role.SCADA
    assert acting_role({Role.ADMIN}, Role.SCADA) is Role.ADMIN
    assert acting_role({Role.ENGINEER, Role.HMI}, Role.SCADA) is None
    assert acting_role(set(), Role.SCADA) is None


def test_the_key_command_makes_person_keys_for_the_setting_and_the_key_file(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "service.keys", "engineer:a.ivanova", "scada:b.petrov", "hmi"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    keys = {
        line.split(" (", 1)[0]: line.rsplit(" ", 1)[1]
        for line in out.splitlines()
        if " key" in line and "not shown again" in line
    }
    assert set(keys) == {"engineer key of a.ivanova", "scada key of b.petrov", "hmi key"}
    setting = next(line for line in out.splitlines() if line.startswith("BACKFILL_API_KEYS="))
    ring = ring_of(setting.split("=", 1)[1])
    anna = ring.authenticate(keys["engineer key of a.ivanova"])
    assert anna is not None and (anna.person, anna.role) == ("a.ivanova", Role.ENGINEER)
    hmi = ring.authenticate(keys["hmi key"])
    assert hmi is not None and not hmi.named
    # The key file part: the two named keys, digests only, and the check reads it.
    tables = out.split("# or, for the key file (BACKFILL_KEY_FILE):\n", 1)[1]
    assert all(key not in tables for key in keys.values())
    assert len(tomllib.loads(tables)["person"]) == 2
    path = tmp_path / "people.toml"
    path.write_text(tables)
    checked = subprocess.run(
        [sys.executable, "-m", "service.keys", "--check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "2 keys of 2 people" in checked.stdout and "a.ivanova: engineer" in checked.stdout
    path.write_text(tables.replace('role = "scada"', 'role = "operator"'))
    bad = subprocess.run(
        [sys.executable, "-m", "service.keys", "--check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "person[1].role" in bad.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "service.keys", "engineer:a:b"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "may not" in refused.stderr


def test_each_act_is_an_entry_with_its_role_and_person() -> None:
    anna = Actor("engineer", "a.ivanova")
    entry = acts.pour_command(Actor("scada", "c.operator"), "pause", "p1")
    assert (entry["kind"], entry["reason"], entry["person"], entry["pour_id"]) == (
        "pour_command",
        "pause",
        "c.operator",
        "p1",
    )
    with pytest.raises(ValueError, match="no pour command"):
        acts.pour_command(anna, "delete", "p1")
    lab = acts.lab_results(Actor("lab", "d.lab"), "sheet", [])
    assert lab["new"] == {"sheet_id": None, "entries": []}
