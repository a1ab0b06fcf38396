"""What the browser tests share: headless Chromium with ../shared/media as the fake camera and
microphone, opened at a school laptop's size, and a check that no text covers other text."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import SHARED

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VIEWPORT = {"width": 1280, "height": 800}  # every view is checked at this size


def needs_a_browser() -> None:
    """Skip, visibly, where there is no Chromium or no Playwright."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture(scope="module")
def open_page():
    """A factory: open_page(url) -> a Playwright page at `url`, in its own browser context
    (its own cookies) with the fake camera and microphone allowed. Everything it opened is
    closed when the module's tests are done."""
    needs_a_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={SHARED / 'media' / 'student_face.y4m'}",
            f"--use-file-for-fake-audio-capture={SHARED / 'media' / 'student_frustrated_tts.wav'}"])

        def _open(url: str, *, viewport: dict = VIEWPORT):
            context = browser.new_context(viewport=viewport, permissions=["camera", "microphone"])
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(url)
            return page

        yield _open
        browser.close()


# Each line of visible text as the browser lays it out (a text node's client rects), cut to
# what its scrolling or clipping ancestors let show; two lines of different text nodes that
# cover each other by more than 2 px each way are an overlap ("Tutor" over the first message).
_OVERLAPS_JS = """(root) => {
  const lines = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    if (!text || !el || !/[\p{L}\p{N}]/u.test(text)) continue;  // icons ("⋮") are not text
    const cs = getComputedStyle(el);
    if (cs.visibility === 'hidden' || Number(cs.opacity) === 0) continue;
    let clip = {left: -1e9, top: -1e9, right: 1e9, bottom: 1e9};
    for (let a = el; a && a !== document.documentElement; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (Number(s.opacity) === 0 || s.visibility === 'hidden') { clip = null; break; }
      if (s.overflowX !== 'visible' || s.overflowY !== 'visible') {
        const r = a.getBoundingClientRect();
        clip = {left: Math.max(clip.left, r.left), top: Math.max(clip.top, r.top),
                right: Math.min(clip.right, r.right), bottom: Math.min(clip.bottom, r.bottom)};
      }
    }
    if (!clip) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      const b = {left: Math.max(r.left, clip.left), top: Math.max(r.top, clip.top),
                 right: Math.min(r.right, clip.right), bottom: Math.min(r.bottom, clip.bottom)};
      if (b.right - b.left > 1 && b.bottom - b.top > 1) lines.push({node, text, b});
    }
  }
  const out = [];
  for (let i = 0; i < lines.length; i++) for (let j = i + 1; j < lines.length; j++) {
    const p = lines[i], q = lines[j];
    if (p.node === q.node) continue;
    const w = Math.min(p.b.right, q.b.right) - Math.max(p.b.left, q.b.left);
    const h = Math.min(p.b.bottom, q.b.bottom) - Math.max(p.b.top, q.b.top);
    if (w > 2 && h > 2) out.push(`${p.text.slice(0, 40)} | ${q.text.slice(0, 40)}`);
  }
  return [...new Set(out)];
}"""


def text_overlaps(page, selector: str = ".gradio-container") -> list[str]:
    """Pairs of visible texts under `selector` drawn over each other ("a | b"); [] is good."""
    return page.locator(selector).first.evaluate(_OVERLAPS_JS)


def broken_words(page, selector: str) -> list[str]:
    """The words under `selector` that the layout split over two lines ("Strugglin|g"): a
    column too narrow for its own heading. Wrapping between words is fine."""
    return page.locator(selector).evaluate_all("""(els) => {
        const out = [];
        for (const el of els) {
          const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (const m of node.textContent.matchAll(/\\S+/g)) {
              const range = document.createRange();
              range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
              const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
              if (tops.size > 1) out.push(m[0]);
            }
          }
        }
        return out; }""")
