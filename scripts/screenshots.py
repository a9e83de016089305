"""Screenshots of the web page's sections for docs/web.md, taken in Chromium (Playwright) against
a real ``f5serve serve`` with the tiny test model.

    .venv/bin/python scripts/screenshots.py            # writes docs/images/web-*.png
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from server_process import Server  # noqa: E402 (the test helpers are not a package)

IMAGES = ROOT / "docs" / "images"
REF_WAV = ROOT / "tests" / "fixtures" / "basic_ref_en.wav"
REF_TEXT = "Some call me nature, others call me mother nature."
SPEECH = (
    "Welcome to f5serve. This paragraph was spoken by a cloned voice, chunk by chunk. "
    "Each chunk of the text plays as soon as it is made, while the next ones are still on their "
    "way, and the page lists every chunk with the time where it starts and ends."
)
CHAPTER = " ".join(f"This is sentence {i} of a chapter read aloud by a job." for i in range(40))
TIMEOUT_MS = 120_000
VIEWPORT = {"width": 1180, "height": 760}


def speak(page: Page) -> None:
    page.goto("/#speak")
    form = page.locator("#speak-form")
    expect(form.locator("select[name=voice] option[value=narrator]")).to_be_attached()
    form.locator("textarea[name=text]").fill(SPEECH)
    form.locator("input[name=seed]").fill("42")
    form.locator("button[type=submit]").click()  # streamed: the chunks are listed as they come
    expect(page.locator("#speak-status")).to_contain_text("Done", timeout=TIMEOUT_MS)
    shot(page, "speak")


def voices(page: Page) -> None:
    page.goto("/#voices")
    form = page.locator("#voice-form")
    form.locator("input[name=name]").fill("studio")
    form.locator("input[name=language]").fill("en")
    form.locator("textarea[name=ref_text]").fill(REF_TEXT)
    form.locator("input[name=audio]").set_input_files(str(REF_WAV))
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-voice=studio]")).to_be_visible(timeout=TIMEOUT_MS)
    form.locator("input[name=name]").fill("memo")
    form.locator("textarea[name=ref_text]").fill("Hi.")
    form.locator("input[name=audio]").set_input_files(
        files=[{"name": "hi.txt", "mimeType": "text/plain", "buffer": b"not audio" * 20}]
    )
    form.locator("button[type=submit]").click()
    expect(page.locator("#voice-error")).to_be_visible()
    shot(page, "voices")


def jobs(page: Page) -> None:
    page.goto("/#jobs")
    form = page.locator("#job-form")
    expect(form.locator("select[name=voice] option[value=narrator]")).to_be_attached()
    form.locator("textarea[name=text]").fill("A short job that has finished already.")
    form.locator("button[type=submit]").click()
    expect(page.locator("tr[data-status=succeeded]")).to_have_count(1, timeout=TIMEOUT_MS)
    form.locator("textarea[name=text]").fill(CHAPTER)
    form.locator("button[type=submit]").click()
    running = page.locator("tr[data-status=running] [role=progressbar]:not([aria-valuenow='0'])")
    expect(running).to_have_count(1, timeout=TIMEOUT_MS)
    shot(page, "jobs")


def models(page: Page) -> None:
    page.goto("/#models")
    expect(page.locator("tr[data-model=tiny]")).to_contain_text("loaded")
    shot(page, "models")


def docs(page: Page) -> None:
    page.goto("/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    shot(page, "docs")


def shot(page: Page, name: str) -> None:
    dark = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    path = IMAGES / f"web-{name}{'-dark' if dark else ''}.png"
    page.screenshot(path=str(path), full_page=False)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} kB)")


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("error: no Chromium found (scripts/setup.sh installs it)")
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        server = Server(Path(folder), nfe_steps=2, job_workers=1).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium)
                for scheme in ("light", "dark"):
                    context = browser.new_context(
                        base_url=server.url, viewport=VIEWPORT, color_scheme=scheme
                    )
                    context.set_default_timeout(TIMEOUT_MS)
                    page = context.new_page()
                    steps = (speak, voices, jobs, models, docs) if scheme == "light" else (speak,)
                    for step in steps:
                        step(page)
                    context.close()
                browser.close()
        finally:
            server.kill(signal.SIGTERM)


if __name__ == "__main__":
    main()
