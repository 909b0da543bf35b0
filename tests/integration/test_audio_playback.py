"""Playback and play counting on a real node: HLS and progressive files with byte ranges,
who reaches which URL (public, pinned, signed, expired, forged), X-Accel-Redirect, and plays
counted once per listener per window, per day, under concurrency.

The upload path is someone else's: tracks and their files are inserted here with SQL, the
files' bytes put in the blob store (small fake playlists and segments: the routes serve
bytes, they do not parse them).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import structlog.testing
from node_marks import NO_RATE_LIMITS
from sqlalchemy import select, update

from miaou import ids
from miaou.audio import fast_media, media_files, playback, plays
from miaou.audio.models import media_token
from miaou.audio.service import Playable
from miaou.audio.tables import track_files, track_play_days, track_shares, tracks
from miaou.config import Settings
from miaou.sdk import Client
from miaou.server import RunningNode

PASSWORD = "correct horse battery"
PLAYLIST = "application/vnd.apple.mpegurl"
MASTER = (
    b"#EXTM3U\n#EXT-X-VERSION:7\n"
    b'#EXT-X-STREAM-INF:BANDWIDTH=136000,CODECS="mp4a.40.2"\naac_128/index.m3u8\n'
)
VARIANT = (
    b'#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n#EXT-X-MAP:URI="init.mp4"\n'
    b"#EXTINF:6.0,\nseg_00000.m4s\n#EXTINF:6.0,\nseg_00001.m4s\n#EXT-X-ENDLIST\n"
)
PROGRESSIVE = bytes(range(256)) * 40  # 10,240 bytes, every offset recognisable
DURATION_MS = 200_000


pytestmark = NO_RATE_LIMITS


@pytest.fixture
async def http(node: RunningNode) -> AsyncIterator[httpx.AsyncClient]:
    """A player: plain HTTP, no token."""
    async with httpx.AsyncClient(base_url=node.url) as client:
        yield client


async def user(make_client: Any, name: str) -> tuple[Client, int]:
    client = make_client()
    result = await client.register(name, PASSWORD)
    return client, int(result.user.id)


def version_files(version: int) -> dict[str, bytes]:
    """The files processing makes for one version; the bytes of each version differ."""
    mark = f"v{version}".encode()
    return {
        "master.m3u8": MASTER,
        "aac_128/index.m3u8": VARIANT,
        "aac_128/init.mp4": b"init-" + mark,
        "aac_128/seg_00000.m4s": b"seg0-" + mark + bytes(2000),
        "aac_128/seg_00001.m4s": b"seg1-" + mark + bytes(2000),
        "progressive.m4a": PROGRESSIVE if version == 1 else mark + PROGRESSIVE,
        "waveform.json": b'{"version":2,"channels":1,"data":[0,1]}',
        "waveform.dat": b"\x02\x00\x00\x00" + mark,
    }


async def put_version(node: RunningNode, track_id: int, version: int) -> dict[str, bytes]:
    content = version_files(version)
    blobs = node.node.blobs
    rows = []
    for name, data in content.items():
        sha256 = await blobs.put_bytes(data)
        rows.append({"track_id": track_id, "version": version, "name": name,
                     "sha256": sha256, "size": len(data), "content_type": "x"})  # fmt: skip
    async with node.node.db.write() as conn:
        await conn.execute(track_files.insert(), rows)
    blobs.release(r["sha256"] for r in rows)
    return content


async def make_track(
    node: RunningNode,
    owner: int,
    *,
    visibility: str = "public",
    release_at: int | None = None,
    state: str = "ready",
    files: bool = True,
) -> int:
    track_id, now = ids.new_id(), ids.now_ms()
    async with node.node.db.write() as conn:
        await conn.execute(
            tracks.insert().values(
                id=track_id, owner_id=owner, title="Song", visibility=visibility,
                secret="unlisted-key", release_at=release_at, version=1, state=state,
                playable_version=1 if state == "ready" else None,
                original_sha256="0" * 64, original_size=1, original_filename="song.flac",
                container="flac", codec="flac", sample_rate=44100, channels=2, lossless=True,
                duration_ms=DURATION_MS, created_at=now, updated_at=now,
            )
        )  # fmt: skip
    if files:
        await put_version(node, track_id, 1)
    return track_id


async def track_row(node: RunningNode, track_id: int) -> Any:
    async with node.node.db.read() as conn:
        return (await conn.execute(select(tracks).where(tracks.c.id == track_id))).one()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- public tracks --------------------------------------------------------------------------
async def test_public_track_served_unsigned(node, make_client, http) -> None:
    _, owner = await user(make_client, "artist")
    track = await make_track(node, owner)
    content = version_files(1)
    base = f"/api/v1/tracks/{track}"

    master = await http.get(f"{base}/hls/master.m3u8")
    assert master.status_code == 200 and master.content == MASTER
    assert master.headers["content-type"].startswith(PLAYLIST)
    assert master.headers["cache-control"] == "public, max-age=300"
    assert master.headers["etag"] == f'"{sha(MASTER)}"'
    variant = await http.get(urljoin(str(master.url), "aac_128/index.m3u8"))
    assert variant.content == VARIANT
    segment = await http.get(urljoin(str(variant.url), "seg_00001.m4s"))
    assert segment.content == content["aac_128/seg_00001.m4s"]
    assert segment.headers["content-type"] == "audio/mp4"
    # The URL names no version (a new upload changes what it serves): short-lived.
    assert segment.headers["cache-control"] == "public, max-age=300"
    assert segment.headers["x-content-type-options"] == "nosniff"
    waveform = await http.get(f"{base}/waveform.json")
    assert waveform.headers["content-type"].startswith("application/json")
    assert waveform.content == content["waveform.json"]
    dat = await http.get(f"{base}/waveform.dat")
    assert dat.headers["content-type"] == "application/octet-stream"
    stream = await http.get(f"{base}/stream")
    assert stream.content == PROGRESSIVE and stream.headers["accept-ranges"] == "bytes"

    # What the API hands out for a public track: unsigned, pinned to the version.
    urls = await playback.media_urls(node.node, Playable.of(await track_row(node, track)))
    assert urls.expires_at is None and urls.hls == f"{base}/media/1/hls/master.m3u8"
    pinned = await http.get(urljoin(urls.hls, "aac_128/init.mp4"))
    assert pinned.content == content["aac_128/init.mp4"]
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    playlist = await http.get(urls.hls)
    assert playlist.headers["cache-control"] == "public, max-age=300"
    assert (await http.get(urls.waveform_dat)).content == content["waveform.dat"]
    assert (await http.get(urls.stream)).content == PROGRESSIVE

    # Unknown files of a visible track, and names the HLS route does not serve.
    for path in ("hls/aac_128/seg_09999.m4s", "hls/progressive.m4a", "media/7/stream"):
        missing = await http.get(f"{base}/{path}")
        assert missing.status_code == 404 and missing.json()["code"] == "unknown_media_file"


async def test_a_new_version_does_not_mix_into_pinned_urls(node, make_client, http) -> None:
    _, owner = await user(make_client, "artist")
    track = await make_track(node, owner)
    old = await playback.media_urls(node.node, Playable.of(await track_row(node, track)))
    await put_version(node, track, 2)
    async with node.node.db.write() as conn:
        await conn.execute(
            update(tracks).where(tracks.c.id == track).values(version=2, playable_version=2)
        )
    new = await playback.media_urls(node.node, Playable.of(await track_row(node, track)))
    assert new.stream != old.stream
    segment = "aac_128/seg_00000.m4s"
    assert (await http.get(urljoin(old.hls, segment))).content.startswith(b"seg0-v1")
    assert (await http.get(urljoin(new.hls, segment))).content.startswith(b"seg0-v2")
    current = await http.get(f"/api/v1/tracks/{track}/hls/{segment}")
    assert current.content.startswith(b"seg0-v2")


async def test_pinned_lookups_are_cached_a_few_seconds(
    node, make_client, http, monkeypatch
) -> None:
    """A listener's next segment costs no query; a track made private stops being served
    by its pinned public URLs once the cached answer is older than LOOKUP_TTL_S."""
    _, owner = await user(make_client, "artist")
    track = await make_track(node, owner)
    urls = await playback.media_urls(node.node, Playable.of(await track_row(node, track)))
    segment = urljoin(urls.hls, "aac_128/seg_00000.m4s")
    assert (await http.get(segment)).status_code == 200
    async with node.node.db.write() as conn:
        await conn.execute(update(tracks).where(tracks.c.id == track).values(visibility="private"))
    assert (await http.get(segment)).status_code == 200  # the cached answer, still fresh
    later = time.monotonic() + media_files.LOOKUP_TTL_S + 1
    monkeypatch.setattr(media_files, "lookup_clock", lambda: later)
    gone = await http.get(segment)
    assert (gone.status_code, gone.json()["code"]) == (404, "unknown_track")


async def test_repeat_segment_requests_take_the_fast_path(
    node, make_client, http, monkeypatch
) -> None:
    """The first request goes through the route (its answer carries the request id of the
    observability middleware); repeats come from the fast path with the same bytes and
    headers; a range request or an expired cache entry goes through the route again."""
    _, owner = await user(make_client, "artist")
    track = await make_track(node, owner)
    urls = await playback.media_urls(node.node, Playable.of(await track_row(node, track)))
    segment = urljoin(urls.hls, "aac_128/seg_00001.m4s")
    first = await http.get(segment)
    again = await http.get(segment)
    assert "x-request-id" in first.headers and "x-request-id" not in again.headers
    assert again.content == first.content == version_files(1)["aac_128/seg_00001.m4s"]
    for header in (
        "content-type",
        "content-length",
        "etag",
        "cache-control",
        "content-disposition",
        "x-content-type-options",
        "content-security-policy",
    ):
        assert again.headers[header] == first.headers[header], header  # fmt: skip
    metrics = (await http.get("/metrics")).text
    assert f'route="{fast_media.ROUTE}",status="200"' in metrics
    ranged = await http.get(segment, headers={"range": "bytes=0-3"})
    assert ranged.status_code == 206 and "x-request-id" in ranged.headers
    playlist = await http.get(urljoin(urls.hls, "aac_128/index.m3u8"))
    assert "x-request-id" in (await http.get(playlist.url)).headers  # playlists: the route
    later = time.monotonic() + media_files.LOOKUP_TTL_S + 1
    monkeypatch.setattr(media_files, "lookup_clock", lambda: later)
    assert "x-request-id" in (await http.get(segment)).headers


async def test_signed_urls_never_reach_the_log(node, make_client, http) -> None:
    _, owner = await user(make_client, "artist")
    track = await make_track(node, owner, visibility="private")
    urls = await playback.media_urls(node.node, Playable.of(await track_row(node, track)))
    signature = urls.hls.split("/media/")[1].split("/")[0].split(".")[2]
    with structlog.testing.capture_logs() as logs:
        assert (await http.get(urls.hls)).status_code == 200
    [line] = [entry for entry in logs if entry.get("event") == "request"]
    assert line["path"] == f"/api/v1/tracks/{track}/media/<signed>/hls/master.m3u8"
    assert signature not in repr(logs)


# -- ranges ---------------------------------------------------------------------------------
async def test_stream_byte_ranges(node, make_client, http) -> None:
    _, owner = await user(make_client, "artist")
    track = await make_track(node, owner)
    url, size = f"/api/v1/tracks/{track}/stream", len(PROGRESSIVE)

    async def get(**headers: str) -> httpx.Response:
        return await http.get(url, headers=headers)

    part = await get(range="bytes=100-299")
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-299/{size}"
    assert part.content == PROGRESSIVE[100:300] and part.headers["content-length"] == "200"
    assert part.headers["content-type"] == "audio/mp4"
    assert part.headers["cache-control"] == "public, max-age=300"
    suffix = await get(range="bytes=-500")
    assert suffix.status_code == 206 and suffix.content == PROGRESSIVE[-500:]
    assert suffix.headers["content-range"] == f"bytes {size - 500}-{size - 1}/{size}"
    tail = await get(range="bytes=10000-")
    assert tail.status_code == 206 and tail.content == PROGRESSIVE[10000:]
    assert tail.headers["content-range"] == f"bytes 10000-{size - 1}/{size}"
    past_end = await get(range="bytes=99-99999999")  # clamped to the end
    assert past_end.headers["content-range"] == f"bytes 99-{size - 1}/{size}"
    refused = await get(range=f"bytes={size}-")
    assert refused.status_code == 416 and refused.headers["content-range"] == f"bytes */{size}"
    assert refused.json()["code"] == "range_not_satisfiable"
    for ignored in ("bytes=abc", "bytes=300-100", "items=0-5", "bytes=0-1,5-6"):
        whole = await get(range=ignored)
        assert whole.status_code == 200 and whole.content == PROGRESSIVE, ignored
    stale = await get(range="bytes=0-9", **{"if-range": '"not-this-version"'})
    assert stale.status_code == 200
    fresh = await get(range="bytes=0-9", **{"if-range": f'"{sha(PROGRESSIVE)}"'})
    assert fresh.status_code == 206 and fresh.content == PROGRESSIVE[:10]


# -- who reaches what -----------------------------------------------------------------------
async def test_only_public_released_ready_tracks_are_served_unsigned(
    node, make_client, http
) -> None:
    _, owner = await user(make_client, "artist")
    later = ids.now_ms() + 3_600_000
    hidden = [
        await make_track(node, owner, visibility="private"),
        await make_track(node, owner, visibility="unlisted"),
        await make_track(node, owner, release_at=later),  # scheduled
        await make_track(node, owner, state="processing"),
        ids.new_id(),  # no such track
    ]
    paths = ("hls/master.m3u8", "hls/aac_128/seg_00000.m4s", "stream", "waveform.json",
             "waveform.dat", "media/1/hls/master.m3u8", "media/1/stream")  # fmt: skip
    for track in hidden:
        for path in paths:
            response = await http.get(f"/api/v1/tracks/{track}/{path}")
            assert response.status_code == 404, (track, path)
            assert response.json()["code"] == "unknown_track", (track, path)
    junk = await http.get("/api/v1/tracks/not-an-id/stream")
    assert junk.status_code == 404 and junk.json()["code"] == "unknown_track"


async def test_signed_urls_reach_private_tracks(node, make_client, http) -> None:
    _, owner = await user(make_client, "artist")
    track = await make_track(node, owner, visibility="private")
    content = version_files(1)
    before = ids.now_ms()
    urls = await playback.media_urls(node.node, Playable.of(await track_row(node, track)))
    assert urls.expires_at is not None
    assert before + 3_600_000 <= urls.expires_at <= before + 3_600_000 + 301_000
    assert f"/api/v1/tracks/{track}/media/1." in urls.hls

    master = await http.get(urls.hls)
    assert master.status_code == 200 and master.content == MASTER
    cache = master.headers["cache-control"]
    assert cache.startswith("private, max-age=") and "immutable" not in cache
    assert 3500 <= int(cache.rpartition("=")[2]) <= 3600 + 300
    # A player resolves the playlists' relative URIs against the URL it fetched.
    variant = await http.get(urljoin(str(master.url), "aac_128/index.m3u8"))
    assert variant.status_code == 200 and variant.content == VARIANT
    init = await http.get(urljoin(str(variant.url), "init.mp4"))
    assert init.content == content["aac_128/init.mp4"]
    segment = await http.get(urljoin(str(variant.url), "seg_00000.m4s"))
    assert segment.content == content["aac_128/seg_00000.m4s"]
    assert segment.headers["cache-control"].startswith("private, max-age=")
    assert segment.headers["cache-control"].endswith(", immutable")
    part = await http.get(urls.stream, headers={"range": "bytes=5-9"})
    assert part.status_code == 206 and part.content == PROGRESSIVE[5:10]
    assert (await http.get(urls.waveform_json)).content == content["waveform.json"]
    # The unsigned forms stay closed.
    assert (await http.get(f"/api/v1/tracks/{track}/stream")).status_code == 404
    assert (await http.get(f"/api/v1/tracks/{track}/media/1/stream")).status_code == 404

    # Unlisted and scheduled tracks get signed URLs too (their owner plays them).
    scheduled = await make_track(node, owner, release_at=ids.now_ms() + 60_000)
    urls = await playback.media_urls(node.node, Playable.of(await track_row(node, scheduled)))
    assert urls.expires_at is not None
    assert (await http.get(urls.stream)).content == PROGRESSIVE


async def test_expired_and_forged_tokens_are_refused(node, make_client, http) -> None:
    _, owner = await user(make_client, "artist")
    track = await make_track(node, owner, visibility="private")
    other = await make_track(node, owner, visibility="private")
    key = await playback.signing_key(node.node)
    now_s = ids.now_ms() // 1000

    def url(token: str, track_id: int = track) -> str:
        return f"/api/v1/tracks/{track_id}/media/{token}/hls/master.m3u8"

    expired = await http.get(url(media_token(key, track, 1, now_s - 1)))
    assert expired.status_code == 403 and expired.json()["code"] == "media_url_expired"
    good = media_token(key, track, 1, now_s + 600)
    assert (await http.get(url(good))).status_code == 200
    version, expires, signature = good.split(".")
    forged = [
        media_token(b"another node's key" * 2, track, 1, now_s + 600),
        f"{version}.{int(expires) + 1}.{signature}",
        f"2.{expires}.{signature}",
        f"{version}.{expires}.{'0' * 32}",
        f"².{expires}.{signature}",
        f"{version}.{'9' * 5000}.{signature}",
        "garbage",
        "99999999999",
    ]
    for token in forged:
        response = await http.get(url(token))
        assert response.status_code == 404, token
        assert response.json()["code"] == "unknown_track", token
    stolen = await http.get(url(good, other))  # a genuine token of another track
    assert stolen.status_code == 404 and stolen.json()["code"] == "unknown_track"
    # A genuine token for a version with no files.
    empty = await http.get(url(media_token(key, track, 5, now_s + 600)))
    assert empty.status_code == 404 and empty.json()["code"] == "unknown_media_file"


@pytest.mark.skipif(
    "media_accel_redirect" not in Settings.__struct_fields__,
    reason="waits for the media_accel_redirect setting (config.py)",
)
async def test_accel_redirect_mode(start_node) -> None:
    node = await start_node(ratelimit={"enabled": False}, media_accel_redirect="/_miaou_media/")
    async with Client(node.url) as artist:
        owner = int((await artist.register("artist", PASSWORD)).user.id)
    track = await make_track(node, owner)
    content = version_files(1)["aac_128/seg_00000.m4s"]
    digest = sha(content)
    async with httpx.AsyncClient(base_url=node.url) as http:
        response = await http.get(
            f"/api/v1/tracks/{track}/media/1/hls/aac_128/seg_00000.m4s",
            headers={"range": "bytes=0-1"},  # nginx does ranges
        )
        assert response.status_code == 200 and response.content == b""
        assert response.headers["x-accel-redirect"] == (
            f"/_miaou_media/{digest[:2]}/{digest[2:4]}/{digest}"
        )
        assert response.headers["content-type"] == "audio/mp4"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["etag"] == f'"{digest}"'
        hidden = await make_track(node, owner, visibility="private")
        assert (await http.get(f"/api/v1/tracks/{hidden}/stream")).status_code == 404


# -- plays ----------------------------------------------------------------------------------
class Clock:
    """The node's clock, moved by the test (the node runs in this process)."""

    def __init__(self) -> None:
        self.now = int(datetime(2026, 12, 3, 10, tzinfo=UTC).timestamp() * 1000)

    def __call__(self) -> int:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += int(minutes * 60_000)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(playback, "clock", fake)
    return fake


