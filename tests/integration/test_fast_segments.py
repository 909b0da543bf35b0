"""The fast paths for HLS segments on a real node: uvicorn's HTTP protocol answering repeat
requests from memory (``segment_protocol``), the ASGI tier filling that memory
(``fast_media``), and everything that must still take the full route.

Which tier answered is observed, not guessed: the full route's answers carry the
observability middleware's ``x-request-id``; requests that reach ASGI at all (the ASGI tier
or the route) are counted by a pass-through wrapper around the app uvicorn hands to new
connections (``AsgiCalls``). Pipelining and keep-alive use raw sockets.

Tracks and their files are inserted with SQL and the blob store, as in
test_audio_playback.py (processing is someone else's); segments are ~96 kB of random bytes,
the size of a 6 s AAC 128 segment.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from node_marks import NO_RATE_LIMITS
from sqlalchemy import select, update

from miaou import ids
from miaou.audio import lookup_refresh, media_files, playback, segment_cache
from miaou.audio.service import Playable
from miaou.audio.tables import track_files, tracks
from miaou.sdk import Client
from miaou.server import RunningNode

PASSWORD = "correct horse battery"
SEGMENT_BYTES = 96_000
PIPELINED = 300  # 29 MB of answers: more than a loopback socket's buffers hold
FILES = ("aac_128/init.mp4", "aac_128/seg_00000.m4s", "aac_128/seg_00001.m4s")
VARIANT = b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg_00000.m4s\n#EXT-X-ENDLIST\n"
# What differs between two answers of the same file whatever serves them.
PER_ANSWER = {"date", "x-request-id"}


pytestmark = NO_RATE_LIMITS


class AsgiCalls:
    """Paths of the requests that reached the ASGI app (new connections only: uvicorn's
    protocol takes ``config.loaded_app`` when a connection is made)."""

    def __init__(self, running: RunningNode) -> None:
        config = running.server.config
        self.app = config.loaded_app
        self.paths: list[str] = []
        config.loaded_app = self

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@pytest.fixture
def asgi(node: RunningNode) -> AsgiCalls:
    return AsgiCalls(node)


@pytest.fixture
async def http(node: RunningNode, asgi: AsgiCalls) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=node.url) as client:
        yield client


def track_files_bytes(seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {name: rng.randbytes(SEGMENT_BYTES) for name in FILES}
    return {**files, "master.m3u8": b"#EXTM3U\n", "aac_128/index.m3u8": VARIANT}


async def make_track(
    node: RunningNode,
    owner: int,
    *,
    visibility: str = "public",
    release_at: int | None = None,
    seed: int = 1,
) -> tuple[int, dict[str, bytes]]:
    track_id, now = ids.new_id(), ids.now_ms()
    content = track_files_bytes(seed)
    async with node.node.db.write() as conn:
        await conn.execute(
            tracks.insert().values(
                id=track_id, owner_id=owner, title="Song", visibility=visibility,
                secret="unlisted-key", release_at=release_at, version=1, state="ready",
                playable_version=1,
                original_sha256="0" * 64, original_size=1, original_filename="song.flac",
                container="flac", codec="flac", sample_rate=44100, channels=2, lossless=True,
                duration_ms=18_000, created_at=now, updated_at=now,
            )
        )  # fmt: skip
    rows = []
    for name, data in content.items():
        sha256 = await node.node.blobs.put_bytes(data)
        rows.append({"track_id": track_id, "version": 1, "name": name, "sha256": sha256,
                     "size": len(data), "content_type": "x"})  # fmt: skip
    async with node.node.db.write() as conn:
        await conn.execute(track_files.insert(), rows)
    node.node.blobs.release(r["sha256"] for r in rows)
    return track_id, content


async def register(node: RunningNode, name: str = "artist") -> tuple[Client, int]:
    """A user (the track owner) and its client, closed at the end of the test."""
    client = Client(node.url, rate_limit_retries=0)
    result = await client.register(name, PASSWORD)
    return client, int(result.user.id)


@pytest.fixture
async def owner() -> AsyncIterator[Any]:
    clients: list[Client] = []

    async def make(node: RunningNode, name: str = "artist") -> tuple[Client, int]:
        client, user_id = await register(node, name)
        clients.append(client)
        return client, user_id

    yield make
    await asyncio.gather(*(client.close() for client in clients))


async def media_base(node: RunningNode, track_id: int) -> str:
    """The HLS base the API hands out for the track (pinned public or signed)."""
    async with node.node.db.read() as conn:
        row = (await conn.execute(select(tracks).where(tracks.c.id == track_id))).one()
    return (await playback.media_urls(node.node, Playable.of(row))).hls.rsplit("/", 1)[0] + "/"


def later_than_the_lookup_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    later = time.monotonic() + media_files.LOOKUP_TTL_S + 1
    monkeypatch.setattr(media_files, "lookup_clock", lambda: later)


# -- raw HTTP/1.1 ---------------------------------------------------------------------------
def get(target: str, *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


async def read_answer(
    reader: asyncio.StreamReader, *, head_only: bool = False
) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"{name} twice"
        headers[name.lower()] = value.strip()
    length = 0 if head_only else int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), 10)
    return int(status_line.split()[1]), headers, body


@pytest.fixture
async def connect() -> AsyncIterator[Any]:
    writers: list[asyncio.StreamWriter] = []

    async def open_one(node: RunningNode) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        writers.append(writer)
        return reader, writer

    yield open_one
    for writer in writers:
        writer.close()


async def warm(http: httpx.AsyncClient, url: str) -> httpx.Response:
    """The full route (fills the lookup cache), then the ASGI tier (fills the answers)."""
    first = await http.get(url)
    assert first.status_code == 200 and "x-request-id" in first.headers
    second = await http.get(url)
    assert second.status_code == 200 and "x-request-id" not in second.headers
    return first


def server_side(node: RunningNode, writer: asyncio.StreamWriter) -> Any:
    """uvicorn's protocol object of our connection."""
    ours = writer.get_extra_info("sockname")
    connections = node.server.server_state.connections
    [protocol] = [p for p in connections if getattr(p, "client", None) == ours]
    return protocol


