"""Attachments: multipart sends streamed to the blob store, sniffed types, thumbnails, serving
with permission checks, cleanup of refused sends and garbage collection.

A real node with a small attachment cap (so the over-cap case is quick); files are made in
the tests, images with Pillow.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import struct
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from chat_fixtures import (
    MEMBER,
    MEMBER_OVERWRITE,
    PASSWORD,
    GuildFixture,
    P,
    Person,
    count,
    create_dm,
    create_guild,
    join,
    overwrite,
    person,
    rows,
)
from PIL import Image
from sqlalchemy import select, update

from miaou.chat.media import clean_filename
from miaou.chat.tables import attachments, messages
from miaou.config import load_settings
from miaou.errors import ConfigError
from miaou.sdk import ApiError, Client
from miaou.server import RunningNode

CAP = 300_000


@pytest.fixture
async def node(start_node) -> RunningNode:
    return await start_node(ratelimit={"enabled": False}, max_attachment_bytes=CAP)


@pytest.fixture
async def guild(node: RunningNode, owner: Person) -> GuildFixture:
    return await create_guild(node, owner, everyone=MEMBER | P.ATTACH_FILES)


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), "orange").save(out, "PNG")
    return out.getvalue()


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "JPEG")
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` but holds almost nothing: a bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def stored_files(node: RunningNode) -> list[Path]:
    """Every file in the media directory, blobs and temporary files alike."""
    root = node.node.messages.blobs.root
    return sorted(Path(d) / n for d, _, names in os.walk(root) for n in names)


async def refused(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await call
    return caught.value


async def post_form(who: Person, channel: str, parts: list[tuple[str, Any]], **payload: Any):
    """A multipart send as any client would make it, without the SDK's help."""
    return await who.client._http.post(
        f"/api/v1/channels/{channel}/messages",
        data={"payload_json": msgspec.json.encode(payload).decode()},
        files=parts,
        headers={"authorization": f"Bearer {who.client.token}"},
    )


async def nothing_stored(node: RunningNode) -> None:
    assert await count(node, attachments) == 0
    assert await count(node, messages) == 0
    assert stored_files(node) == []


# -- sending --------------------------------------------------------------------------------
async def test_image_is_sniffed_measured_and_thumbnailed(node, guild, member, recorded) -> None:
    image = png(800, 600)
    # The name and the part's type lie: the bytes decide.
    sent = await member.client.send_message(
        guild.channel, "look", files=[("cat.txt", image, "text/plain")]
    )
    assert sent.content == "look"
    [att] = sent.attachments
    assert (att.filename, att.content_type, att.size) == ("cat.txt", "image/png", len(image))
    assert (att.width, att.height) == (800, 600)
    assert att.url == f"/api/v1/channels/{guild.channel}/attachments/{att.id}/cat.txt"
    assert att.proxy_url == f"/api/v1/channels/{guild.channel}/attachments/{att.id}/thumbnail"

    assert await member.client.download_attachment(att.url) == image
    thumb = Image.open(io.BytesIO(await member.client.download_attachment(att.proxy_url)))
    assert (thumb.format, thumb.size) == ("WEBP", (400, 300))

    # Stored once, content-addressed; the message says it has attachments.
    sha = hashlib.sha256(image).hexdigest()
    assert node.node.messages.blobs.root / sha[:2] / sha[2:4] / sha in stored_files(node)
    [row] = await rows(node, select(messages).where(messages.c.id == int(sent.id)))
    assert row.has_attachments
    # The event carries the attachments; history and single reads show them.
    [event] = [e for e in recorded if e.type == "MESSAGE_CREATE"]
    assert [a.id for a in event.payload.attachments] == [att.id]
    [listed] = await member.client.messages(guild.channel)
    assert listed.attachments == sent.attachments
    assert (await member.client.message(guild.channel, sent.id)).attachments == sent.attachments


