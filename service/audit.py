"""``python -m service.audit verify``: walk the audit log's hash chain and report the
first entry that does not match (an edit, a deletion or an insertion).

Exit status 0 when the chain is intact, 1 when it is broken, 2 when the store cannot
be read. Uses the same settings as the service (``BACKFILL_DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from service.errors import StoreUnavailable
from service.settings import Settings
from service.store.db import create_engine
from service.store.repository import Store


async def verify(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        intact, broken = await Store(engine).verify_audit_chain()
    except StoreUnavailable as err:
        print(f"cannot read the audit log: {err.detail}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    if intact:
        print("audit chain intact")
        return 0
    print(f"audit chain broken at entry {broken}: it or an earlier entry was altered")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.audit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("verify", help="check the hash chain of the audit log")
    parser.parse_args(argv)
    return asyncio.run(verify(Settings().database_url))


if __name__ == "__main__":
    sys.exit(main())
