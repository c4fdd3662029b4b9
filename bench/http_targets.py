"""The two HTTP targets of ``bench_proportion_http.py``, served by uvicorn the same way.

``python bench/http_targets.py service --port P``: the service as ``create_app`` builds
it, with settings from the environment (``BACKFILL_DATABASE_URL``, ``BACKFILL_API_KEYS``,
...), exactly as ``python -m service`` reads them.

``python bench/http_targets.py bare --port P``: a bare FastAPI app with one ``async def``
POST endpoint at the same path, taking the same JSON body as a plain dict and
returning a small dict: the floor that FastAPI + uvicorn set on this machine.

Both run ``uvicorn.run`` with the same options (one process, loopback only,
log level warning, no access log, the given loop and HTTP implementations), which
``python -m service`` does not expose; that is why this runner exists.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI

PROPORTION_PATH = "/api/v1/recipes/proportion"


def bare_app() -> FastAPI:
    app = FastAPI(title="bare endpoint")

    @app.post(PROPORTION_PATH)
    async def bare(body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "fields": len(body)}

    return app


def service_app() -> FastAPI:
    from service.app import create_app
    from service.settings import Settings

    return create_app(Settings())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("target", choices=("service", "bare"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", default="asyncio", help="uvicorn --loop (same for both)")
    parser.add_argument("--http", default="httptools", help="uvicorn --http (same for both)")
    args = parser.parse_args(argv)
    app = service_app() if args.target == "service" else bare_app()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop=args.loop,
        http=args.http,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