async def report(
    who: Client | httpx.AsyncClient, track: int, seconds: float, **extra: Any
) -> httpx.Response:
    http = who._http if isinstance(who, Client) else who
    headers = {"authorization": f"Bearer {who.token}"} if isinstance(who, Client) else {}
    body = {"listened_seconds": seconds, **extra}
    return await http.post(f"/api/v1/tracks/{track}/plays", json=body, headers=headers)


async def counted(who: Client | httpx.AsyncClient, track: int, seconds: float = 45) -> bool:
    response = await report(who, track, seconds)
    assert response.status_code == 200, response.text
    return bool(response.json()["counted"])


async def day_rows(node: RunningNode, track: int) -> dict[int, tuple[int, int]]:
    async with node.node.db.read() as conn:
        rows = await conn.execute(
            select(track_play_days).where(track_play_days.c.track_id == track)
        )
        return {r.day: (r.plays, r.listeners) for r in rows}


async def test_plays_count_once_per_listener_per_window(node, make_client, http, clock) -> None:
    alice, owner = await user(make_client, "alice")
    bob, _ = await user(make_client, "bob")
    track = await make_track(node, owner)
    today = plays.day_of(clock.now)

    short = await report(bob, track, 29.9)
    assert short.status_code == 200 and short.json() == {"counted": False, "plays": 0}
    first = await report(bob, track, 30)
    assert first.json() == {"counted": True, "plays": 1}
    assert not await counted(bob, track, 200)  # the same listening, reported on
    clock.advance(29.9)
    assert not await counted(bob, track)
    clock.advance(0.1)  # 30 minutes after the counted play
    assert await counted(bob, track)
    assert await day_rows(node, track) == {today: (2, 1)}

    assert await counted(alice, track)  # the owner's plays count too
    assert await counted(http, track)  # anonymous: by address
    assert not await counted(http, track)
    assert await day_rows(node, track) == {today: (4, 3)}
    clock.advance(24 * 60)
    assert await counted(bob, track)
    assert await day_rows(node, track) == {today: (4, 3), today + 1: (1, 1)}
    assert (await track_row(node, track)).plays == 5

    for bad in (-1, DURATION_MS / 1000 + 60.5):
        refused = await report(bob, track, bad)
        assert refused.status_code == 400 and "listened_seconds" in refused.json()["errors"]
    assert (await report(bob, track, 40, extra=1)).status_code == 400
    bad_token = await http.post(
        f"/api/v1/tracks/{track}/plays", json={"listened_seconds": 40},
        headers={"authorization": "Bearer nope"},
    )  # fmt: skip
    assert bad_token.status_code == 401


