"""Using the web app as a person does, over real HTTP: a browser session, what a page says.

Shared by the web test modules (``from web_client import ...``); the ``server`` and ``visitor``
fixtures are imported by name so pytest finds them in each module.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest
import requests

from conftest import WebServer


class Visitor:
    """A person with a browser session: cookies kept, CSRF token read from the last page."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.headers.update(headers or {})
        self.csrf = ""

    def get(self, path: str, **kwargs) -> requests.Response:
        response = self.http.get(self.base + path, timeout=30, **kwargs)
        found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict | None = None, csrf: bool = True, **kwargs) -> requests.Response:
        if not self.csrf:
            self.get("/")
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf
        response = self.http.post(self.base + path, data=form, timeout=60, **kwargs)
        found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def upload(self, path: Path, name: str | None = None, unit: str = "cents") -> requests.Response:
        """The review page of the upload, as a person sees it once the review is done (a slow
        machine may first show the page that refreshes itself while the review goes on)."""
        with open(path, "rb") as handle:
            response = self.post("/upload", {"amount_unit": unit}, files={"file": (name or path.name, handle)})
        return self.reviewed(response)

    def reviewed(self, response: requests.Response, timeout: float = 60) -> requests.Response:
        deadline = time.monotonic() + timeout
        while 'id="review-pending"' in response.text:
            assert time.monotonic() < deadline, "the review never finished"
            time.sleep(0.1)
            response = self.get(response.url.replace(self.base, ""))
        return response

    def confirm(self, review_url: str) -> requests.Response:
        page = self.get(review_url.replace(self.base, "") + "/confirm")
        count = re.search(r'name="count" value="(\d+)"', page.text).group(1)
        total = html.unescape(re.search(r'name="total" value="([^"]+)"', page.text).group(1))
        return self.post(review_url.replace(self.base, "") + "/confirm", {"count": count, "total": total})


def text_of(response: requests.Response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))


def flashes(response: requests.Response) -> list[str]:
    return [re.sub(r"\s+", " ", m).strip() for m in re.findall(r'class="flash[^"]*"[^>]*>([^<]+)<', response.text)]


def batch_id_of(response: requests.Response) -> str:
    return response.url.rsplit("/", 1)[1]


@pytest.fixture
def server(web_settings):
    with WebServer(web_settings) as running:
        yield running


@pytest.fixture
def visitor(server):
    return Visitor(server.url)
