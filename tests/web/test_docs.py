"""The front door and the API docs pages: nothing a page of the platform loads comes from outside
the machine (the machine may be offline)."""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle

# Tags whose attribute makes the browser fetch something.
FETCHED = {
    "script": "src",
    "link": "href",
    "img": "src",
    "iframe": "src",
    "source": "src",
    "embed": "src",
    "object": "data",
}
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)""")


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        wanted = FETCHED.get(tag)
        if wanted and values.get(wanted):
            self.urls.append(str(values[wanted]))
        self.urls.extend(CSS_URL.findall(values.get("style") or ""))

    def handle_data(self, data: str) -> None:
        self.urls.extend(CSS_URL.findall(data))  # <style> blocks


def assets_of(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


def _local(url: str) -> bool:
    return (url.startswith("/") and not url.startswith("//")) or url.startswith("data:")


def test_front_page_leads_to_the_console(client: TestClient) -> None:
    front = client.get("/", follow_redirects=False)
    assert front.status_code == 307 and front.headers["location"] == "/console"
    landed = client.get("/")
    assert landed.status_code == 200
    assert str(landed.url).endswith("/console/login?next=/console&reason=signin")


def test_api_docs_pages_load_their_assets_from_the_platform(client: TestClient) -> None:
    kinds = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 200 and "/openapi.json" in response.text
        assert "default-src 'self'" in response.headers["content-security-policy"]
        urls = assets_of(response.text)
        assert len(urls) >= 2, page  # the script, and the stylesheet or icon
        for url in urls:
            assert _local(url), (page, url)
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["content-type"].startswith(kinds[url[url.rfind(".") :]]), url
            assert len(asset.content) > 500, url
    assert client.get("/openapi.json").status_code == 200
    assert "OAuth2 Redirect" in client.get("/docs/oauth2-redirect").text
    # Only the listed files are served from the static folder.
    assert client.get("/web/static/vendor/README.md").status_code == 404
    assert client.get("/web/static/vendor/redoc/LICENSE").status_code == 404


def test_no_page_references_an_asset_outside_the_machine(
    client: TestClient,
    tenant: TenantHandle,
    investor_key: str,
    company: dict[str, uuid.UUID],
) -> None:
    pages = {"/console/login": client.get("/console/login").text}
    for page in ("/docs", "/redoc"):
        pages[page] = client.get(page).text
    client.post(
        "/console/login",
        data={"key": tenant.key, "next": "/console"},
        headers={"origin": "http://testserver"},
    )
    for page in (
        "/console",
        "/console/churn",
        "/console/budget",
        "/console/experiments",
        "/console/usage",
        "/console/content",
        "/console/operations",
    ):
        pages[page] = client.get(page).text
    client.get("/investor", params={"key": investor_key})
    pages["/console/investor"] = client.get("/console/investor").text
    pages["/investor/report"] = client.get("/investor/report").text
    for page, html in pages.items():
        assert "<html" in html.lower(), page
        outside = [url for url in assets_of(html) if not _local(url)]
        assert outside == [], page
