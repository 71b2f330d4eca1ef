"""/docs in a real browser: headless Chromium loads Swagger UI from the local server (assets
from the package, no network), shows the order operations, and "Try it out" places an order.

`make browser` installs Debian's chromium and chromium-driver when they are missing (as root,
on CI); elsewhere this test skips until they are installed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from processor.config import settings
from tests.helpers import count
from tests.reliability.chaos.client import http_call

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ORDER_OPERATIONS = ("createOrder", "listOrders", "getOrder", "cancelOrder")
TIMEOUT = 30


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver are missing: `make test` runs `make browser`")
        pytest.skip("no headless Chromium: run `make browser` as root (apt-get install chromium)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("API_KEY", raising=False)
    settings.cache_clear()


def test_docs_is_a_public_html_page_with_the_assets_inline(
    api_url: str, configure: Any
) -> None:
    configure(API_KEY="docs-key")  # the key guards orders, never the reference
    status, body, headers = http_call(api_url, "GET", "/docs")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    page = body.decode() if isinstance(body, bytes) else str(body)
    assert 'src="data:text/javascript;base64,' in page
    assert re.findall(r'(?:src|href)="(?!data:)', page) == []  # nothing fetched from elsewhere
    assert 'url: "openapi.json"' in page  # relative: also right under a stage prefix


def test_swagger_ui_shows_the_order_operations_and_try_it_out_creates_an_order(
    browser: Any, api_url: str, system: dict[str, Any], no_api_key: None
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, TIMEOUT)
    browser.get(f"{api_url}/docs")
    for operation in ORDER_OPERATIONS:
        wait.until(ec.visibility_of_element_located((By.ID, f"operations-orders-{operation}")))

    create = "#operations-orders-createOrder"
    browser.find_element(By.CSS_SELECTOR, f"{create} .opblock-summary-control").click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f"{create} .try-out__btn"))).click()
    # The body Swagger UI fills in comes from the schema's examples: it must be a valid order.
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f"{create} .execute"))).click()
    status = wait.until(
        ec.visibility_of_element_located(
            (By.CSS_SELECTOR, f"{create} .live-responses-table tbody .response-col_status")
        )
    )
    assert status.text.strip() == "201", browser.find_element(By.CSS_SELECTOR, create).text
    assert count(system["db"], "SELECT count(*) FROM orders WHERE customer_email = %s",
                 "ada@example.com") == 1
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    assert resources and all(url.startswith((api_url, "data:")) for url in resources), resources
