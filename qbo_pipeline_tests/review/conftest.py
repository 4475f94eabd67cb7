"""The review page under test: the demo company of `qbo_pipeline_tests.company`, the page
served by uvicorn on a free port, and a real headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from qbo_pipeline.cli import review_desk
from qbo_pipeline.review.guard import AdminCredential, allowed_hosts
from qbo_pipeline.review.web import create_review_app
from qbo_pipeline.serving import BackgroundServer, free_port
from qbo_pipeline_tests.company import Company, company, synced_demo

__all__ = ["company", "synced_demo"]  # fixtures, for the tests of this folder

SCREENSHOTS_VARIABLE = "QBO_REVIEW_SCREENSHOTS"  # a folder: the tests save the pages there
CHROMIUM = (os.environ.get("QBO_TEST_CHROMIUM") or shutil.which("chromium")
            or shutil.which("chromium-browser"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, for one module: Playwright's sync API runs an event loop in this thread while
    it is started, which a later test's `asyncio.run` must not find."""
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine: install the system package "
                    "(apt-get install -y chromium) to run the review page's browser tests")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(60_000)  # a retry or a sync runs a Dagster run
    yield context.new_page()
    context.close()


def screenshot(page: Any, name: str) -> None:
    """Save the page as docs/screenshots shows it, when asked to (QBO_REVIEW_SCREENSHOTS)."""
    folder = os.environ.get(SCREENSHOTS_VARIABLE)
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.fixture
def review(company: Company) -> Iterator[str]:
    """The review page on the company, as `qbo-pipeline review` serves it; its address."""
    with serve_review() as server:
        yield server.base_url


def serve_review(credential: AdminCredential | None = None) -> BackgroundServer:
    """The page as `qbo-pipeline review` builds it, on a free port of 127.0.0.1."""
    app = create_review_app(review_desk(credential), allowed_hosts("127.0.0.1"))
    return BackgroundServer(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                           log_level="warning"))