# -- the fast answer ------------------------------------------------------------------------
async def test_repeat_requests_are_answered_below_asgi_with_the_routes_bytes_and_headers(
    node, owner, http, asgi
) -> None:
    _, artist = await owner(node)
    track, content = await make_track(node, artist)
    base = await media_base(node, track)
    assert "/media/1/hls/" in base  # public: pinned, unsigned
    url = urljoin(base, "aac_128/seg_00001.m4s")
    first = await warm(http, url)
    reached = len(asgi.paths)
    for _ in range(3):
        fast = await http.get(url)
        assert fast.status_code == 200 and fast.content == content["aac_128/seg_00001.m4s"]
        assert {k: v for k, v in fast.headers.items() if k not in PER_ANSWER} == {
            k: v for k, v in first.headers.items() if k not in PER_ANSWER
        }
        assert "date" in fast.headers
    assert len(asgi.paths) == reached  # none of the three reached ASGI
    # The init segment too; playlists never (short-lived, not media).
    await warm(http, urljoin(base, "aac_128/init.mp4"))
    assert (await http.get(urljoin(base, "aac_128/init.mp4"))).content == content[FILES[0]]
    for _ in range(3):
        assert (await http.get(urljoin(base, "aac_128/index.m3u8"))).content == VARIANT
    assert len(asgi.paths) == reached + 2 + 3
    assert len(segment_cache.of(node.node)) == 2
    metrics = (await http.get("/metrics")).text
    [line] = [
        line
        for line in metrics.splitlines()
        if line.startswith("miaou_http_requests_total") and "/media/{token}/hls/" in line
    ]
    # Every answer of the route template, whichever tier gave it: the route (two segments,
    # three playlists), the ASGI tier (two), the protocol (four).
    assert float(line.split()[-1]) == 5 + 2 + 4


