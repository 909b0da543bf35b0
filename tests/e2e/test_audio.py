"""The audio half of the web client in Chromium: upload a generated track with its progress
bar, watch it being processed, open its page (waveform drawn on a canvas), play it through
the client's own HLS player (Media Source Extensions), seek on the waveform, pick a
quality, and keep listening in a chat channel; a private track shared from the UI plays for
the person it is shared with (signed URLs) and for no one else; the player's pure parts
(playlist parsing, variant choice, queue, loudness gain) run in the page."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from playwright.async_api import Page, Response, expect

from conftest import PASSWORD, PHONE, Console, OpenPage, artifact, register, screenshot
from miaou.sdk import Client
from miaou.server import RunningNode

pytestmark = pytest.mark.database_kinds("sqlite")
RATE = 44_100
SECONDS = 28  # five HLS segments of about 6 s
AUDIO = "document.querySelector('audio.player-media')"
SIGNED_SEGMENT = re.compile(r"/media/\d+\.\d+\.[0-9a-f]{32}/hls/aac_\d+/seg_\d+\.m4s$")


def tone(path: Path, seconds: float = SECONDS) -> Path:
    """A WAV (PyAV) of a chord pulsing at 120 BPM with some noise: a waveform with shape."""
    t = np.arange(int(seconds * RATE)) / RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) / 3
    envelope = 0.25 + 0.75 * (np.mod(t, 0.5) < 0.2) * np.minimum(1, t / 4)
    noise = np.random.default_rng(3).normal(0, 0.03, t.size)
    mono = np.clip(0.6 * chord * envelope + noise, -1, 1).astype(np.float32)
    samples = np.stack([mono, np.roll(mono, 40)])
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=RATE, layout="stereo")
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=RATE)
        for start in range(0, samples.shape[1], 4096):
            chunk = np.ascontiguousarray(samples[:, start : start + 4096])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


async def media_time(page: Page) -> float:
    value: float = await page.evaluate(f"{AUDIO}.currentTime")
    return value


async def expect_advancing(page: Page, seconds: float = 1.0) -> None:
    """The media element's clock moves on (so audio is being played, not just loaded)."""
    before = await media_time(page)
    await page.wait_for_function(
        f"t => {AUDIO}.currentTime > t + {seconds} && !{AUDIO}.paused", arg=before
    )


PAINTED = """() => {
  const canvas = document.querySelector('miaou-track-waveform canvas');
  if (!canvas || !canvas.width) return 0;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
  return painted;
}"""


async def waveform_drawn(page: Page, at_least: int) -> int:
    """Wait until the track page's waveform canvas has this many painted pixels (read back
    with getImageData); how many it has."""
    await page.wait_for_function(f"() => ({PAINTED})() >= {at_least}")
    count: int = await page.evaluate(PAINTED)
    return count


async def unnamed_controls(page: Page) -> list[str]:
    """Controls of the main pane and the player bar with no accessible name (aria-label,
    a <label>, text, title)."""
    found: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll('#main, miaou-player-bar')]
          .flatMap((root) => [...root.querySelectorAll(
            'button, a[href], input, textarea, select, [role="slider"]')])
          .filter((el) => !el.closest('[hidden]'))
          .filter((el) => !(el.getAttribute('aria-label') || el.labels?.length
            || el.textContent.trim() || el.getAttribute('title')))
          .map((el) => el.outerHTML.slice(0, 80))"""
    )
    return found


async def gain_settles(page: Page, value: float) -> bool:
    """The player's Web Audio gain reaches `value` (it glides there in a few ms)."""
    # The page's own player module (one instance per URL), handed to a sync predicate.
    await page.evaluate(
        "async () => { window.testPlayer = (await import('/static/js/audio/player.js')).player }"
    )
    await page.wait_for_function(
        """(value) => {
          const graph = window.testPlayer.graph;
          return graph?.context.state === 'running'
            && Math.abs(graph.gain.gain.value - value) < 1e-3;
        }""",
        arg=value,
    )
    return True