async def test_concurrent_reports_count_once(node, make_client, http, clock) -> None:
    carol, owner = await user(make_client, "carol")
    track = await make_track(node, owner)
    answers = await asyncio.gather(*(report(carol, track, 31) for _ in range(8)))
    assert sorted(a.json()["counted"] for a in answers) == [False] * 7 + [True]
    anonymous = await asyncio.gather(*(report(http, track, 31) for _ in range(8)))
    assert sum(a.json()["counted"] for a in anonymous) == 1
    assert (await track_row(node, track)).plays == 2
    assert await day_rows(node, track) == {plays.day_of(clock.now): (2, 2)}


async def test_plays_follow_visibility(node, make_client, http, clock) -> None:
    artist, owner = await user(make_client, "artist")
    friend, friend_id = await user(make_client, "friend")
    stranger, _ = await user(make_client, "stranger")
    private = await make_track(node, owner, visibility="private")
    async with node.node.db.write() as conn:
        await conn.execute(
            track_shares.insert().values(track_id=private, user_id=friend_id, created_at=0)
        )
    for outsider in (http, stranger):
        response = await report(outsider, private, 45)
        assert response.status_code == 404 and response.json()["code"] == "unknown_track"
    assert await counted(friend, private) and await counted(artist, private)

    unlisted = await make_track(node, owner, visibility="unlisted")
    assert (await report(http, unlisted, 45)).status_code == 404
    assert (await report(http, unlisted, 45, secret="wrong")).status_code == 404
    assert (await report(http, unlisted, 45, secret="clé")).status_code == 404
    assert (await report(http, unlisted, 45, secret="unlisted-key")).json()["counted"]

    scheduled = await make_track(node, owner, release_at=clock.now + 60_000)
    assert (await report(stranger, scheduled, 45)).status_code == 404
    clock.advance(1)
    assert await counted(stranger, scheduled)

    processing = await make_track(node, owner, state="processing", files=False)
    waiting = await report(artist, processing, 45)
    assert waiting.status_code == 409 and waiting.json()["code"] == "track_not_ready"
    assert (await report(http, ids.new_id(), 45)).status_code == 404


