"""The OPC UA standard address space of the service's OPC UA servers, kept in a file and
read node by node as it is used.

Every asyncua ``Server`` starts by building the standard address space (namespace 0,
about 20,000 nodes: types, the Server object): about 1 s of CPU and about 45 MB of
resident memory (the nodes, and the code that makes them) for each server, though a
PLC's few dozen tags use a handful of them. asyncua can instead load namespace 0 from a
``shelve`` file made once, bringing each node into memory when it is first touched
(``Server.init(shelf_file)``, made for slow devices). :func:`standard_nodes` gives the
built-in plant simulator (:mod:`service.simulator.server`) such a file.

The file is made by a separate process (``python -m service.ua_cache DIRECTORY``), so
the process that serves never holds the whole address space, in a fresh folder renamed
into place when complete: a folder per asyncua and Python version in the user's cache
folder (``$XDG_CACHE_HOME``, else ``~/.cache``, then ``backfill-service``), made once
per machine and shared by every process of that user, one making it at a time (a lock
file); about 20 MB. In the container image the user's home is its working directory, so
the file lands in ``/data/.cache`` and is made at the container's first start (a few
seconds). The file holds pickles, so it is used only from a folder this user owns that no
one else may write to. Anything amiss (no writable cache folder, as in a read-only
container; a failed build) and the server builds namespace 0 in memory as before.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

SHELF_NAME = "ns0"
BUILD_TIMEOUT_S = 120.0


def cache_root() -> Path | None:
    """The user's cache folder for the service: ``$XDG_CACHE_HOME/backfill-service``,
    else ``~/.cache/backfill-service``; None for a user without a home."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):  # no HOME and no passwd entry (a container's uid)
            return None
    return Path(base) / "backfill-service"


def _version_folder(root: Path) -> Path:
    python = f"{sys.version_info.major}{sys.version_info.minor}"
    return root / f"asyncua-{metadata.version('asyncua')}-py{python}-ns0"


def _private(folder: Path) -> bool:
    """A folder of this user that nobody else may write to (the shelf holds pickles)."""
    try:
        info = folder.stat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _complete(folder: Path) -> bool:
    return _private(folder) and (folder / SHELF_NAME).is_file()


def _build(root: Path) -> Path:
    """Make the shelf (blocking: run in a thread); its path."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _private(root):
        raise PermissionError(f"{root} is not a folder of this user closed to others")
    final = _version_folder(root)
    with (root / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one maker at a time; the others then use it
        if _complete(final):
            return final / SHELF_NAME
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
        try:
            subprocess.run(
                [sys.executable, "-m", "service.ua_cache", str(staging)],
                check=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=BUILD_TIMEOUT_S,
            )
            # asyncua looks for a file of the shelf's own name; dbm.dumb writes .dat and
            # .dir beside it (dbm.gnu writes the file itself).
            (staging / SHELF_NAME).touch()
            if final.exists():
                shutil.rmtree(final)  # an incomplete or foreign one: made anew
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final / SHELF_NAME


async def standard_nodes(root: Path | None = None) -> Path | None:
    """The shelf of namespace 0 for ``Server.init``, made first if need be; None when
    there can be none here (the server then builds namespace 0 in memory)."""
    root = root or cache_root()
    if root is None:
        log.info("the OPC UA standard nodes are built in memory (no cache folder)")
        return None
    folder = _version_folder(root)
    if _complete(folder):
        return folder / SHELF_NAME
    try:
        return await asyncio.to_thread(_build, root)
    except (OSError, subprocess.SubprocessError) as err:
        detail = err
        if isinstance(err, subprocess.CalledProcessError):
            detail = err.stderr.decode(errors="replace")[-500:] or err
        log.info("the OPC UA standard nodes are built in memory (no cache file: %s)", detail)
        return None


async def _make(folder: Path) -> None:
    from asyncua.server.server import Server

    # Builds namespace 0 in memory, then writes it to the shelf.
    await Server().init(folder / SHELF_NAME)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m service.ua_cache DIRECTORY")
    asyncio.run(_make(Path(sys.argv[1])))