async def media_requests(page: Page, pattern: str) -> list[str]:
    names: list[str] = await page.evaluate(
        "p => performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => new RegExp(p).test(n))",
        pattern,
    )
    return names


async def test_upload_process_play_seek_and_keep_playing(
    open_page: OpenPage, console: Console, tmp_path: Path
) -> None:
    alice = await open_page("alice")
    plays: list[Response] = []
    alice.on("response", lambda r: plays.append(r) if r.url.endswith("/plays") else None)
    await register(alice, "alice")
    await expect(alice.get_by_role("heading", name="Welcome, alice")).to_be_visible()
    # A guild, to listen in one of its channels later.
    await alice.locator("miaou-guilds").get_by_role("button", name="Create or join a guild").click()
    await alice.get_by_role("button", name="Create a guild").click()
    await alice.get_by_label("Guild name").fill("Listening Room")
    await alice.get_by_role("button", name="Create", exact=True).click()
    await expect(alice.get_by_role("heading", name="# general")).to_be_visible()

    # Tracks, from the rail; then Upload.
    await alice.get_by_role("link", name="Tracks").click()
    await expect(alice.get_by_role("heading", name="Tracks", exact=True)).to_be_visible()
    await alice.get_by_role("link", name="Upload").click()
    await expect(alice.get_by_role("heading", name="Upload a track")).to_be_visible()
    # Not audio: the node refuses it (the browser logs the 400), the form says why.
    console.allowed.append(
        re.compile(r"^alice: console: Failed to load resource: .* 400 .*/api/v1/tracks'")
    )
    junk = tmp_path / "notes.mp3"
    junk.write_bytes(b"these are not the sounds you are looking for\n" * 200)
    await alice.get_by_label("Audio file").set_input_files(str(junk))
    await alice.get_by_role("button", name="Upload", exact=True).click()
    await expect(alice.get_by_role("alert")).to_have_text(
        "This file is not audio in a supported format."
    )
    await alice.get_by_label("Title").fill("")
    await alice.get_by_label("Audio file").set_input_files(str(tone(tmp_path / "Pulse.wav")))
    await expect(alice.get_by_label("Title")).to_have_value("Pulse")
    assert await unnamed_controls(alice) == []
    await alice.get_by_label("Title").fill("Evening Pulse")
    await alice.get_by_label("Tags").fill("Ambient, test tone")
    # Slow enough to watch the bar move (about 2.5 MB/s for 4.9 MB).
    cdp = await alice.context.new_cdp_session(alice)
    await cdp.send("Network.enable")
    await cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 5, "downloadThroughput": -1, "uploadThroughput": 2_500_000},
    )
    await alice.get_by_role("button", name="Upload", exact=True).click()
    uploading = alice.locator("progress.upload-progress")
    await expect(uploading).to_be_visible()
    await alice.wait_for_function(
        "() => document.querySelector('progress.upload-progress')?.value >= 10"
    )
    await screenshot(alice, "audio-01-upload")
    # The node processes it; the page follows until it is playable.
    await expect(alice.locator("progress.processing-progress")).to_be_visible(timeout=20_000)
    await expect(alice.get_by_text(re.compile(r"Processing… \d+ %"))).to_be_visible()
    await cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    await expect(alice.get_by_text("Ready: the track is playable.")).to_be_visible(timeout=45_000)
    await expect(alice.locator("progress.processing-progress")).to_have_js_property("value", 100)
    await alice.get_by_role("link", name="Open the track").click()

    # The track page: its waveform is drawn on the canvas.
    await expect(alice.get_by_role("heading", name="Evening Pulse", level=2)).to_be_visible()
    await expect(alice.get_by_role("link", name="#ambient")).to_be_visible()
    painted = await waveform_drawn(alice, 2_000)
    width, height = await alice.evaluate(
        "(c => [c.width, c.height])(document.querySelector('miaou-track-waveform canvas'))"
    )
    assert painted < width * height * 0.9  # a shape, not a filled box

    # Play: a real click. The element plays from MSE (a blob: URL) and its clock advances.
    await alice.locator("miaou-track-page").get_by_role("button", name="Play").click()
    bar = alice.locator("miaou-player-bar")
    await expect(bar.get_by_role("button", name="Pause")).to_be_visible()
    await expect(bar.get_by_role("link", name="Evening Pulse")).to_be_visible()
    await expect_advancing(alice)
    assert (await alice.evaluate(f"{AUDIO}.src")).startswith("blob:")
    await alice.evaluate(f"{AUDIO}.marked = true")  # the same element later, in the chat

    # Loudness normalisation: a Web Audio gain from the stored ReplayGain value, never
    # above what the true peak allows; times the volume; off, only the volume.
    track = await alice.evaluate(
        "async () => (await import('/static/js/audio/player.js')).player.track"
    )
    loudness = track["loudness"]
    expected = min(
        10 ** (loudness["replaygain_track_gain_db"] / 20),
        1 / max(10 ** (loudness["true_peak_dbtp"] / 20), loudness["replaygain_track_peak"]),
    )
    assert await gain_settles(alice, expected * 0.8)  # the default volume is 80 %
    await bar.get_by_label("Volume").fill("50")
    assert await gain_settles(alice, expected * 0.5)
    await bar.get_by_role("button", name=re.compile("^Normalise loudness")).click()
    assert await gain_settles(alice, 0.5)
    await bar.get_by_role("button", name=re.compile("^Normalise loudness")).click()
    assert await gain_settles(alice, expected * 0.5)

    # Quality: Auto and the three AAC variants of the master playlist (not Opus). Auto
    # began at 128 kb/s and climbed to 256 kb/s once enough was buffered (init first).
    quality = bar.get_by_label("Quality")
    options = await quality.locator("option").all_text_contents()
    assert options[0].startswith("Auto") and options[1:] == ["64 kb/s", "128 kb/s", "256 kb/s"]
    await alice.wait_for_function(
        "() => performance.getEntriesByType('resource').some(e => /aac_256\\/seg_/.test(e.name))"
    )
    assert await media_requests(alice, "aac_128/seg_00000\\.m4s$")
    fetched = await media_requests(alice, "aac_256/(init\\.mp4|seg_\\d+\\.m4s)$")
    assert fetched[0].endswith("aac_256/init.mp4"), fetched
    await quality.select_option("aac_64")
    await expect(quality).to_have_attribute("data-playing", "aac_64", timeout=15_000)
    assert await media_requests(alice, "aac_64/init\\.mp4$")
    await alice.get_by_text("Edit track").click()  # the owner's settings, open
    assert await unnamed_controls(alice) == []
    await alice.get_by_text("Edit track").click()
    await screenshot(alice, "audio-02-track-page")
    await bar.screenshot(path=str(artifact("audio-03-player-bar.png")))

    # Off to the chat: the player bar stays and keeps playing, the same element.
    await (
        alice.locator("miaou-guilds").get_by_role("link", name=re.compile("Listening Room")).click()
    )
    await expect(alice.get_by_role("heading", name="# general")).to_be_visible()
    await expect(bar.get_by_role("button", name="Pause")).to_be_visible()
    assert await alice.evaluate(f"{AUDIO}.marked === true")
    await expect_advancing(alice)
    await screenshot(alice, "audio-04-chat-with-player")

    # Back to the track (the bar's title links to it): click at 75 % of the waveform.
    await bar.get_by_role("link", name="Evening Pulse").click()
    wave = alice.get_by_role("slider", name="Seek in Evening Pulse")
    await expect(wave).to_be_visible()
    await waveform_drawn(alice, 2_000)
    box = await wave.bounding_box()
    assert box is not None
    before = await media_time(alice)
    assert before < 18
    await wave.click(position={"x": box["width"] * 0.75, "y": box["height"] / 2})
    await alice.wait_for_function(f"() => {AUDIO}.currentTime > 20 && {AUDIO}.currentTime < 22")
    await expect_advancing(alice, 0.5)
    # The keyboard seeks too: Home goes back to the start.
    await wave.focus()
    await alice.keyboard.press("Home")
    await alice.wait_for_function(f"() => {AUDIO}.currentTime < 3")
    await alice.keyboard.press("ArrowRight")
    await alice.wait_for_function(f"() => {AUDIO}.currentTime >= 4")
    value = await wave.get_attribute("aria-valuenow")
    assert value is not None and int(value) >= 4

    # Repeat this track, and past 30 s of listening (seeks do not count; a repeat goes on
    # counting) the player reports a play, once. At four times the speed to keep the test short:
    # it counts seconds of the track heard.
    await bar.get_by_role("button", name="Repeat: off").click()
    await bar.get_by_role("button", name="Repeat: all").click()
    await expect(bar.get_by_role("button", name="Repeat: this track")).to_be_visible()
    await alice.evaluate(f"{AUDIO}.playbackRate = 4")
    for _ in range(300):  # at most 30 s
        if plays:
            break
        await alice.wait_for_timeout(100)
    assert len(plays) == 1 and await plays[0].json() == {"counted": True, "plays": 1}
    await alice.wait_for_function(f"() => {AUDIO}.currentTime < 10")  # it went round
    await alice.evaluate(f"{AUDIO}.playbackRate = 1")

    # Pause from the bar, with the keyboard.
    await bar.get_by_role("button", name="Pause").focus()
    await alice.keyboard.press("Enter")
    await expect(bar.get_by_role("button", name="Play", exact=True)).to_be_visible()
    assert await alice.evaluate(f"{AUDIO}.paused")
    console.check()


