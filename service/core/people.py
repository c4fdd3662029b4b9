"""Who acts: credentials that name a person and a role, and the rules of acting as one.

A credential is a key's SHA-256 digest with the role it grants and, for a named
credential, the person it belongs to (several people may hold keys of one role; one
person may hold several keys). A key that names nobody (the older ``role:key`` entry)
still works: its acts are recorded as the role and the key's short id
(``engineer:1c530c3f``), and the principal says that it names nobody (``named``).

Keys are 32 random bytes from the operating system (``python -m service.keys``), so
an unsalted SHA-256 is enough to hold them: only digests are kept, and a presented
key's digest is compared in constant time against every one (no early exit, so the
time taken does not say which key matched or how much of it).

Pure: values in, values out (the key file's text is parsed here; reading it and
noticing that it changed is :mod:`service.operations.people`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from service.errors import Forbidden, InvalidInput


class Role(StrEnum):
    HMI = "hmi"
    SCADA = "scada"
    ENGINEER = "engineer"
    LAB = "lab"  # laboratory results only (reads like hmi)
    ADMIN = "admin"


#: The longest person name: it fits every ``*_by`` column of the store.
PERSON_MAX_CHARS = 40
#: Names that mean something else in a key entry or a record.
RESERVED_NAMES = frozenset({"sha256", "service", "system"})
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
# Control, format, surrogate, private-use and unassigned characters, and line breaks.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
ENTRY_FORMS = (
    "role:key or role:sha256:<hex digest> (a key of the role), or role:person:key or "
    "role:person:sha256:<hex digest> (a person's key)"
)


def check_person(name: str, field: str = "person") -> str:
    """A person's name as a credential names it: 1-40 characters, none of ``:`` or
    ``,`` (they separate the parts of a key entry), no control character, no space at
    either end; not one of the reserved words. InvalidInput naming ``field``."""
    if not 1 <= len(name) <= PERSON_MAX_CHARS:
        raise InvalidInput(field, f"{field} must be 1-{PERSON_MAX_CHARS} characters")
    if name != name.strip():
        raise InvalidInput(field, f"{field} {name!r} starts or ends with a space")
    for char in name:
        if char in ":," or unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise InvalidInput(field, f"{field} {name!r} holds {char!r}, which a name may not")
    if name.lower() in RESERVED_NAMES:
        raise InvalidInput(field, f"{field} {name!r} is reserved; choose another name")
    return name


def digest_of(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True, slots=True)
class Credential:
    """A key's digest, the role it grants and (named) the person who holds it."""

    role: Role
    digest: bytes
    person: str | None = None

    @property
    def key_id(self) -> str:
        """The first 8 hex digits of the key's SHA-256: safe to log and to record."""
        return self.digest.hex()[:8]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who presented a key: the role it grants, the key's short id, and the person.
    ``person`` is the credential's person, or for a key that names nobody (``named``
    false) the role and the key id, ``engineer:1c530c3f``."""

    role: Role
    key_id: str
    person: str
    named: bool

    def may(self, *roles: Role) -> bool:
        return self.role is Role.ADMIN or self.role in roles


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted, as a record keeps it: the role, and the person (None: the service's
    own act, or a record from before people were named)."""

    role: str
    person: str | None = None


SERVICE = Actor("service")


def actor_of(who: Principal) -> Actor:
    return Actor(who.role.value, who.person)


def principal_of(credential: Credential) -> Principal:
    if credential.person is None:
        person = f"{credential.role.value}:{credential.key_id}"
        return Principal(credential.role, credential.key_id, person, named=False)
    return Principal(credential.role, credential.key_id, credential.person, named=True)


def check_unique(credentials: Iterable[Credential]) -> None:
    """The same key may stand for one credential only (InvalidInput otherwise)."""
    seen: dict[bytes, Credential] = {}
    for c in credentials:
        if c.digest in seen:
            raise InvalidInput(
                "key", f"the same key is given twice (key id {c.key_id})", code="key_duplicated"
            )
        seen[c.digest] = c


class KeyRing:
    """The credentials in force. :meth:`replace` swaps them in one assignment (a key
    file read again), so a request sees the old set or the new one, never a mix."""

    def __init__(self, credentials: Iterable[Credential] = ()) -> None:
        self._entries: tuple[tuple[bytes, Principal], ...] = ()
        self.replace(credentials)

    def replace(self, credentials: Iterable[Credential]) -> None:
        credentials = list(credentials)
        check_unique(credentials)
        self._entries = tuple((c.digest, principal_of(c)) for c in credentials)

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, presented: str) -> Principal | None:
        digest = digest_of(presented)
        found: Principal | None = None
        for stored, principal in self._entries:
            if hmac.compare_digest(stored, digest):
                found = principal
        return found

    def roles_of(self, person: str) -> frozenset[Role]:
        """The roles the named person holds a key of (none: not a person of the ring)."""
        return frozenset(p.role for _d, p in self._entries if p.named and p.person == person)

    def people(self) -> Mapping[str, frozenset[Role]]:
        """Every named person with the roles they hold keys of."""
        found: dict[str, set[Role]] = {}
        for _d, p in self._entries:
            if p.named:
                found.setdefault(p.person, set()).add(p.role)
        return {name: frozenset(roles) for name, roles in found.items()}


