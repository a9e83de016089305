"""The web page, /docs and /redoc in a real browser (Debian's Chromium through Playwright) against
a real ``f5serve serve`` with the tiny model. Every request that leaves loopback is aborted and
recorded, so the tests also prove the page and the docs need no network."""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import REF_TEXT, REF_WAV, assert_speech, wav_bytes
from server_process import Server

pytestmark = [pytest.mark.slow, pytest.mark.browser]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "no Chromium on this machine (scripts/setup.sh installs it: apt-get install chromium)",
        allow_module_level=True,
    )
Page = sync_api.Page
expect = sync_api.expect
TIMEOUT_MS = 120_000  # the CI machine is slow; every wait is for a condition, never a fixed time
FAKE_MEDIA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
TEXT = "The page speaks through the public API."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("web"), nfe_steps=2).start()
    yield srv
    srv.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*FAKE_MEDIA, "--autoplay-policy=no-user-gesture-required"],
        )
        yield chromium
        chromium.close()


@contextmanager
def offline_page(browser: sync_api.Browser, url: str) -> Iterator[Page]:
    """A page of a new browser context on ``url`` whose requests outside loopback fail; leaving
    the block, it asserts none was made and no script error was thrown."""
    context = browser.new_context(base_url=url, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []

    def offline(route: sync_api.Route) -> None:
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert outside == [], f"requests left the machine: {outside}"
    assert errors == [], f"script errors: {errors}"


@pytest.fixture
def page(browser: sync_api.Browser, server: Server) -> Iterator[Page]:
    with offline_page(browser, server.url) as page:
        yield page


def voice_option(page: Page, name: str) -> sync_api.Locator:
    """The voice picker's option of the voice ``name`` (options are valued by id)."""
    return page.locator("#speak-form select[name=voice] option", has_text=name)


def open_tab(page: Page, name: str) -> None:
    page.goto(f"/#{name}")
    expect(voice_option(page, "narrator")).to_be_attached()


def test_speak_streams_plays_early_and_downloads(page: Page) -> None:
    open_tab(page, "speak")
    page.evaluate(
        """() => { window.statusLog = [];
        new MutationObserver(() => statusLog.push(document.querySelector('#speak-status')
            .textContent)).observe(document.querySelector('#speak-status'), {childList: true}); }"""
    )
    numbers = ("one", "two", "three", "four", "five", "six", "seven", "eight")  # no digits
    long_text = " ".join(f"{TEXT} This is part {n} of a longer text." for n in numbers)
    form = page.locator("#speak-form")
    form.locator("textarea[name=text]").fill(long_text)
    form.locator("input[name=nfe_steps]").fill("3")
    form.locator("select[name=language]").select_option("en")
    with page.expect_request("**/v1/tts") as sent:
        form.locator("button[type=submit]").click()
    body = sent.value.post_data_json
    assert body["stream_format"] == "sse" and body["response_format"] == "pcm"
    assert body["nfe_steps"] == 3 and body["language"] == "en" and body["seed"] >= 0
    expect(page.locator("#speak-status")).to_contain_text("Done", timeout=TIMEOUT_MS)
    expect(page.locator("#speak-facts")).to_contain_text(f"seed{body['seed']}")
    expect(page.locator("#speak-facts")).to_contain_text("first audio")
    page.wait_for_function("document.querySelector('#speak-audio').duration > 0.3")
    # each chunk's text with its times, in order
    rows = page.locator("#speak-segments li").all_inner_texts()
    assert len(rows) >= 2 and rows[0].startswith("0.00–"), rows
    assert " ".join(row.split(" s ", 1)[1] for row in rows).split() == long_text.split()
    # audio was playing while later chunks were still being made
    received = [
        float(line.split(", ")[1].split()[0])
        for line in page.evaluate("statusLog")
        if line.startswith("Playing")
    ]
    total = page.evaluate("document.querySelector('#speak-audio').duration")
    assert received and min(received) < total - 1, (received, total)
    with page.expect_download() as download:
        page.click("#speak-downloads [data-format=wav]")
    assert_speech(Path(download.value.path()).read_bytes(), min_seconds=total - 0.1)
    with page.expect_download(timeout=TIMEOUT_MS) as again:  # the same take, as mp3
        page.click("#speak-downloads [data-format=mp3]")
    assert_speech(Path(again.value.path()).read_bytes(), "mp3", min_seconds=total - 0.2)


def test_speak_whole_file_with_options_and_download_mp3(page: Page) -> None:
    open_tab(page, "speak")
    form = page.locator("#speak-form")
    form.locator("textarea[name=text]").fill(TEXT)
    form.locator("input[name=stream]").uncheck()
    form.locator("input[name=nfe_steps]").fill("2")
    form.locator("input[name=seed]").fill("7")
    form.locator("select[name=model]").select_option("tiny")
    form.locator("button[type=submit]").click()
    expect(page.locator("#speak-facts")).to_contain_text("seed7", timeout=TIMEOUT_MS)
    page.wait_for_function("document.querySelector('#speak-audio').duration > 0.3")
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.click("#speak-downloads [data-format=mp3]")
    assert download.value.suggested_filename == "speech.mp3"
    assert_speech(Path(download.value.path()).read_bytes(), "mp3")


def add_voice(page: Page, name: str) -> None:
    form = page.locator("#voice-form")
    form.locator("input[name=name]").fill(name)
    form.locator("textarea[name=ref_text]").fill(REF_TEXT)
    form.locator("button[type=submit]").click()


def test_upload_listen_edit_and_delete_a_voice(page: Page) -> None:
    open_tab(page, "voices")
    page.set_input_files("#voice-form input[name=audio]", str(REF_WAV))
    add_voice(page, "uploaded")
    card = page.locator("[data-voice=uploaded]")
    expect(card).to_be_visible(timeout=TIMEOUT_MS)
    expect(voice_option(page, "uploaded")).to_be_attached()
    page.wait_for_function(
        "document.querySelector('[data-voice=uploaded] audio').src.startsWith('blob:')"
    )
    card.locator("textarea").fill("A corrected transcript.")
    card.get_by_role("button", name="Save transcript").click()
    expect(page.locator("[data-voice=uploaded] textarea")).to_have_value("A corrected transcript.")
    page.locator("[data-voice=uploaded]").get_by_role("button", name="Delete").click()
    page.locator("[data-voice=uploaded]").get_by_role("button", name="Really delete?").click()
    expect(page.locator("[data-voice=uploaded]")).to_have_count(0)


def test_record_a_voice_and_hear_it_speak(page: Page) -> None:
    open_tab(page, "voices")
    page.click("#record")
    page.wait_for_function("parseFloat(document.querySelector('#record-time').textContent) >= 2")
    page.click("#record")
    expect(page.locator("#clip-preview")).to_be_visible()
    add_voice(page, "recorded")
    expect(page.locator("[data-voice=recorded]")).to_be_visible(timeout=TIMEOUT_MS)
    page.click("[data-tab=speak]")
    page.select_option("#speak-form select[name=voice]", label="recorded")
    page.fill("#speak-form textarea[name=text]", TEXT)
    page.click("#speak-form button[type=submit]")
    expect(page.locator("#speak-status")).to_contain_text("Done", timeout=TIMEOUT_MS)


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        (wav_bytes(np.full(2400, 0.3, dtype=np.float32), 24000), "too short"),
        (b"these bytes are not audio at all" * 10, "(415 unsupported_media_type)"),
    ],
    ids=["too-short", "not-audio"],
)
def test_a_refused_clip_shows_the_servers_message(
    page: Page, tmp_path: Path, clip: bytes, message: str
) -> None:
    path = tmp_path / "clip.wav"
    path.write_bytes(clip)
    open_tab(page, "voices")
    page.set_input_files("#voice-form input[name=audio]", str(path))
    add_voice(page, "refused")
    expect(page.locator("#voice-error")).to_contain_text("The clip was refused")
    expect(page.locator("#voice-error")).to_contain_text(message)
    expect(page.locator("[data-voice=refused]")).to_have_count(0)


