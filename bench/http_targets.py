"""The two HTTP targets of ``bench_proportion_http.py``, served by uvicorn the same way.

``python bench/http_targets.py service --port P``: the service as ``python -m service``
serves it (``service/server.py``): ``create_app(settings, freeze_heap=True)`` with
settings from the environment (``BACKFILL_DATABASE_URL``, ``BACKFILL_API_KEYS``, ...),
its logging configured from them (``BACKFILL_LOG_LEVEL``, ``BACKFILL_LOG_FORMAT``; the
access log is the service's own, ``BACKFILL_ACCESS_LOG``), and the service's own HTTP
protocol class (uvicorn's, with the request-head deadline) for the chosen parser.

``python bench/http_targets.py bare --port P``: a bare FastAPI app with one ``async def``
POST endpoint at the same path, taking the same JSON body as a plain dict and
returning a small dict, served by uvicorn's protocol class for the same parser: the
floor that FastAPI + uvicorn set on this machine.

Both run ``uvicorn.run`` with the same options (one process, loopback only, no uvicorn
access log, the given loop and HTTP parser), which ``python -m service`` does not
expose; that is why this runner exists. The bare target logs at warning; the service
at what its settings say, as ``python -m service``.
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


def service_target(parser: str) -> tuple[FastAPI, Any, str]:
    """The application, the HTTP protocol class and the log level, as
    ``service.__main__`` and ``service.server.serve`` make them."""
    from service import logs
    from service.app import create_app
    from service.server import guarded_protocol
    from service.settings import Settings

    settings = Settings()
    logs.configure(settings.log_level, settings.log_format, settings.opcua_log_level)
    app = create_app(settings, freeze_heap=True)
    http = guarded_protocol(settings.api.idle_timeout_s, parser=parser)
    return app, http, settings.log_level.lower()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("target", choices=("service", "bare"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", default="asyncio", help="uvicorn --loop (same for both)")
    parser.add_argument(
        "--http", default="httptools", choices=("httptools", "h11"), help="the HTTP parser"
    )
    args = parser.parse_args(argv)
    if args.target == "service":
        app, http, level = service_target(args.http)
        log_config: Any = None  # the service's own handlers and format
    else:
        app, http, level = bare_app(), args.http, "warning"
        log_config = uvicorn.config.LOGGING_CONFIG
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop=args.loop,
        http=http,
        log_level=level,
        log_config=log_config,
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
