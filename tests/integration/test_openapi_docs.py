"""The API as an integrator meets it: interactive docs that work with no internet (their
assets served by the service), the bearer key declared in the schema, and short, stable
operationIds for generated clients."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from service.api.edge import DOCS_POLICY

pytestmark = pytest.mark.asyncio(loop_scope="module")


class _Assets(HTMLParser):
    """Every URL a page loads: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (tag, name) in {("script", "src"), ("link", "href"), ("img", "src")}:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_load_nothing_from_outside(client: httpx.AsyncClient, page: str) -> None:
    r = await client.get(page)
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == DOCS_POLICY
    assert "http:" not in DOCS_POLICY and "https:" not in DOCS_POLICY
    parser = _Assets()
    parser.feed(r.text)
    scripts = [u for u in parser.urls if u.endswith(".js")]
    assert scripts, r.text
    # Nothing from a CDN or any other host, and no font service.
    assert not re.search(r"https?://", r.text.replace("http://www.w3.org", ""))
    for url in parser.urls:
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url


async def test_the_schema_declares_the_bearer_key(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": schemes["bearerAuth"]["description"],
        }
    }
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if path.startswith("/api/"):
                assert op["security"] == [{"bearerAuth": []}], (method, path)
            else:
                assert "security" not in op, (method, path)


async def test_operation_ids_are_short_stable_and_unique(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    ids = [op["operationId"] for item in schema["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for op_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", op_id), op_id
        assert "api_v1" not in op_id and len(op_id) <= 40, op_id
    ops = {
        (method, path): op["operationId"]
        for path, item in schema["paths"].items()
        for method, op in item.items()
    }
    assert ops[("post", "/api/v1/recipes/proportion")] == "proportion"
    assert ops[("post", "/api/v1/pours/{pour_id}/start")] == "start_pour"
