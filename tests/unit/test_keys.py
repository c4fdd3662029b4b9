"""API keys configured as SHA-256 digests only, and the command that makes them."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from pydantic import ValidationError

from service.api.auth import KeyRing
from service.settings import Role, Settings

KEY = "k3y-for-the-scada-client-0123456789"
DIGEST = hashlib.sha256(KEY.encode()).hexdigest()


def test_a_digest_entry_authenticates_its_key_and_nothing_else() -> None:
    s = Settings(api_keys=f"scada:sha256:{DIGEST},hmi:hmi-plain-key-0123456789")
    assert [k.hashed for k in s.api_keys] == [True, False]
    ring = KeyRing(k.credential() for k in s.api_keys)
    who = ring.authenticate(KEY)
    assert who is not None and who.role is Role.SCADA
    assert who.key_id == DIGEST[:8]
    plain = ring.authenticate("hmi-plain-key-0123456789")
    assert plain is not None and plain.role is Role.HMI
    assert ring.authenticate(DIGEST) is None  # the digest itself is not a key
    assert ring.authenticate(KEY[:-1]) is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("scada:sha256:abc", "sha256 digest must be 64 hex digits"),
        (f"scada:sha256:{DIGEST[:-1]}z", "sha256 digest must be 64 hex digits"),
        (f"scada:sha256:{DIGEST},hmi:{KEY}", "the same key is given twice"),
        ("scada:sha256:", "sha256 digest must be 64 hex digits"),
        ("scada", "role:key or role:sha256:<hex digest>"),
    ],
)
def test_bad_digest_entries_are_refused_naming_the_problem(entry: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as err:
        Settings(api_keys=entry)
    assert err.value.errors()[0]["loc"] == ("api_keys",)


def test_the_key_command_prints_keys_once_and_digest_entries_for_the_service() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "service.keys", "scada", "engineer"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    lines = out.splitlines()
    keys = {line.split(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in lines if " key " in line}
    assert set(keys) == {"scada", "engineer"}
    setting = next(line for line in lines if line.startswith("BACKFILL_API_KEYS="))
    value = setting.split("=", 1)[1]
    assert all(key not in value for key in keys.values())
    ring = KeyRing(k.credential() for k in Settings(api_keys=value).api_keys)
    for role, key in keys.items():
        assert len(key) >= 40
        who = ring.authenticate(key)
        assert who is not None and who.role.value == role