def acting_role(roles: Iterable[Role], *allowed: Role) -> Role | None:
    """The role under which someone holding ``roles`` may do what ``allowed`` may (the
    narrowest: an allowed role before admin); None when none of theirs may."""
    held = set(roles)
    for role in allowed:
        if role in held:
            return role
    return Role.ADMIN if Role.ADMIN in held else None


def approver(who: Principal, given: str | None, field: str = "approved_by") -> str:
    """The name an approval is recorded under. A named key approves as its person:
    ``given`` may be left out or repeat that name; another name is refused (403
    ``approved_by_mismatch``: an approval is the approving person's own). A key that
    names nobody can only claim a name: ``given`` is recorded as given (the audit entry
    beside it names the key), or without one the key's role and id."""
    if not who.named:
        return given if given is not None else who.person
    if given is None or given == who.person:
        return who.person
    raise Forbidden(
        f"this key is {who.person}'s, but {field} says {given!r}: an approval is recorded "
        f"under the approving person's own name (leave {field} out, or give {who.person!r})",
        code="approved_by_mismatch",
        field=field,
    )


# --- configuration: key entries and the key file ---------------------------------------


def parse_key_entries(text: str) -> list[dict[str, Any]]:
    """The comma-separated entries of ``BACKFILL_API_KEYS`` as fields of a key:
    ``role:key``, ``role:sha256:<hex>`` (digest only), ``role:person:key`` and
    ``role:person:sha256:<hex>``. A key therefore holds no ``:``. ValueError naming
    the forms for an entry that is none of them."""
    keys: list[dict[str, Any]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        parts = [p.strip() for p in item.split(":")]
        role, person, hashed, key = parts[0], None, False, ""
        if len(parts) == 2:
            key = parts[1]
        elif len(parts) == 3 and parts[1] == "sha256":
            hashed, key = True, parts[2]
        elif len(parts) == 3:
            person, key = parts[1], parts[2]
        elif len(parts) == 4 and parts[2] == "sha256":
            person, hashed, key = parts[1], True, parts[3]
        else:
            raise ValueError(f"each entry must be {ENTRY_FORMS}")
        if not role or person == "" or not (key or hashed):
            raise ValueError(f"each entry must be {ENTRY_FORMS}")
        keys.append({"role": role, "person": person, "key": key, "hashed": hashed})
    return keys


_FILE_FIELDS = frozenset({"name", "role", "sha256"})


def parse_key_file(text: str) -> list[Credential]:
    """The people of a key file (TOML): one ``[[person]]`` table per key, with the
    person's ``name``, the ``role`` the key grants and the key's ``sha256`` digest (64
    hex digits; the file holds no usable key). A person with two roles, or two
    devices, has two tables. InvalidInput (code ``key_file_invalid``) naming the table
    and field of the first problem; no table at all is no people."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InvalidInput("key_file", f"not TOML: {err}", code="key_file_invalid") from err
    unknown = set(data) - {"person"}
    if unknown:
        raise InvalidInput(
            "key_file",
            f"unknown top-level key {sorted(unknown)[0]!r}; people are [[person]] tables",
            code="key_file_invalid",
        )
    tables = data.get("person", [])
    if not isinstance(tables, list):
        raise InvalidInput("person", "person must be [[person]] tables", code="key_file_invalid")
    credentials: list[Credential] = []
    for i, table in enumerate(tables):
        where = f"person[{i}]"
        if not isinstance(table, dict):
            raise InvalidInput(where, f"{where} is not a table", code="key_file_invalid")
        extra = set(table) - _FILE_FIELDS
        if extra:
            raise InvalidInput(
                f"{where}.{sorted(extra)[0]}",
                f"{where} has an unknown field {sorted(extra)[0]!r} (fields: name, role, sha256)",
                code="key_file_invalid",
            )
        values: dict[str, str] = {}
        for name in ("name", "role", "sha256"):
            value = table.get(name)
            if not isinstance(value, str):
                raise InvalidInput(
                    f"{where}.{name}", f"{where} needs {name} (text)", code="key_file_invalid"
                )
            values[name] = value
        try:
            person = check_person(values["name"], f"{where}.name")
        except InvalidInput as err:
            raise InvalidInput(err.field, err.detail, code="key_file_invalid") from err
        try:
            role = Role(values["role"])
        except ValueError as err:
            raise InvalidInput(
                f"{where}.role",
                f"{where}.role {values['role']!r} is no role (" + ", ".join(Role) + ")",
                code="key_file_invalid",
            ) from err
        if not _SHA256_HEX.fullmatch(values["sha256"]):
            raise InvalidInput(
                f"{where}.sha256",
                f"{where}.sha256 must be the key's SHA-256 digest, 64 hex digits",
                code="key_file_invalid",
            )
        credentials.append(Credential(role, bytes.fromhex(values["sha256"]), person))
    try:
        check_unique(credentials)
    except InvalidInput as err:
        raise InvalidInput("key_file", err.detail, code="key_file_invalid") from err
    return credentials


def key_file_entry(person: str, role: Role, key: str) -> str:
    """The ``[[person]]`` table of a key file for a new key (its digest only)."""
    return (
        "[[person]]\n"
        f"name = {_toml_string(person)}\n"
        f'role = "{role.value}"\n'
        f'sha256 = "{digest_of(key).hex()}"\n'
    )


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