async def test_daily_stats_are_the_owners(node, make_client, http, clock) -> None:
    artist, owner = await user(make_client, "artist")
    fan, _ = await user(make_client, "fan")
    track = await make_track(node, owner)
    private = await make_track(node, owner, visibility="private")
    assert await counted(fan, track) and await counted(http, track)
    clock.advance(24 * 60)
    assert await counted(fan, track)

    url = f"/api/v1/tracks/{track}/plays/daily"
    answer = await artist.request("GET", url, params={"from": "2026-12-02", "to": "2026-12-05"})
    assert answer.json() == {
        "track_id": str(track), "from": "2026-12-02", "to": "2026-12-05",
        "days": [
            {"day": "2026-12-02", "plays": 0, "listeners": 0},
            {"day": "2026-12-03", "plays": 2, "listeners": 2},
            {"day": "2026-12-04", "plays": 1, "listeners": 1},
            {"day": "2026-12-05", "plays": 0, "listeners": 0},
        ],
    }  # fmt: skip
    default = (await artist.request("GET", url)).json()
    assert default["to"] == "2026-12-04" and len(default["days"]) == 30

    async def status(who: Client | httpx.AsyncClient, path: str, **params: str) -> int:
        http_client = who._http if isinstance(who, Client) else who
        headers = {"authorization": f"Bearer {who.token}"} if isinstance(who, Client) else {}
        return (await http_client.get(path, params=params, headers=headers)).status_code

    assert await status(fan, url) == 403  # sees the track, does not own it
    assert await status(fan, f"/api/v1/tracks/{private}/plays/daily") == 404
    assert await status(http, url) == 401
    assert await status(artist, url, **{"from": "2025-01-01", "to": "2026-01-02"}) == 400
    assert await status(artist, url, **{"from": "2026-12-05", "to": "2026-12-04"}) == 400
    assert await status(artist, url, **{"from": "someday"}) == 400
    assert await status(artist, f"/api/v1/tracks/{private}/plays/daily") == 200
