"""``python -m service.keys ROLE:PERSON [...]``: make one new API key per person.

Each argument is a role and the person who is to hold the key (``engineer:a.ivanova``;
roles hmi, scada, engineer, lab (laboratory results only), admin), or a role alone for
a key that names nobody (its acts are recorded as the role and the key's id). Each key
is printed once, to hand to its holder; the service's configuration needs only the
digests printed with them: the ``BACKFILL_API_KEYS`` entry (``role:person:sha256:<hex>``)
or the key file's ``[[person]]`` table (``BACKFILL_KEY_FILE``, read again when it
changes, so a key is added or revoked without a restart). Neither holds a usable key.
Keys are 32 random bytes (256 bits) from the operating system, so an unsalted SHA-256
is enough to store them.

``python -m service.keys --check FILE`` reads a key file as the service would and lists
its people and their roles (exit status 1 and the problem when it is not valid).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from service.core.people import (
    Role,
    check_person,
    digest_of,
    key_file_entry,
    parse_key_file,
)
from service.errors import InvalidInput


def new_key() -> str:
    return secrets.token_urlsafe(32)


def digest_entry(role: Role, key: str, person: str | None = None) -> str:
    """The ``BACKFILL_API_KEYS`` entry of a key, its digest only."""
    who = f"{person}:" if person is not None else ""
    return f"{role.value}:{who}sha256:{digest_of(key).hex()}"


def _holder(text: str) -> tuple[Role, str | None]:
    role, _, person = text.partition(":")
    try:
        parsed = Role(role)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{role!r} is no role (" + ", ".join(r.value for r in Role) + ")"
        ) from err
    if not person:
        return parsed, None
    try:
        return parsed, check_person(person)
    except InvalidInput as err:
        raise argparse.ArgumentTypeError(err.detail) from err


def _check(path: Path) -> int:
    try:
        credentials = parse_key_file(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        print(f"{path}: cannot be read: {err}", file=sys.stderr)
        return 1
    except InvalidInput as err:
        print(f"{path}: {err.field}: {err.detail}", file=sys.stderr)
        return 1
    people: dict[str, list[str]] = {}
    for c in credentials:
        people.setdefault(c.person or "", []).append(f"{c.role.value} (key {c.key_id})")
    print(f"{path}: {len(credentials)} keys of {len(people)} people")
    for person in sorted(people):
        print(f"  {person}: {', '.join(people[person])}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.keys",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "holders",
        nargs="*",
        type=_holder,
        metavar="ROLE[:PERSON]",
        help="a role and the person to hold the key (engineer:a.ivanova), or a role alone",
    )
    parser.add_argument("--check", type=Path, metavar="FILE", help="check a key file")
    args = parser.parse_args(argv)
    if args.check is not None:
        return _check(args.check)
    if not args.holders:
        parser.error("name at least one ROLE[:PERSON]")
    entries, tables = [], []
    for role, person in args.holders:
        key = new_key()
        whose = f"{role.value} key of {person}" if person else f"{role.value} key"
        print(f"{whose} (give it to its holder; it is not shown again): {key}")
        entries.append(digest_entry(role, key, person))
        if person is not None:
            tables.append(key_file_entry(person, role, key))
    print("# for the service's configuration (digests only):")
    print("BACKFILL_API_KEYS=" + ",".join(entries))
    if tables:
        print("# or, for the key file (BACKFILL_KEY_FILE):")
        print("\n".join(tables), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