async def test_private_unlisted_and_unreleased_tracks_never_take_it(
    node, owner, http, asgi
) -> None:
    _, artist = await owner(node)
    later = ids.now_ms() + 3_600_000
    hidden = [
        await make_track(node, artist, visibility="private", seed=2),
        await make_track(node, artist, visibility="unlisted", seed=3),
        await make_track(node, artist, release_at=later, seed=4),
    ]
    for track, content in hidden:
        signed = urljoin(await media_base(node, track), "aac_128/seg_00000.m4s")
        assert "/media/1/" not in signed  # a signed token, not a bare version
        pinned = f"/api/v1/tracks/{track}/media/1/hls/aac_128/seg_00000.m4s"
        before = len(asgi.paths)
        for _ in range(3):
            answer = await http.get(signed)
            assert answer.status_code == 200 and "x-request-id" in answer.headers
            assert answer.content == content["aac_128/seg_00000.m4s"]
            assert answer.headers["cache-control"].startswith("private, max-age=")
            refused = await http.get(pinned)
            assert (refused.status_code, refused.json()["code"]) == (404, "unknown_track")
        assert len(asgi.paths) == before + 6  # every one went to the route
    assert len(segment_cache.of(node.node)) == 0


async def test_ranges_validators_and_head_take_the_full_route(node, owner, http, asgi) -> None:
    _, artist = await owner(node)
    track, content = await make_track(node, artist)
    url = urljoin(await media_base(node, track), "aac_128/seg_00000.m4s")
    segment = content["aac_128/seg_00000.m4s"]
    before = len(asgi.paths)
    etag = (await warm(http, url)).headers["etag"]

    ranged = await http.get(url, headers={"range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == segment[10:20]
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(segment)}"
    for match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        same = await http.get(url, headers={"if-none-match": match})
        assert same.status_code == 304 and same.content == b""
        assert same.headers["etag"] == etag
        assert same.headers["cache-control"] == "public, max-age=31536000, immutable"
    changed = await http.get(url, headers={"if-none-match": '"another"'})
    assert changed.status_code == 200 and changed.content == segment
    since = await http.get(url, headers={"if-modified-since": "Sat, 01 Jan 2000 00:00:00 GMT"})
    assert since.status_code == 200 and since.content == segment  # no Last-Modified: 200
    head = await http.head(url)  # whatever the route says (it serves GET)
    for answer in (ranged, same, changed, since, head):
        assert "x-request-id" in answer.headers
    assert len(asgi.paths) - before == 2 + 1 + 4 + 1 + 1 + 1  # every one reached ASGI


# -- one connection: pipelining, keep-alive, close ------------------------------------------
async def test_pipelined_and_keep_alive_mixes_keep_their_order(
    node, owner, http, asgi, connect
) -> None:
    artist_client, artist = await owner(node)
    track, content = await make_track(node, artist)
    base = await media_base(node, track)
    seg0, seg1 = (urljoin(base, name).split(node.url)[-1] for name in FILES[1:])
    await warm(http, node.url + seg0)
    await warm(http, node.url + seg1)
    api = f"/api/v1/tracks/{track}"
    reached = len(asgi.paths)

    reader, writer = await connect(node)
    # Fast, normal, fast, fast, normal in one write; the answers come in that order.
    writer.write(get(seg0) + get(api) + get(seg1) + get(seg0) + get("/healthz"))
    answers = [await read_answer(reader) for _ in range(5)]
    assert [a[0] for a in answers] == [200] * 5
    assert answers[0][2] == content[FILES[1]] and "x-request-id" not in answers[0][1]
    assert answers[1][1]["content-type"] == "application/json"
    assert str(track) in answers[1][2].decode()
    assert answers[2][2] == content[FILES[2]] and answers[3][2] == content[FILES[1]]
    assert "x-request-id" in answers[4][1]
    # The first was answered below ASGI; what followed the API request waited for it.
    assert asgi.paths[reached] == api and "/healthz" in asgi.paths[reached:]

    # Keep-alive: a fast answer, a normal request, a fast answer, on the same connection.
    before = len(asgi.paths)
    writer.write(get(seg1))
    assert (await read_answer(reader))[2] == content[FILES[2]]
    assert server_side(node, writer).timeout_keep_alive_task is not None  # re-armed
    writer.write(get(api, f"authorization: Bearer {artist_client.token}"))
    status, headers, body = await read_answer(reader)
    assert status == 200 and headers["content-type"] == "application/json"
    assert b'"title"' in body
    writer.write(get(seg0))
    assert (await read_answer(reader))[2] == content[FILES[1]]
    assert asgi.paths[before:] == [api]


async def test_pipelined_segments_past_the_write_buffer_all_arrive(
    node, owner, http, asgi, connect
) -> None:
    """A client that pipelines many segments without reading: the fast path stops at the
    write buffer's high-water mark and the rest wait in uvicorn's queue, in order."""
    _, artist = await owner(node)
    track, content = await make_track(node, artist)
    base = await media_base(node, track)
    targets = [urljoin(base, name).split(node.url)[-1] for name in FILES[1:]]
    for target in targets:
        await warm(http, node.url + target)
    reader, writer = await connect(node)
    before = len(asgi.paths)
    writer.write(b"".join(get(targets[i % 2]) for i in range(PIPELINED)))
    await writer.drain()
    await asyncio.sleep(0.2)  # the server writes until its buffer is full
    for i in range(PIPELINED):
        status, _, body = await read_answer(reader)
        assert status == 200 and body == content[FILES[1 + i % 2]], i
    assert len(asgi.paths) > before  # more than the socket buffers hold: the rest waited


async def test_connection_close_is_honoured(node, owner, http, asgi, connect) -> None:
    _, artist = await owner(node)
    track, content = await make_track(node, artist)
    target = urljoin(await media_base(node, track), FILES[1]).split(node.url)[-1]
    await warm(http, node.url + target)

    reader, writer = await connect(node)
    writer.write(get(target, "connection: close") + get(target))
    status, headers, body = await read_answer(reader)
    assert status == 200 and body == content[FILES[1]] and headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed; the second ignored

    # A client that closes after a fast answer: its connection is gone from the server.
    reader, writer = await connect(node)
    writer.write(get(target))
    assert (await read_answer(reader))[2] == content[FILES[1]]
    protocol = server_side(node, writer)
    writer.close()
    for _ in range(100):  # up to 2 s
        if protocol not in node.server.server_state.connections:
            break
        await asyncio.sleep(0.02)
    assert protocol not in node.server.server_state.connections
    assert (await http.get(node.url + target)).content == content[FILES[1]]


# -- lifetime, limits, bounds ---------------------------------------------------------------
async def test_a_deleted_tracks_segments_stop_within_the_lookup_lifetime(
    node, owner, http, asgi, monkeypatch
) -> None:
    client, artist = await owner(node)
    track, content = await make_track(node, artist)
    url = urljoin(await media_base(node, track), FILES[1])
    sha256 = (await warm(http, url)).headers["etag"].strip('"')
    await client.delete_track(str(track))
    # Within LOOKUP_TTL_S the cached lookup may still answer (documented), from memory
    # (the blob file itself is gone):
    assert not node.node.blobs.path(sha256).exists()
    assert (await http.get(url)).content == content[FILES[1]]
    later_than_the_lookup_cache(monkeypatch)
    gone = await http.get(url)
    assert (gone.status_code, gone.json()["code"]) == (404, "unknown_track")
    assert (await http.get(url)).status_code == 404


async def test_lookups_are_refreshed_ahead_in_one_query_per_version(
    node, owner, http, asgi, monkeypatch
) -> None:
    """Steady traffic never meets an expired lookup: half way through their life, the
    lookups of a version are asked again together; a track made private still stops
    being served within LOOKUP_TTL_S of the last answer that found it public."""
    _, artist = await owner(node)
    track, content = await make_track(node, artist)
    base = await media_base(node, track)
    urls = [urljoin(base, name) for name in FILES[1:]]
    for url in urls:
        await warm(http, url)
    now = [time.monotonic()]
    monkeypatch.setattr(media_files, "lookup_clock", lambda: now[0])
    lookups = lookup_refresh.refresher(node.node)

    async def settled() -> None:
        for _ in range(250):  # up to 5 s
            if not lookups.pending:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the refresh did not finish")

    def expiries() -> list[float]:
        found = [media_files.public_lookup(node.node.db, track, 1, n) for n in FILES[1:]]
        return [entry[0] for entry in found if entry is not None]

    first = max(expiries())
    now[0] = first - media_files.LOOKUP_TTL_S / 2 + 0.1  # half way: refresh
    reached = len(asgi.paths)
    assert (await http.get(urls[0])).content == content[FILES[1]]
    await settled()
    renewed = expiries()
    assert len(renewed) == 2 and min(renewed) > first  # both files, by one request
    now[0] = first + 0.5  # past the first lifetime: still answered below ASGI
    for url, name in zip(urls, FILES[1:], strict=True):
        assert (await http.get(url)).content == content[name]
    assert len(asgi.paths) == reached
    await settled()  # those were half way through their new life too: asked again
    renewed = expiries()

    async with node.node.db.write() as conn:
        await conn.execute(update(tracks).where(tracks.c.id == track).values(visibility="private"))
    now[0] = min(renewed) - 0.5  # in the second half again: asks, finds nothing
    assert (await http.get(urls[0])).status_code == 200
    await settled()
    assert expiries() == renewed  # not extended
    now[0] = max(renewed) + 0.01
    gone = await http.get(urls[0])
    assert (gone.status_code, gone.json()["code"]) == (404, "unknown_track")


async def test_a_burst_after_a_quiet_spell_takes_the_route_once(
    node, owner, http, connect, monkeypatch
) -> None:
    """Listeners coming back together, with the lookup expired: the first request takes
    the route, the others wait for its lookup and are answered from it; for a file that
    is gone they all get the route's 404."""
    client, artist = await owner(node)
    track, content = await make_track(node, artist)
    target = urljoin(await media_base(node, track), FILES[1]).split(node.url)[-1]
    await warm(http, node.url + target)
    later_than_the_lookup_cache(monkeypatch)  # a quiet spell
    connections = [await connect(node) for _ in range(20)]

    async def burst() -> list[tuple[int, dict[str, str], bytes]]:
        for _, writer in connections:
            writer.write(get(target))
        return await asyncio.gather(*(read_answer(reader) for reader, _ in connections))

    answers = await burst()
    assert all(a[0] == 200 and a[2] == content[FILES[1]] for a in answers)
    assert sum("x-request-id" in headers for _, headers, _ in answers) == 1

    await client.delete_track(str(track))
    monkeypatch.setattr(media_files, "lookup_clock", lambda: time.monotonic() + 60)
    answers = await burst()
    assert [a[0] for a in answers] == [404] * 20
    assert all(b'"unknown_track"' in body for _, _, body in answers)


async def test_the_rate_limit_counts_fast_answers(start_node, owner, connect) -> None:
    node = await start_node(ratelimit={"api_per_ip": "6/60"})
    _, artist = await owner(node)
    asgi = AsgiCalls(node)
    track, _ = await make_track(node, artist)
    target = urljoin(await media_base(node, track), FILES[1]).split(node.url)[-1]
    reader, writer = await connect(node)
    statuses = []
    for _ in range(8):
        writer.write(get(target))
        status, headers, body = await read_answer(reader)
        statuses.append(status)
    # The route, the ASGI tier, four from the protocol; then the route refuses.
    assert statuses == [200] * 6 + [429] * 2
    assert len(asgi.paths) == 2 + 2
    assert int(headers["retry-after"]) >= 1 and headers["x-ratelimit-remaining"] == "0"
    assert b'"rate_limited"' in body


async def test_the_memory_bound_and_turning_it_off(start_node, owner) -> None:
    small = await start_node(ratelimit={"enabled": False}, media_memory_cache_bytes=150_000)
    off = await start_node(ratelimit={"enabled": False}, media_memory_cache_bytes=0)
    for running, name in ((small, "small"), (off, "off")):  # one database: two names
        _, artist = await owner(running, name)
        asgi = AsgiCalls(running)
        track, content = await make_track(running, artist)
        base = await media_base(running, track)
        async with httpx.AsyncClient(base_url=running.url) as http:
            for _ in range(3):
                for name in FILES[1:]:
                    answer = await http.get(urljoin(base, name))
                    assert answer.status_code == 200 and answer.content == content[name]
        answers = segment_cache.of(running.node)
        assert answers.size <= running.node.settings.media_memory_cache_bytes
        if running is small:
            assert len(answers) == 1  # one 96 kB segment fits, two do not
        else:
            assert len(answers) == 0 and len(asgi.paths) == 6  # every request reached ASGI