async def test_several_files_of_several_kinds(node, guild, member) -> None:
    text = "une ligne\nde texte — accentuée\n".encode()
    files = [
        ("notes.md", text),
        ("photo.jpg", jpeg(300, 200)),
        ("blob.bin", bytes(range(256)) * 10),
        ("tiny.gif", _gif()),
    ]
    sent = await member.client.send_message(guild.channel, files=files)  # no text: allowed
    assert sent.content == ""
    got = [(a.filename, a.content_type, a.width, a.height) for a in sent.attachments]
    assert got == [
        ("notes.md", "text/plain", None, None),
        ("photo.jpg", "image/jpeg", 300, 200),
        ("blob.bin", "application/octet-stream", None, None),
        ("tiny.gif", "image/gif", 5, 4),
    ]
    assert sent.attachments[0].proxy_url is None  # only images have thumbnails
    for (_, data), att in zip(files, sent.attachments, strict=True):
        assert await member.client.download_attachment(att.url) == data
    # A thumbnail is never larger than the image it stands for.
    thumbnail = await member.client.download_attachment(sent.attachments[1].proxy_url)
    small = Image.open(io.BytesIO(thumbnail))
    assert small.size == (300, 200)


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (5, 4)).save(out, "GIF")
    return out.getvalue()


async def test_same_content_is_stored_once(node, guild, member) -> None:
    data = png(50, 50)
    first = await member.client.send_message(guild.channel, files=[("a.png", data)])
    second = await member.client.send_message(guild.channel, files=[("b.png", data)])
    assert first.attachments[0].id != second.attachments[0].id
    assert len(stored_files(node)) == 2  # the image and its thumbnail, once each


async def test_from_a_path_streamed_by_the_sdk(node, guild, member, tmp_path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(CAP))  # exactly at the cap: accepted
    sent = await member.client.send_message(guild.channel, "file", files=[("big.bin", path)])
    [att] = sent.attachments
    assert att.size == CAP
    assert await member.client.download_attachment(att.url) == path.read_bytes()


async def test_uploads_stream_to_disk(start_node, tmp_path) -> None:
    """A 12 MiB upload never sits whole in the node's memory (nor the SDK's)."""
    big_node = await start_node(ratelimit={"enabled": False}, max_attachment_bytes=16 << 20)
    async with Client(big_node.url) as client:
        uploader = Person(client, (await client.register("big", PASSWORD)).user.id)
        guild = await create_guild(big_node, uploader, everyone=MEMBER | P.ATTACH_FILES)
        path = tmp_path / "big.bin"
        path.write_bytes(os.urandom(12 << 20))
        tracemalloc.start()
        try:
            sent = await client.send_message(guild.channel, files=[("big.bin", path)])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert sent.attachments[0].size == 12 << 20
        assert peak < 4 << 20, f"peak {peak} bytes"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert big_node.node.messages.blobs.path(digest).stat().st_size == 12 << 20


# -- refusals leave nothing behind ----------------------------------------------------------
async def test_eleven_files_are_refused(node, guild, member) -> None:
    parts = [(f"files[{i}]", (f"f{i}.txt", b"hello %d" % i)) for i in range(11)]
    response = await post_form(member, guild.channel, parts, content="too many")
    assert response.status_code == 400
    assert response.json()["code"] == "max_attachments"
    await nothing_stored(node)
    ten = await post_form(member, guild.channel, parts[:10], content="ten")
    assert ten.status_code == 200 and len(ten.json()["attachments"]) == 10


async def test_over_the_cap_is_413_and_nothing_is_kept(node, guild, member) -> None:
    files = [("ok.png", png(40, 40)), ("big.bin", b"x" * (CAP + 1))]
    error = await refused(member.client.send_message(guild.channel, "x", files=files))
    assert (error.status, error.code) == (413, "payload_too_large")
    await nothing_stored(node)  # the first file's blob went too; no temporary file is left


async def test_whole_request_cap(node, guild, member) -> None:
    # Announced larger than ten files at the cap: refused before a byte of it is read.
    too_long = node.node.settings.max_upload_request_bytes + 1
    host, port = node.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"POST /api/v1/channels/{guild.channel}/messages HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: Bearer {member.client.token}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {too_long}\r\n\r\n".encode()
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    assert status.split()[1] == b"413"
    await nothing_stored(node)


async def test_without_attach_files_403(node, make_client, guild, member) -> None:
    outsider = await person(make_client, "outsider")
    error = await refused(outsider.client.send_message(guild.channel, files=[("a", b"a")]))
    assert (error.status, error.code) == (404, "unknown_channel")
    await overwrite(node, guild.channel_id, member.uid, kind=MEMBER_OVERWRITE, deny=P.ATTACH_FILES)
    error = await refused(member.client.send_message(guild.channel, "x", files=[("a", b"a")]))
    assert (error.status, error.code) == (403, "missing_permissions")
    await nothing_stored(node)
    assert (await member.client.send_message(guild.channel, "text only")).attachments == []


