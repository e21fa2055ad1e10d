"""The web page in a real headless Chromium (Debian's, driven by Selenium).

Logs in, uploads a real recording from ../shared/data, reads the result, opens the history
with its chart, switches to Chinese, checks that another user sees none of it, and that the
page fetched nothing from outside the server. Saves the screenshots the README shows.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from gradio.utils import get_upload_folder

from adapters.web.app import RunningWeb
from inference.engine import InferenceEngine
from tests.audio_factory import speech_file, tone_or_silence
from tests.conftest import REPO, SHARED_DATA
from tests.web_fixtures import post_audio, web_server

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian chromium and chromium-driver are needed (make system-deps)")

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

#: A real read sentence: "Printing, then, for our purpose, may be considered as the art of
#: making books by means of movable types."
RECORDING = SHARED_DATA / "en_asr" / "audio" / "dctts_LJ001-0009.flac"
ALICE = ("alice", "wonderland")
BOB = ("bob", "builder")
#: The README's screenshots are refreshed only on request (VOICEMOOD_SCREENSHOTS=1), so a
#: test run never leaves the checkout modified.
SCREENSHOTS = (REPO / "docs" if os.environ.get("VOICEMOOD_SCREENSHOTS") == "1"
               else Path(tempfile.gettempdir()))


@pytest.fixture(scope="module")
async def site(engine: InferenceEngine,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningWeb]:
    """Logins alice and bob; alice already has two notes, so one more makes a chart."""
    folder = tmp_path_factory.mktemp("browser")
    async with web_server(engine, folder, web_users="alice:wonderland,bob:builder") \
            as (web, _), httpx.AsyncClient(base_url=web.url, timeout=120) as client:
        for i, sentence in enumerate(("What a lovely morning.", "I am glad you came.")):
            clip = speech_file(folder, sentence, "ogg", name=f"seed{i}")
            reply = await post_audio(client, clip.name, clip.read_bytes(), auth=ALICE)
            assert reply.status_code == 200, reply.text
        yield web


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile, no background traffic, network log on."""
    options = Options()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,1500",
                "--lang=en-US", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # An explicit driver path: Selenium Manager would otherwise look for one online.
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: WebDriver, what: Callable[[WebDriver], object], seconds: float = 60,
             shot: str = "failure") -> object:
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.25).until(what)
    except TimeoutException:
        # For the person debugging; not into docs/, which holds only the README's shots.
        driver.save_screenshot(str(Path(tempfile.gettempdir()) / f"voicemood-web-{shot}.png"))
        raise


def log_in(driver: WebDriver, url: str, user: tuple[str, str]) -> None:
    driver.get(url)
    fields = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "input")[:2] or None)
    fields[0].send_keys(user[0])  # type: ignore[index]
    fields[1].send_keys(user[1])  # type: ignore[index]
    driver.find_element(By.XPATH, "//button[normalize-space()='Login']").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "analyse"))


def tab(driver: WebDriver, label: str) -> None:
    driver.find_element(By.XPATH, f"//button[@role='tab'][normalize-space()='{label}']").click()