@dataclass
class Pair:
    carol: Client
    dave: Client
    dave_id: str
    track_id: str  # Carol's private track


@pytest.fixture
async def pair(node: RunningNode, tmp_path: Path) -> AsyncIterator[Pair]:
    """Carol and Dave share a guild; Carol has a private track and a public one (uploaded
    with the SDK: the upload form has its own test)."""
    carol, dave = Client(node.url), Client(node.url)
    try:
        await carol.register("carol", PASSWORD)
        me = await dave.register("dave", PASSWORD)
        guild = await carol.create_guild("Studio")
        invite = await carol.create_guild_invite(guild["system_channel_id"])
        await dave.join(invite["code"])
        private = await carol.upload_track(
            tone(tmp_path / "secret.wav", 12), "secret.wav", title="Secret Demo",
            visibility="private",
        )  # fmt: skip
        public = await carol.upload_track(
            tone(tmp_path / "open.wav", 9), "open.wav", title="Open Sketch"
        )
        for created in (private, public):
            await carol.wait_for_track(created["id"], within=45)
        yield Pair(carol, dave, me.user.id, private["id"])
    finally:
        await carol.close()
        await dave.close()


async def log_in(page: Page, username: str, lands_on: str = "# general") -> None:
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name=lands_on)).to_be_visible()