async def test_refused_message_leaves_no_rows_nor_files(node, guild, member) -> None:
    # The files are fine; the message is not (too long): the upload is undone.
    error = await refused(
        member.client.send_message(guild.channel, "y" * 4001, files=[("a.png", png(30, 30))])
    )
    assert error.code == "invalid_content"
    await nothing_stored(node)
    # Without files, a multipart send needs content as a JSON one does.
    only_payload = (
        b'--b\r\nContent-Disposition: form-data; name="payload_json"\r\n\r\n'
        b'{"content": " "}\r\n--b--\r\n'
    )
    empty = await member.client._http.post(
        f"/api/v1/channels/{guild.channel}/messages",
        content=only_payload,
        headers={
            "authorization": f"Bearer {member.client.token}",
            "content-type": "multipart/form-data; boundary=b",
        },
    )
    assert empty.status_code == 400 and empty.json()["code"] == "invalid_content"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (png_header(20_000, 20_000), "image_too_large"),  # past Pillow's bomb threshold
        (png_header(8_000, 8_000), "image_too_large"),  # 64 MP: past our 50 MP
        (png(100, 100)[:200], "invalid_image"),  # truncated
    ],
)
async def test_bombs_and_broken_images_are_refused(node, guild, member, data, code) -> None:
    error = await refused(member.client.send_message(guild.channel, files=[("x.png", data)]))
    assert (error.status, error.code) == (400, code)
    await nothing_stored(node)


async def test_nonce_replay_keeps_only_the_first_files(node, guild, member) -> None:
    first = await member.client.send_message(
        guild.channel, "once", nonce="n1", files=[("a.txt", b"first file")]
    )
    again = await member.client.send_message(
        guild.channel, "once", nonce="n1", files=[("b.txt", b"second file")]
    )
    assert again.id == first.id and again.attachments == first.attachments
    assert await count(node, attachments) == 1
    assert len(stored_files(node)) == 1


async def test_bad_forms(node, guild, member) -> None:
    unknown = await post_form(member, guild.channel, [("other", ("a", b"a"))], content="x")
    assert unknown.status_code == 400 and "other" in unknown.json()["errors"]
    broken = await member.client._http.post(
        f"/api/v1/channels/{guild.channel}/messages",
        content=b'--b\r\nContent-Disposition: form-data; name="files[0]"',
        headers={
            "authorization": f"Bearer {member.client.token}",
            "content-type": "multipart/form-data; boundary=b",
        },
    )
    assert broken.status_code == 400
    # payload_json refuses what the JSON body refuses, with the same error.
    as_form = await post_form(member, guild.channel, [("files[0]", ("a", b"a"))], bogus=1)
    as_json = await member.client._http.post(
        f"/api/v1/channels/{guild.channel}/messages",
        json={"content": "x", "bogus": 1},
        headers={"authorization": f"Bearer {member.client.token}"},
    )
    assert as_form.status_code == as_json.status_code == 400
    refusal = {"bogus": ["is not a known field"]}
    assert as_form.json()["errors"] == as_json.json()["errors"] == refusal
    await nothing_stored(node)


async def test_json_sends_are_unchanged(node, guild, member) -> None:
    sent = await member.client.send_message(guild.channel, "plain")
    assert sent.attachments == []
    raw = await member.client._http.post(
        f"/api/v1/channels/{guild.channel}/messages",
        json={"content": "plain again"},
        headers={"authorization": f"Bearer {member.client.token}"},
    )
    assert raw.status_code == 200 and raw.json()["attachments"] == []
    # The JSON form keeps the node's 1 MiB body limit, whatever the attachment cap.
    huge = await member.client._http.post(
        f"/api/v1/channels/{guild.channel}/messages",
        json={"content": "z" * (node.node.settings.max_body_bytes + 10)},
        headers={"authorization": f"Bearer {member.client.token}"},
    )
    assert huge.status_code == 413


