"""The HTML report in a real browser: headless Chromium driven over the DevTools protocol.

Why the DevTools protocol rather than ``--dump-dom``/``--screenshot`` and log
scraping: it reports every request the page makes (``Network.requestWillBeSent``,
including blocked ones) and every console message and exception as structured
events, instead of log lines whose wording changes between Chromium versions.
Chromium listens on an ephemeral port on 127.0.0.1 (written to
``DevToolsActivePort`` in its profile folder), with its own background
networking off so that every request seen belongs to the page.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import time
import urllib.request

import numpy as np
import pytest

from fedforensics import open_run
from fedforensics.analysis import analyze
from fedforensics.report.html import write_html

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it)"
)
websockets_sync = pytest.importorskip(
    "websockets.sync.client", reason="needs the websockets package to speak the DevTools protocol (pip install -e '.[test]')"
)

XSS = "<img src=x onerror=alert(1)>"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class DevTools:
    """A minimal DevTools protocol session on one page: commands in, events kept."""

    def __init__(self, ws) -> None:  # type: ignore[no-untyped-def]
        self.ws = ws
        self.events: list[dict] = []
        self.next_id = 0

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self.next_id:
                assert "error" not in message, message["error"]
                return message["result"]
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
        return next(e for e in self.events if e.get("method") == method)

    def evaluate(self, expression: str) -> object:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"]["value"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium with an empty profile; yields the DevTools HTTP endpoint."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    log = (profile.parent / "chromium.log").open("wb")
    process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"], stdout=log, stderr=log)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None, f"chromium exited with {process.returncode}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port in 30 s"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port_file.read_text().split()[0]}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory, demo_run):
    """The report of the demo federation (``fixtures/make_fixtures.py``), attacker c0 renamed to the XSS id."""
    from make_fixtures import rename_clients

    folder = tmp_path_factory.mktemp("browser")
    path = rename_clients(demo_run, folder / "run.h5", {"c0": XSS})
    with open_run(path) as run:
        report = analyze(run)
    target = folder / "report.html"
    write_html(report, target)
    (folder / "first.txt").write_text(report.verdicts[0].client)  # the verdict table's first row, for the XSS test
    return target


@pytest.fixture(scope="module")
def loaded(browser, report_file):
    """The report loaded in a fresh page: (session, events seen while loading, full-page screenshot PNG)."""
    with urllib.request.urlopen(f"{browser}/json/list", timeout=10) as reply:
        page = next(t for t in json.load(reply) if t["type"] == "page")
    with websockets_sync.connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
        session = DevTools(ws)
        for domain in ("Page", "Runtime", "Log", "Network"):
            session.call(f"{domain}.enable")
        session.call("Page.navigate", url=report_file.as_uri())
        session.wait_for("Page.loadEventFired")
        size = session.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = session.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        )
        yield session, list(session.events), base64.b64decode(shot["data"])


def test_page_loads_without_console_errors(loaded):
    _, events, _ = loaded
    errors = [e for e in events if e["method"] == "Runtime.exceptionThrown"]
    errors += [e for e in events if e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert")]
    errors += [e for e in events if e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]
    assert errors == []


def test_page_requests_nothing_from_the_network(loaded, report_file):
    _, events, _ = loaded
    urls = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    assert report_file.as_uri() in urls
    assert [u[:80] for u in urls if u != report_file.as_uri() and not u.startswith("data:")] == []


def test_every_figure_renders(loaded, report_file):
    session, _, _ = loaded
    images = session.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    # heatmap, timeline, norms, distance matrix, embedding, client metrics, global metrics
    assert len(images) == report_file.read_text().count("<img ") == 7
    assert all(complete and width > 300 and height > 150 for complete, width, height in images)


def test_xss_client_id_renders_as_text(loaded, report_file):
    session, _, _ = loaded
    assert session.evaluate("document.querySelectorAll('[onerror], script, img[src=\"x\"]').length") == 0
    assert session.evaluate(f"document.body.innerText.includes({json.dumps(XSS)})") is True
    first_row = session.evaluate("document.querySelector('#verdicts tbody tr td').innerText")
    assert first_row == (report_file.parent / "first.txt").read_text()


def test_screenshot_is_not_blank(loaded, tmp_path_factory):
    from PIL import Image

    _, _, png = loaded
    (tmp_path_factory.getbasetemp() / "report.png").write_bytes(png)  # for a human to look at
    image = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    assert image.shape[1] == 1280 and image.shape[0] > 3000
    assert image.std() > 20
    # content throughout the page, not only in the header: every eighth of it varies
    assert all(band.std() > 5 for band in np.array_split(image, 8))


def test_a_phone_lays_the_page_out_at_its_own_width(loaded):
    """A fresh-eyes auditor's 390-px phone window laid the demo's report out 763 px wide (its contents' links one
    unbreakable line, its tables widening the page), every paragraph zoomed out with it."""
    session, _, _ = loaded
    session.call("Emulation.setDeviceMetricsOverride", width=390, height=800, deviceScaleFactor=1, mobile=True)
    try:
        widths = session.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    finally:
        session.call("Emulation.clearDeviceMetricsOverride")
    assert widths == [390, 390]
