"""A real headless Chromium for tests: Debian's `chromium` driven by its `chromedriver`.

    from tests.browser import chromium_driver, wait_for_text

    with chromium_driver() as driver:
        driver.get("http://127.0.0.1:8000/")
        wait_for_text(driver, "Déploiements")
        driver.save_screenshot(str(tmp_path / "page.png"))

Nothing is downloaded: `.ci/run` installs the `chromium` and `chromium-driver` packages, and
Selenium is pointed at `/usr/bin/chromedriver` (its own driver manager is never used). Each
driver gets a fresh profile in a temporary folder, removed on exit. Without Chromium the test
is skipped locally and fails in CI (`CI=true`), like the PostgreSQL tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Flags that work on a container without GPU, sandbox or Internet access.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=fr-FR",
]


def require_chromium() -> None:
    """Skip the test (fail in CI) when Debian's Chromium and its driver are not installed."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        message = f"Chromium is needed (apt-get install chromium chromium-driver): {missing}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def chromium_driver(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A Selenium WebDriver on a fresh headless Chromium, quit on exit."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(120)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def page_text(driver: Any) -> str:
    """The visible text of the page (what a person reads)."""
    return str(driver.execute_script("return document.body ? document.body.innerText : ''"))


def wait_for_text(driver: Any, *texts: str, timeout: float = 60) -> str:
    """Until every one of `texts` is visible on the page; returns the page's text."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = page_text(driver)
        if all(t in text for t in texts):
            return text
        time.sleep(0.5)
    missing = [t for t in texts if t not in text]
    raise AssertionError(f"not on the page after {timeout} s: {missing}\n--- page ---\n{text}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    """An ASGI `app` (tiflow web) on http://127.0.0.1:port, served by uvicorn in a thread for
    the duration of the block."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("tiflow web did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