def requested_urls(driver: WebDriver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def shown(driver: WebDriver, elem_id: str) -> bool:
    """Whether the element is on the page and displayed."""
    return any(e.is_displayed() for e in driver.find_elements(By.ID, elem_id))


def toast(driver: WebDriver) -> str:
    """Title and text of the toast on show ("" when none)."""
    return " | ".join(e.text.strip() for e in driver.find_elements(
        By.CSS_SELECTOR, ".toast-title, .toast-text, .toast-message-text") if e.text.strip())


def scenario(driver: WebDriver, url: str, silent: Path, huge: Path) -> None:
    """What a person does on the page; runs in a thread beside the server's event loop."""
    log_in(driver, url, ALICE)
    wait_for(driver, lambda d: "Signed in as alice" in d.find_element(By.ID, "account").text)
    # Before the first analysis there is no result area: no empty, unlabelled boxes.
    assert not shown(driver, "result") and not shown(driver, "transcript")

    driver.find_element(By.ID, "analyse").click()  # nothing recorded yet: a clear refusal
    wait_for(driver, lambda d: d.find_element(By.ID, "status").text ==
             "Not analysed: Record or upload a voice note first.")
    driver.find_element(By.CSS_SELECTOR, ".toast-close").click()

    driver.find_element(By.CSS_SELECTOR, "#clip input[type=file]").send_keys(str(RECORDING))
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#clip audio, #clip .waveform"
                                               ", #clip button[aria-label]"))
    driver.find_element(By.ID, "analyse").click()

    def transcript(d: WebDriver) -> str:
        return d.find_element(By.CSS_SELECTOR, "#transcript textarea").get_attribute("value")

    wait_for(driver, lambda d: transcript(d).strip(), 180, "analyse")
    assert "printing" in transcript(driver).lower()
    assert "movable" in transcript(driver).lower()
    kept = list(Path(get_upload_folder()).rglob(RECORDING.name))
    assert kept == [], "the uploaded clip was kept after the analysis"
    tag = driver.find_element(By.ID, "tag").text
    assert any(f" / {label} · " in tag for label in ("positive", "negative", "neutral",
                                                     "excited")), tag
    assert "voice:" in driver.find_element(By.ID, "readings").text
    assert "language: en" in driver.find_element(By.ID, "details").text
    driver.save_screenshot(str(SCREENSHOTS / "web-analyse.png"))

    # A refused note replaces the previous result; it does not sit beside it (#20.2).
    driver.find_element(By.CSS_SELECTOR, "#clip button[aria-label='Clear']").click()
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#clip input[type=file]"))
    driver.find_element(By.CSS_SELECTOR, "#clip input[type=file]").send_keys(str(silent))
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#clip audio, #clip .waveform"))
    driver.find_element(By.ID, "analyse").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "status").text.startswith(
        "Not analysed: "), 180, "refusal")
    assert not shown(driver, "result") and not shown(driver, "transcript")
    assert "movable" not in driver.find_element(By.TAG_NAME, "body").text
    driver.find_element(By.CSS_SELECTOR, ".toast-close").click()

    # A file over the limit: Gradio refuses it in the browser, in English and as "50.0 Mb";
    # the page says it as the bots do (#20.11, #20.12).
    driver.find_element(By.CSS_SELECTOR, "#clip button[aria-label='Clear']").click()
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#clip input[type=file]"))
    driver.find_element(By.CSS_SELECTOR, "#clip input[type=file]").send_keys(str(huge))
    wait_for(driver, lambda d: toast(d) == (
        "Not analysed | That file is too large for me (50 MB). Please send a shorter "
        "recording."), 30, "too-large")
    driver.find_element(By.CSS_SELECTOR, ".toast-close").click()

    tab(driver, "History")
    # The chart is there once its image has loaded (a broken image has no natural width).
    wait_for(driver, lambda d: d.execute_script(
        "const i = document.querySelector('#chart img'); return i && i.naturalWidth > 0;"),
        60, "history")
    wait_for(driver, lambda d: "movable" in d.find_element(By.ID, "recent").text)
    assert "3 notes" in driver.find_element(By.ID, "trend").text
    driver.save_screenshot(str(SCREENSHOTS / "web-history.png"))

    driver.find_element(By.XPATH, "//*[@id='language']//label[normalize-space()='中文']").click()
    wait_for(driver, lambda d: d.find_elements(
        By.XPATH, "//button[@role='tab'][normalize-space()='历史']"))
    wait_for(driver, lambda d: "已登录" in d.find_element(By.ID, "account").text)
    tab(driver, "分析")
    driver.find_element(By.CSS_SELECTOR, "#clip input[type=file]").send_keys(str(huge))
    wait_for(driver, lambda d: toast(d) == (
        "未能分析 | 文件太大了（上限 50 MB），请发送短一些的录音。"), 30, "too-large-zh")
    driver.find_element(By.CSS_SELECTOR, ".toast-close").click()

    # The browser's own pages (chrome://) aside, every request went to our server.
    outside = [u for u in requested_urls(driver)
               if u.startswith(("http:", "https:", "ws:", "wss:")) and not u.startswith(url)]
    assert outside == [], outside

    # Log out signs out this tab, in this tab (it used to open a new one).
    driver.find_element(By.ID, "logout").click()
    wait_for(driver, lambda d: d.find_elements(By.XPATH, "//button[normalize-space()='Login']"))
    assert len(driver.window_handles) == 1
    driver.get(url)  # and the login is over: the page asks again
    wait_for(driver, lambda d: d.find_elements(By.XPATH, "//button[normalize-space()='Login']"))
    log_in(driver, url, BOB)
    tab(driver, "History")
    wait_for(driver, lambda d: "No voice notes" in d.find_element(By.ID, "trend").text)
    page = driver.find_element(By.TAG_NAME, "body").text
    assert "movable" not in page.lower() and "lovely" not in page.lower()
    assert not driver.find_elements(By.CSS_SELECTOR, "#chart img")


@pytest.mark.skipif(not RECORDING.exists(), reason=f"{RECORDING} is not present "
                    "(../shared/data holds the real recordings)")
async def test_page_in_a_real_browser(site: RunningWeb, browser: WebDriver,
                                      tmp_path: Path) -> None:
    silent = tone_or_silence(tmp_path, "silence", 2.0, "ogg")
    huge = tmp_path / "huge.ogg"
    with huge.open("wb") as fh:  # sparse: over the 50 MB limit without writing it
        fh.truncate(51 * 1024 * 1024)
    await asyncio.to_thread(scenario, browser, site.url, silent, huge)