async def test_private_track_shared_then_played_from_a_queue(
    open_page: OpenPage, console: Console, pair: Pair
) -> None:
    track_path = f"/tracks/{pair.track_id}"
    # The browser logs the node's 404 for the track Dave may not see; that one is expected.
    console.allowed.append(
        re.compile(
            rf"^dave: console: Failed to load resource: .* 404 .*/api/v1/tracks/{pair.track_id}'"
        )
    )
    # Dave cannot see it: not on its page, not in the list.
    dave = await open_page("dave", "/login")
    await log_in(dave, "dave")
    await dave.goto(track_path)
    await expect(dave.get_by_text("does not exist, or you cannot see it")).to_be_visible()
    await dave.get_by_role("link", name="All tracks").click()
    rows = dave.locator("li.track-item")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("Open Sketch")

    # Carol shares it with him from its page, by his username (she knows him from the guild).
    carol = await open_page("carol", "/login")
    await log_in(carol, "carol")
    await expect(carol.locator("miaou-members").get_by_text("dave", exact=True)).to_be_visible()
    await carol.get_by_role("link", name="Tracks").click()
    await carol.get_by_role("button", name="My tracks").click()
    item = carol.locator("li.track-item", has_text="Secret Demo")
    await expect(item.locator(".track-badge")).to_have_text("private")
    await item.get_by_role("link", name="Secret Demo").click()
    await carol.get_by_text("Edit track").click()
    await expect(carol.get_by_text("Shared with no one yet.")).to_be_visible()
    await carol.get_by_label("Share with").fill("dave")
    await carol.get_by_role("button", name="Share", exact=True).click()
    await expect(carol.get_by_role("button", name="Stop sharing with dave")).to_be_visible()
    await expect(carol.get_by_text("Shared with dave.")).to_be_visible()

    # Now Dave finds it in the list and plays it, from signed media URLs. The list is the
    # queue: Open Sketch (newest), then Secret Demo.
    await dave.reload()
    await expect(rows).to_have_count(2)
    row = dave.locator("li.track-item", has_text="Secret Demo")
    await expect(row.locator(".track-badge")).to_have_text("private")
    await row.get_by_role("button", name="Play Secret Demo").click()
    bar = dave.locator("miaou-player-bar")
    await expect(bar.get_by_role("button", name="Pause")).to_be_visible()
    await expect(bar.locator(".player-title")).to_have_text("Secret Demo")
    await expect_advancing(dave)
    assert (await dave.evaluate(f"{AUDIO}.src")).startswith("blob:")
    assert await media_requests(dave, SIGNED_SEGMENT.pattern), "no signed segment fetched"
    # ... never through the public URL form, which the node would refuse anyway.
    assert not await media_requests(dave, rf"/tracks/{pair.track_id}/media/\d+/")

    # The last of the queue: no next, until repeat (all) wraps round to the first.
    next_button = bar.get_by_role("button", name="Next track")
    await expect(next_button).to_be_disabled()
    await bar.get_by_role("button", name="Repeat: off").click()
    await expect(bar.get_by_role("button", name="Repeat: all")).to_have_attribute(
        "aria-pressed", "true"
    )
    await next_button.click()
    await expect(bar.locator(".player-title")).to_have_text("Open Sketch")
    await expect_advancing(dave, 0.5)
    await bar.get_by_role("button", name="Queue").click()
    queue = bar.get_by_role("region", name="Queue")
    await expect(queue.locator("li[aria-current]")).to_contain_text("Open Sketch")
    await queue.get_by_role("button", name=re.compile("Secret Demo")).click()
    await expect(bar.locator(".player-title")).to_have_text("Secret Demo")
    await dave.keyboard.press("Escape")
    await expect(queue).to_be_hidden()
    await bar.get_by_role("button", name="Shuffle").click()
    await expect(bar.get_by_role("button", name="Shuffle")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect_advancing(dave, 0.5)
    await row.get_by_role("link", name="Secret Demo").click()
    await waveform_drawn(dave, 1_000)

    # At phone width in the dark theme: the page and the bar fit, the rail slides in.
    phone = await open_page("dave-phone", "/login", viewport=PHONE, color_scheme="dark")
    await log_in(phone, "dave")
    await phone.goto(track_path)
    await waveform_drawn(phone, 500)
    await phone.locator("miaou-track-page").get_by_role("button", name="Play").click()
    phone_bar = phone.locator("miaou-player-bar")
    await expect(phone_bar.get_by_role("button", name="Pause")).to_be_visible()
    await expect_advancing(phone, 0.5)
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = await phone_bar.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    background = await phone.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(38, 40, 44)"  # the dark theme's --bg
    await screenshot(phone, "audio-05-track-phone-dark")
    await phone.get_by_role("button", name="Open the guild and channel list").click()
    await phone.get_by_role("link", name="Tracks").click()
    await expect(phone.get_by_role("heading", name="Tracks", exact=True)).to_be_visible()

    # Without Media Source Extensions the progressive file (signed too) plays instead.
    await phone.context.add_init_script("delete window.MediaSource")
    await phone.goto(track_path)
    await phone.locator("miaou-track-page").get_by_role("button", name="Play").click()
    await expect_advancing(phone, 0.5)
    assert re.search(r"/media/\d+\.\d+\.[0-9a-f]{32}/stream$", await phone.evaluate(f"{AUDIO}.src"))
    await expect(phone_bar.get_by_label("Quality")).to_be_disabled()

    # Unshared again: gone for him.
    await pair.carol.unshare_track(pair.track_id, pair.dave_id)
    assert [t["title"] for t in await pair.dave.tracks()] == ["Open Sketch"]
    console.check()


def cover_png() -> bytes:
    """A 400 px square picture: a diagonal gradient."""
    ramp = np.add.outer(np.arange(400), np.arange(400)) * 255 // 798
    pixels = np.stack([ramp, 255 - ramp, np.full_like(ramp, 90)], axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def draft(node: RunningNode, tmp_path: Path) -> AsyncIterator[tuple[Client, str]]:
    """Frank and his public track "Draft"."""
    frank = Client(node.url)
    try:
        await frank.register("frank", PASSWORD)
        created = await frank.upload_track(tone(tmp_path / "draft.wav", 7), "draft.wav")
        await frank.wait_for_track(created["id"], within=45)
        yield frank, created["id"]
    finally:
        await frank.close()


async def test_owner_edits_details_cover_and_visibility_then_deletes(
    open_page: OpenPage, console: Console, draft: tuple[Client, str], tmp_path: Path
) -> None:
    frank, track_id = draft
    path = f"/tracks/{track_id}"
    # Erin opens the plain link once the track is unlisted: the node's 404 is expected.
    console.allowed.append(
        re.compile(rf"^erin: console: Failed to load resource: .* 404 .*/api/v1/tracks/{track_id}'")
    )
    page = await open_page("frank", "/login")
    await log_in(page, "frank", lands_on="Welcome, frank")
    await page.goto(path)
    await expect(page.get_by_role("heading", name="draft", level=2)).to_be_visible()  # its file

    # Details and visibility, in one form.
    await page.get_by_text("Edit track").click()
    await page.get_by_label("Title", exact=True).fill("Final Cut")
    await page.get_by_label("Artist").fill("Frank & Friends")
    await page.get_by_label("Tags (separated by commas)").fill("demo, Lo Fi")
    await page.get_by_label("Visibility").select_option("unlisted")
    await page.get_by_label("Let listeners download the original").check()
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("heading", name="Final Cut", level=2)).to_be_visible()
    await expect(page.locator(".track-page-artist")).to_have_text("Frank & Friends")
    await expect(page.get_by_role("link", name="#lo-fi")).to_be_visible()
    saved = await frank.track(track_id)
    assert (saved["title"], saved["artist"], saved["tags"]) == (
        "Final Cut", "Frank & Friends", ["demo", "lo-fi"]
    )  # fmt: skip
    assert (saved["visibility"], saved["downloadable"]) == ("unlisted", True)

    # Unlisted: the secret link is shown (the settings stayed open).
    link = page.get_by_label("Secret link")
    await expect(link).to_have_value(re.compile(rf"/tracks/{track_id}\?secret=[\w-]{{22}}$"))
    secret_link = await link.input_value()

    # A cover: uploaded, then shown (through the token: the track is not public).
    picture = tmp_path / "cover.png"
    picture.write_bytes(cover_png())
    await page.get_by_label("New cover image").set_input_files(str(picture))
    hero = page.locator(".cover-large img")
    await expect(hero).to_have_attribute("src", re.compile("^blob:"))
    assert await hero.evaluate("img => img.decode().then(() => img.naturalWidth)") == 300
    await screenshot(page, "audio-06-track-settings")

    # Erin follows the secret link: she registers there and plays it; the plain address
    # shows her nothing.
    erin = await open_page("erin", secret_link)
    await register(erin, "erin")
    await expect(erin.get_by_role("heading", name="Final Cut", level=2)).to_be_visible()
    await erin.locator("miaou-track-page").get_by_role("button", name="Play").click()
    await expect_advancing(erin, 0.5)
    await erin.goto(path)
    await expect(erin.get_by_text("does not exist, or you cannot see it")).to_be_visible()

    # Frank deletes it.
    await page.get_by_role("button", name="Delete track").click()
    await (
        page.get_by_role("dialog", name="Delete track").get_by_role("button", name="Delete").click()
    )
    await expect(page.get_by_text("You have not uploaded a track yet.")).to_be_visible()
    assert await frank.tracks(owner=saved["owner_id"]) == []
    console.check()


MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=233703,AVERAGE-BANDWIDTH=232851,CODECS="mp4a.40.2"
aac_256/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=66375,AVERAGE-BANDWIDTH=65934,CODECS="mp4a.40.2"
aac_64/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=130343,CODECS="mp4a.40.2"
aac_128/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=118086,AVERAGE-BANDWIDTH=117577,CODECS="opus"
opus_128/index.m3u8
"""
MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXTINF:6.013968,
seg_00000.m4s
#EXTINF:5.990748,
seg_00001.m4s
#EXTINF:1.5,
seg_00002.m4s
#EXT-X-ENDLIST
"""
BASE = "http://node.test/api/v1/tracks/1/media/3.1700000000.0123456789abcdef0123456789abcdef/hls/"


async def test_player_rules_in_the_page(open_page: OpenPage, console: Console) -> None:
    """The pure modules the player is built from, imported by the page as the client does."""
    page = await open_page("rules")
    result = await page.evaluate(
        """async ([master, media, base]) => {
          const m3u8 = await import('/static/js/audio/m3u8.js');
          const abr = await import('/static/js/audio/abr.js');
          const hls = await import('/static/js/audio/hls.js');
          const { Queue } = await import('/static/js/audio/queue.js');
          const { normalisationGain } = await import('/static/js/audio/loudness.js');
          const wave = await import('/static/js/audio/waveform.js');
          const { Listening } = await import('/static/js/audio/listening.js');
          const heard = new Listening(30);
          const reports = [];
          for (let t = 0; t <= 20; t += 0.25) reports.push(heard.tick(t, true));
          for (let t = 20; t <= 25; t += 0.25) reports.push(heard.tick(t, false)); // paused
          heard.jumped(); // a seek
          for (let t = 100; t <= 112; t += 0.25) reports.push(heard.tick(t, true));
          reports.push(heard.tick(200, true)); // a jump nobody announced: not listening
          const gain = (db, peakDb, peak, options) => normalisationGain(
            { replaygain_track_gain_db: db, true_peak_dbtp: peakDb, replaygain_track_peak: peak },
            options,
          );
          const variants = m3u8.parseMaster(master, base + 'master.m3u8');
          const aac = hls.playableVariants(variants, () => true);
          const playlist = m3u8.parseMedia(media, aac[0].uri);
          const estimator = new abr.ThroughputEstimator();
          const choice = (estimate, bufferAhead, current) =>
            abr.chooseVariant(aac, { estimate, bufferAhead, current });
          const drops = [];
          for (const bps of [400e3, 400e3, 60e3, 60e3]) {
            estimator.sample(bps / 8, 1000);  // bps/8 bytes in one second
            drops.push(choice(estimator.estimate(), 25, 2));
          }
          const order = (queue) => queue.upcoming.map((t) => t.id).join('');
          const q = new Queue([{ id: 'a' }, { id: 'b' }, { id: 'c' }], 1, { random: () => 0 });
          const steps = [q.nextPosition(), q.nextPosition({ auto: true })];
          q.moveTo(2);
          steps.push(q.nextPosition());
          q.setRepeat('all');
          steps.push(q.nextPosition());
          q.setRepeat('one');
          steps.push(q.nextPosition({ auto: true }), q.nextPosition());
          q.setShuffle(true);
          const shuffled = [order(q), q.current.id];
          q.setShuffle(false);
          shuffled.push(order(q), q.current.id);
          const w = wave.parseWaveform({ version: 2, channels: 1, sample_rate: 100,
            samples_per_pixel: 10, bits: 8, length: 4, data: [-64, 64, 0, 0, -128, 127, -2, 2] });
          const cols = wave.columnsOf(w, 2);
          return {
            names: variants.map((v) => v.name),
            uris: variants.map((v) => v.uri),
            average: variants.map((v) => v.averageBandwidth),
            aac: aac.map((v) => v.name),
            mime: aac[0].mime,
            init: playlist.init,
            starts: playlist.segments.map((s) => s.start),
            segment: playlist.segments[1].uri,
            duration: playlist.duration,
            ended: playlist.ended,
            at: [0, 6.0, 6.02, 12.1, 99].map((t) => m3u8.segmentAt(playlist.segments, t)),
            start: choice(null, 0, -1),
            keep: choice(null, 0, 0),
            climbLowBuffer: choice(10e6, 6, 1),
            climb: choice(10e6, 12, 1),
            lowBufferCaution: choice(300e3, 3, 2),
            drops,
            steps,
            shuffled,
            gains: [
              gain(-6, -1, 0.8),
              gain(9, -3, 0.5),
              gain(9, -3, 0.5, { enabled: false }),
              gain(null, null, 0),
            ],
            wave: [w.length, w.seconds, w.peak, Array.from(cols.min), Array.from(cols.max)],
            heard: [reports.indexOf(true), reports.filter(Boolean).length, heard.seconds],
          };
        }""",
        [MASTER, MEDIA, BASE],
    )
    assert result["names"] == ["aac_64", "opus_128", "aac_128", "aac_256"]  # by BANDWIDTH
    assert result["uris"][0] == BASE + "aac_64/index.m3u8"  # the signed path carries over
    assert result["average"] == [65934, 117577, 130343, 232851]  # BANDWIDTH when not given
    assert result["aac"] == ["aac_64", "aac_128", "aac_256"]
    assert result["mime"] == 'audio/mp4; codecs="mp4a.40.2"'
    assert result["init"] == BASE + "aac_64/init.mp4"
    assert result["starts"] == pytest.approx([0, 6.013968, 12.004716])
    assert result["segment"] == BASE + "aac_64/seg_00001.m4s"
    assert result["duration"] == pytest.approx(13.504716) and result["ended"] is True
    assert result["at"] == [0, 0, 1, 2, 2]
    # No measurement yet: the middle of the ladder; a choice once made is kept.
    assert (result["start"], result["keep"]) == (1, 0)
    # A fast link climbs only with 10 s buffered; a short buffer trusts half the estimate.
    assert (result["climbLowBuffer"], result["climb"]) == (1, 2)
    assert result["lowBufferCaution"] == 1  # 300 kb/s * 0.5 < 233 kb/s
    # Throughput falls from 400 to 60 kb/s: down a step at the first slow segment, then again.
    assert result["drops"] == [2, 2, 1, 0]
    # Queue a b c from b: next c; at the end nothing, or a (repeat all); repeat one
    # replays when the track ends but "next" moves on.
    assert result["steps"] == [2, 2, -1, 0, 2, 0]
    # Shuffle keeps the current track first; off again, the list's order from it.
    assert result["shuffled"] == ["cba", "c", "abc", "c"]
    gains = result["gains"]
    assert gains[0] == pytest.approx(10 ** (-6 / 20))  # quieter: just the gain
    assert gains[1] == pytest.approx(10 ** (3 / 20))  # +9 dB would clip: up to the true peak
    assert gains[2:] == [1, 1]
    length, seconds, peak, low, high = result["wave"]
    assert (length, seconds) == (4, 0.4) and peak == pytest.approx(1.0)
    assert low == pytest.approx([-0.5, -1.0]) and high == pytest.approx([0.5, 127 / 128])
    # 20 s heard, a pause, a seek, 12 s more: reported once, on the tick at 30 s.
    first, count, seconds = result["heard"]
    assert (first, count, seconds) == (81 + 21 + 40, 1, pytest.approx(32))
    console.check()