def test_a_job_runs_to_the_end_and_downloads(page: Page) -> None:
    open_tab(page, "jobs")
    text = " ".join(f"Sentence number {i} of a long chapter read by the page." for i in range(6))
    page.fill("#job-form textarea[name=text]", text)
    page.click("#job-form button[type=submit]")
    expect(page.locator("#job-status")).to_contain_text("is queued")
    job_id = page.locator("#job-status").inner_text().split()[1]
    row = page.locator(f"tr[data-job='{job_id}']")
    expect(row).to_have_attribute("data-status", "succeeded", timeout=TIMEOUT_MS)
    expect(row.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "100")
    page.select_option("#job-format", "flac")
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        row.get_by_role("button", name="Download").click()
    assert download.value.suggested_filename == f"{job_id}.flac"
    assert_speech(Path(download.value.path()).read_bytes(), "flac", min_seconds=2)
    page.select_option("#job-filter", "failed")
    expect(row).to_have_count(0)


def test_models_show_what_is_loaded_where(page: Page) -> None:
    open_tab(page, "models")
    row = page.locator("tr[data-model=tiny]")
    expect(row).to_contain_text("loaded")
    expect(row).to_contain_text("cpu")
    expect(row).to_contain_text("en, zh")


def test_swagger_ui_renders_offline(page: Page) -> None:
    page.goto("/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/v1/tts")


def test_redoc_renders_offline(page: Page) -> None:
    page.goto("/redoc")
    expect(page.locator(".redoc-wrap")).to_be_visible()
    expect(page.locator(".redoc-wrap")).to_contain_text("Submit a job")


def test_the_page_loads_without_a_key_and_the_key_field_unlocks_the_api(
    browser: sync_api.Browser, tmp_path: Path
) -> None:
    server = Server(tmp_path, api_keys="page-key", nfe_steps=2).start()
    try:
        with offline_page(browser, server.url) as page:
            page.goto("/")
            expect(page.locator("#banner")).to_contain_text("Enter the API key")
            page.fill("#api-key", "page-key")
            page.press("#api-key", "Enter")
            expect(page.locator("#banner")).to_be_hidden()
            option = voice_option(page, "narrator")
            expect(option).to_be_attached()
            page.reload()  # the key is kept in localStorage
            expect(option).to_be_attached()
    finally:
        server.kill(signal.SIGTERM)