# -- serving --------------------------------------------------------------------------------
async def test_who_may_download(node, make_client, guild, owner, member) -> None:
    sent = await member.client.send_message(guild.channel, files=[("p.png", png(500, 500))])
    [att] = sent.attachments
    original = await member.client.download_attachment(att.url)
    assert await owner.client.download_attachment(att.url) == original

    outsider = await person(make_client, "outsider")
    for url in (att.url, att.proxy_url):
        error = await refused(outsider.client.download_attachment(url))
        assert (error.status, error.code) == (404, "unknown_channel")
    # Seeing the channel is not enough: reading its history is needed.
    reader = await person(make_client, "reader")
    await join(node, guild, reader)
    await overwrite(
        node, guild.channel_id, reader.uid, kind=MEMBER_OVERWRITE, deny=P.READ_MESSAGE_HISTORY
    )
    error = await refused(reader.client.download_attachment(att.url))
    assert (error.status, error.code) == (404, "unknown_attachment")
    # Unauthenticated: 401.
    async with httpx.AsyncClient(base_url=node.url) as anonymous:
        assert (await anonymous.get(att.url)).status_code == 401
    # Another channel's path, a wrong id: 404.
    wrong = att.url.replace(att.id, "123")
    assert (await refused(member.client.download_attachment(wrong))).status == 404

    await member.client.delete_message(guild.channel, sent.id)
    for url in (att.url, att.proxy_url):
        error = await refused(member.client.download_attachment(url))
        assert (error.status, error.code) == (404, "unknown_attachment")
    assert await count(node, attachments) == 0


