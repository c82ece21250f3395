# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The built documentation site, opened page by page in headless Chromium.

The site is built with `mkdocs build --strict` (or taken from `$DOCS_SITE_DIR`,
which `scripts/check` just built), served over HTTP on 127.0.0.1, and every page
is loaded in Chromium, driven over the DevTools protocol on a pipe (no port, no
websocket library). A page passes when it loads without a console error, an
uncaught exception, a failed request or a broken image; a full-page screenshot
of each is written to `SITE/screenshots/`.

Without a `chromium` binary the test skips, saying so; `scripts/check` installs
Debian's package and sets `DOCS_REQUIRE_BROWSER=1`, which turns the skip into a
failure.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE_TIMEOUT = 30.0
"""Seconds one page may take to load; only reached if something is broken."""
SETTLE = 0.5
"""Seconds of quiet after the load event before a page is judged."""
MAX_SCREENSHOT_HEIGHT = 8000
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: `$DOCS_SITE_DIR` if it holds one, else a fresh build."""
    given = os.environ.get("DOCS_SITE_DIR")
    if given and (Path(given) / "index.html").is_file():
        return Path(given)
    folder = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--quiet",
            "--site-dir",
            str(folder),
        ],
        cwd=ROOT,
        check=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    return folder


class _Handler(SimpleHTTPRequestHandler):
    """Serves the site; remembers every request that failed."""

    failures: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        del format, args  # the test reports failures itself

    def send_error(self, code: int, message: str | None = None, *a: Any) -> None:
        self.failures.append(f"{code} {self.path}")
        super().send_error(code, message, *a)


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[tuple[str, list[str]]]:
    """The site's base URL on loopback and the list of failed requests."""
    failures: list[str] = []
    handler = type("Handler", (_Handler,), {"failures": failures})
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", failures
    finally:
        server.shutdown()
        server.server_close()


class Browser:
    """Headless Chromium, driven over the DevTools protocol on fds 3 and 4."""

    def __init__(self, executable: str, profile: str) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_pipes() -> None:  # runs in the child, before exec
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self._process = subprocess.Popen(
            [executable, *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_pipes,  # noqa: PLW1509  # fork-safe: two dup2 calls
            # Closing fds would close 3 and 4 too (pass_fds names parent fds).
            close_fds=False,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(
        self, method: str, session: str | None = None, **params: Any
    ) -> dict[str, Any]:
        """Call a DevTools method and return its result (events are kept)."""
        self._next_id += 1
        call: dict[str, Any] = {"id": self._next_id, "method": method}
        call["params"] = params
        if session is not None:
            call["sessionId"] = session
        os.write(self._to_chrome, json.dumps(call).encode() + b"\0")
        deadline = time.monotonic() + PAGE_TIMEOUT
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, method: str, quiet: float) -> None:
        """Wait for an event, then until no event came for `quiet` seconds."""
        deadline = time.monotonic() + PAGE_TIMEOUT
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self._read_message(deadline))
        os.set_blocking(self._from_chrome, False)
        try:
            last = time.monotonic()
            while time.monotonic() - last < quiet:
                try:
                    self.events.append(self._read_message(time.monotonic() + quiet))
                    last = time.monotonic()
                except (TimeoutError, BlockingIOError):
                    time.sleep(0.05)
        finally:
            os.set_blocking(self._from_chrome, True)

    def close(self) -> None:
        """Close the browser."""
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def _problems(events: list[dict[str, Any]]) -> list[str]:
    """The console errors, exceptions and failed loads among DevTools events."""
    problems = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in (
            "error",
            "assert",
        ):
            texts = [str(a.get("value", a.get("description"))) for a in params["args"]]
            problems.append("console.error: " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            problems.append(
                "exception: "
                + str(details.get("exception", {}).get("description", details["text"]))
            )
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            problems.append(f"log: {entry['text']} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"request failed: {params['errorText']}")
    return problems


def _pages(site: Path) -> list[str]:
    """The site's pages, as paths relative to its root."""
    pages = sorted(
        path.relative_to(site).as_posix()
        for path in site.rglob("index.html")
        if path.relative_to(site).parts[0] not in ("assets", "screenshots")
    )
    return [page.removesuffix("index.html") for page in pages]


def test_every_page_loads_in_chromium_without_errors(
    site: Path, served: tuple[str, list[str]]
) -> None:
    executable = _chromium()
    if executable is None:
        reason = (
            "no chromium binary on PATH (scripts/check installs Debian's "
            "'chromium' package)"
        )
        if os.environ.get("DOCS_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    base, failed_requests = served
    pages = _pages(site)
    assert "" in pages and "getting-started/" in pages, pages
    shots = site / "screenshots"
    shots.mkdir(exist_ok=True)
    problems: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as profile:
        browser = Browser(executable, profile)
        try:
            target = browser.send("Target.createTarget", url="about:blank")
            session = browser.send(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                browser.send(f"{domain}.enable", session)
            browser.send(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=1280,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            for page in pages:
                browser.events.clear()
                failed_before = len(failed_requests)
                browser.send("Page.navigate", session, url=base + page)
                browser.wait_for("Page.loadEventFired", quiet=SETTLE)
                broken_images = browser.send(
                    "Runtime.evaluate",
                    session,
                    expression=(
                        "[...document.images].filter(i => !i.complete || "
                        "i.naturalWidth === 0).map(i => i.src)"
                    ),
                    returnByValue=True,
                )["result"]["value"]
                found = _problems(browser.events)
                found += [f"broken image: {src}" for src in broken_images]
                found += [f"HTTP {f}" for f in failed_requests[failed_before:]]
                if found:
                    problems[page or "/"] = found
                _screenshot(browser, session, shots / _shot_name(page))
        finally:
            browser.close()
    assert not problems, json.dumps(problems, indent=2)
    assert sorted(p.name for p in shots.glob("*.png")) == sorted(
        _shot_name(page) for page in pages
    )


def _shot_name(page: str) -> str:
    return (page.strip("/").replace("/", "_") or "index") + ".png"


def _screenshot(browser: Browser, session: str, path: Path) -> None:
    size = browser.send("Page.getLayoutMetrics", session)["cssContentSize"]
    height = min(int(size["height"]), MAX_SCREENSHOT_HEIGHT)
    shot = browser.send(
        "Page.captureScreenshot",
        session,
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1},
    )
    path.write_bytes(base64.b64decode(shot["data"]))
