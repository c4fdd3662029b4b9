"""``python -m service [--host 127.0.0.1] [--port 8000]``."""

from __future__ import annotations

import argparse

import uvicorn

from service import logs
from service.app import create_app
from service.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    app = create_app(settings, freeze_heap=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the service's own handlers and format
    )


if __name__ == "__main__":
    main()