async def test_response_headers(node, guild, member) -> None:
    page = b"<html><body><script>alert(1)</script></body></html>"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    sent = await member.client.send_message(
        guild.channel,
        files=[("page.html", page, "text/html"), ("pic.svg", svg), ("p.png", png(10, 10))],
    )
    html, vector, image = sent.attachments
    assert (html.content_type, vector.content_type) == ("text/html", "image/svg+xml")
    for att, disposition in ((html, "attachment"), (vector, "attachment"), (image, "inline")):
        response = await member.client.request("GET", att.url)
        assert response.headers["content-type"].split(";")[0] == att.content_type
        assert response.headers["content-disposition"].startswith(disposition)
        assert att.filename in response.headers["content-disposition"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"].startswith("private, max-age=")
        assert "sandbox" in response.headers["content-security-policy"]
        assert response.headers["etag"].strip('"') == hashlib.sha256(response.content).hexdigest()


async def test_byte_ranges(node, guild, member) -> None:
    data = bytes(range(256)) * 4
    sent = await member.client.send_message(guild.channel, files=[("r.bin", data)])
    url = sent.attachments[0].url
    etag = f'"{hashlib.sha256(data).hexdigest()}"'

    async def get(**headers: str) -> httpx.Response:
        return await member.client._http.get(
            url, headers={"authorization": f"Bearer {member.client.token}", **headers}
        )

    whole = await get()
    assert (whole.status_code, whole.content, whole.headers["accept-ranges"]) == (
        200,
        data,
        "bytes",
    )
    for header, first, last in [
        ("bytes=10-19", 10, 19),
        ("bytes=-5", 1019, 1023),
        ("bytes=1000-", 1000, 1023),
        ("bytes=1000-5000", 1000, 1023),
    ]:
        part = await get(range=header)
        assert part.status_code == 206, header
        assert part.content == data[first : last + 1]
        assert part.headers["content-range"] == f"bytes {first}-{last}/1024"
        assert part.headers["x-content-type-options"] == "nosniff"
        assert part.headers["content-disposition"].startswith("attachment")
    assert (await get(range="bytes=2000-")).status_code == 416
    assert (await get(range="bytes=2000-")).headers["content-range"] == f"bytes */{len(data)}"
    # Several ranges, a malformed one, or a stale If-Range: the whole file.
    for headers in (
        {"range": "bytes=0-1,5-6"},
        {"range": "bytes=9-2"},
        {"range": "lines=1-2"},
        {"range": "bytes=0-1", "if-range": '"stale"'},
    ):
        assert (await get(**headers)).content == data
    assert (await get(range="bytes=0-1", **{"if-range": etag})).content == data[:2]


async def test_direct_messages_take_attachments(node, make_client, owner) -> None:
    friend = await person(make_client, "friend")
    dm = str(await create_dm(node, [owner, friend]))
    sent = await owner.client.send_message(dm, "for you", files=[("n.txt", b"note")])
    assert await friend.client.download_attachment(sent.attachments[0].url) == b"note"


# -- garbage collection ---------------------------------------------------------------------
async def test_collect_garbage_removes_what_no_row_names(node, guild, member) -> None:
    blobs = node.node.messages.blobs
    shared = png(60, 60)
    kept = await member.client.send_message(guild.channel, files=[("a.png", shared)])
    gone = await member.client.send_message(guild.channel, files=[("b.png", shared)])
    solo = await member.client.send_message(guild.channel, files=[("c.txt", b"only here")])
    stale_tmp = blobs.tmp / "upload-crashed"
    stale_tmp.write_bytes(b"partial")
    before = stored_files(node)

    await member.client.delete_message(guild.channel, gone.id)
    await member.client.delete_message(guild.channel, solo.id)
    # Within the grace period nothing goes: another node may be about to use a blob.
    assert await blobs.collect_garbage(node.node.db) == 0
    assert stored_files(node) == before

    old = time.time() - 7200
    for path in stored_files(node):
        os.utime(path, (old, old))
    assert await blobs.collect_garbage(node.node.db) == 2  # the text blob and the temp file
    solo_sha = hashlib.sha256(b"only here").hexdigest()
    assert not blobs.path(solo_sha).exists() and not stale_tmp.exists()
    # Still named by the kept message: the shared image and its thumbnail stay.
    [att] = kept.attachments
    assert await member.client.download_attachment(att.url) == shared
    await member.client.download_attachment(att.proxy_url)

    await member.client.delete_message(guild.channel, kept.id)
    assert await blobs.collect_garbage(node.node.db, grace_seconds=0) == 2
    assert stored_files(node) == []


async def test_collect_garbage_drops_rows_of_tombstones(node, guild, member) -> None:
    """A delete path that only tombstones (a ban's purge) leaves rows; the GC drops them."""
    sent = await member.client.send_message(guild.channel, files=[("t.txt", b"purged")])
    async with node.node.db.write() as conn:
        await conn.execute(
            update(messages).where(messages.c.id == int(sent.id)).values(deleted_at=1)
        )
    error = await refused(member.client.download_attachment(sent.attachments[0].url))
    assert error.status == 404
    blobs = node.node.messages.blobs
    # A blob held by an upload in flight (about to be named by its row) is never removed.
    sha = hashlib.sha256(b"purged").hexdigest()
    blobs.hold(sha)
    assert await blobs.collect_garbage(node.node.db, grace_seconds=0) == 0
    blobs.release([sha])
    assert await blobs.collect_garbage(node.node.db, grace_seconds=0) == 1
    assert await count(node, attachments) == 0
    assert stored_files(node) == []


async def test_ban_purge_drops_the_attachment_rows(node, guild, owner, member) -> None:
    sent = await member.client.send_message(guild.channel, files=[("t.txt", b"spam spam")])
    assert await count(node, attachments) == 1
    await owner.client.ban(str(guild.id), member.id, delete_message_seconds=3600)
    assert await count(node, attachments) == 0
    error = await refused(owner.client.download_attachment(sent.attachments[0].url))
    assert error.status == 404


# -- pure rules -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("bad\x00na\x1bme\n.txt", "badname.txt"),
        ("", "file"),
        (None, "file"),
        ("..", "file"),
        ("thumbnail", "thumbnail_"),
        ("é" * 200 + ".png", "é" * 125 + ".png"),
    ],
)
def test_clean_filename(raw: str | None, clean: str) -> None:
    assert clean_filename(raw) == clean
    assert len(clean_filename(raw).encode()) <= 255


def test_attachment_settings(tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"data_dir": str(tmp_path)})
    assert settings.max_attachment_bytes == 25 << 20
    assert settings.effective_media_dir == (tmp_path / "media").resolve()
    assert settings.max_upload_request_bytes == 10 * (25 << 20) + (1 << 20)
    moved = load_settings(environ={"MIAOU_MEDIA_DIR": str(tmp_path / "elsewhere")})
    assert moved.effective_media_dir == (tmp_path / "elsewhere").resolve()
    with pytest.raises(ConfigError, match="max_attachment_bytes"):
        load_settings(environ={}, overrides={"max_attachment_bytes": 0})
