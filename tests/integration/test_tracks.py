"""Tracks end to end on a real node: upload every accepted format, wait for the processing
job, play back every HLS variant and the progressive file (decoded with PyAV), check the
waveform and the loudness against pyloudnorm; bad files refused with nothing left behind;
details, visibility, versions and deletion through the API.
"""

from __future__ import annotations

import io
import itertools
import os
import random
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import mutagen.flac
import numpy as np
import pyloudnorm
import pytest
from audio_samples import FORMATS, decode, decode_stereo, encode
from chat_fixtures import PASSWORD, Person, count, person
from PIL import Image

from miaou.audio.tables import track_files, tracks
from miaou.ids import now_ms
from miaou.jobs.runner import JobRunner
from miaou.jobs.tables import jobs
from miaou.sdk import ApiError, Client
from miaou.server import RunningNode

SECONDS = 8.0
SEGMENT = 6.0


@pytest.fixture
async def node(start_node) -> RunningNode:
    return await start_node(ratelimit={"enabled": False}, job_processes=2)


@pytest.fixture
async def artist(make_client) -> Person:
    return await person(make_client, "artist")


async def upload(client: Client, path: Path, **details: Any) -> dict[str, Any]:
    return await client.upload_track(path, path.name, **details)


def media_files(node: RunningNode) -> list[Path]:
    """Blob files in the node's media directory (temporary files aside)."""
    root = node.node.blobs.root
    return [
        Path(folder) / name
        for folder, _dirs, names in os.walk(root)
        if not Path(folder).is_relative_to(root / "tmp")
        for name in names
    ]


# -- every format, played back --------------------------------------------------------------
@pytest.mark.database_kinds("sqlite")
@pytest.mark.parametrize("extension", list(FORMATS))
async def test_every_format_becomes_playable(node, artist, tmp_path, extension) -> None:
    source = encode(tmp_path / f"song.{extension}", extension, SECONDS)
    created = await upload(artist.client, source, title=f"Song {extension}")
    assert created["state"] == "processing"
    assert created["duration_ms"] == pytest.approx(SECONDS * 1000, abs=100)
    track = await artist.client.wait_for_track(created["id"], within=120)
    media = track["media"]

    master = (await artist.client.fetch_media(media["hls"])).text
    variants = _variants(master)
    assert sorted(v["codecs"] for v in variants) == ["mp4a.40.2"] * 3 + ["opus"]
    for variant in variants:
        assert int(variant["bandwidth"]) > 0
        audio = await _fetch_variant(artist.client, urljoin(media["hls"], variant["uri"]))
        samples, rate = decode(audio)
        assert abs(len(samples) / rate - SECONDS) <= SEGMENT
        assert float(np.sqrt(np.mean(samples**2))) > 0.01, "silence"

    progressive = (await artist.client.fetch_media(media["stream"])).content
    samples, rate = decode(progressive)
    assert abs(len(samples) / rate - SECONDS) <= SEGMENT
    assert float(np.sqrt(np.mean(samples**2))) > 0.01

    waveform = (await artist.client.fetch_media(media["waveform_json"])).json()
    assert waveform["samples_per_pixel"] == 256 and waveform["bits"] == 8
    expected_points = SECONDS * waveform["sample_rate"] / 256
    assert abs(waveform["length"] - expected_points) <= 0.01 * expected_points + 2
    assert len(waveform["data"]) == 2 * waveform["length"]

    stereo, rate = decode_stereo(source)
    independent = pyloudnorm.Meter(rate).integrated_loudness(stereo)
    assert abs(track["loudness"]["integrated_lufs"] - independent) <= 1.0
    assert track["loudness"]["replaygain_track_gain_db"] == pytest.approx(
        -18 - track["loudness"]["integrated_lufs"], abs=0.01
    )


def _variants(master: str) -> list[dict[str, str]]:
    lines = master.splitlines()
    found = []
    for line, uri in itertools.pairwise(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes = dict(_attributes(line.partition(":")[2]))
            found.append({"bandwidth": attributes["BANDWIDTH"],
                          "codecs": attributes["CODECS"].strip('"'), "uri": uri})  # fmt: skip
    return found


def _attributes(text: str) -> list[tuple[str, str]]:
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [tuple(p.split("=", 1)) for p in parts if "=" in p]  # type: ignore[misc]


async def _fetch_variant(client: Client, playlist_url: str) -> bytes:
    """init + every segment of one variant, concatenated: a playable fMP4 stream."""
    playlist = (await client.fetch_media(playlist_url)).text
    assert "#EXT-X-ENDLIST" in playlist
    init = next(line for line in playlist.splitlines() if line.startswith("#EXT-X-MAP:"))
    uris = [init.split('URI="', 1)[1].split('"', 1)[0]]
    uris += [line for line in playlist.splitlines() if line and not line.startswith("#")]
    body = b""
    for uri in uris:
        body += (await client.fetch_media(urljoin(playlist_url, uri))).content
    return body


# -- refusals ---------------------------------------------------------------------------------
def _truncated(tmp_path: Path, extension: str) -> Path:
    whole = encode(tmp_path / f"whole.{extension}", extension, SECONDS).read_bytes()
    cut = tmp_path / f"cut.{extension}"
    cut.write_bytes(whole[: len(whole) // 3])
    return cut


def _wav_claiming_hours(tmp_path: Path) -> Path:
    whole = bytearray(encode(tmp_path / "w.wav", "wav", 1.0).read_bytes())
    data = whole.index(b"data")
    whole[data + 4 : data + 8] = (0x7FFFFFF0).to_bytes(4, "little")  # ~6 hours of 16-bit stereo
    whole[4:8] = (0x7FFFFFF0 + 36).to_bytes(4, "little")
    path = tmp_path / "claims.wav"
    path.write_bytes(bytes(whole))
    return path


BAD_FILES = {
    "empty": (lambda tmp: _write(tmp / "empty.mp3", b""), {"empty_file", "unsupported_audio"}),
    "random": (lambda tmp: _write(tmp / "noise.mp3", random.Random(1).randbytes(200_000)),
               {"unsupported_audio", "invalid_audio"}),
    "text named mp3": (lambda tmp: _write(tmp / "notes.mp3", b"just some notes\n" * 500),
                       {"unsupported_audio"}),
    "image named flac": (lambda tmp: _png(tmp / "cover.flac"), {"unsupported_audio"}),
    "truncated flac": (lambda tmp: _truncated(tmp, "flac"), {"invalid_audio"}),
    "truncated wav": (lambda tmp: _truncated(tmp, "wav"), {"invalid_audio"}),
    "truncated m4a": (lambda tmp: _truncated(tmp, "m4a"), {"invalid_audio", "unsupported_audio"}),
    "wav claiming hours": (_wav_claiming_hours, {"invalid_audio", "audio_too_long"}),
}  # fmt: skip


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _png(path: Path) -> Path:
    Image.new("RGB", (64, 64), (200, 10, 10)).save(path, "PNG")
    return path


@pytest.mark.parametrize("case", list(BAD_FILES))
async def test_bad_files_are_refused_and_leave_nothing(node, artist, tmp_path, case) -> None:
    make, codes = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(ApiError) as refused:
        await upload(artist.client, path, title="bad")
    assert refused.value.status == 400, refused.value
    assert refused.value.code in codes, refused.value
    assert await count(node, tracks) == 0
    assert await count(node, jobs) == 0
    assert media_files(node) == []
    assert list((node.node.blobs.root / "tmp").glob("*")) == []


async def artist_on(node: RunningNode, clients) -> Person:
    client = clients(node.url)
    return Person(client, (await client.register("capped", PASSWORD)).user.id)


async def test_over_the_size_cap_is_413_and_leaves_nothing(start_node, clients, tmp_path) -> None:
    node = await start_node(ratelimit={"enabled": False}, max_track_bytes=100_000)
    artist = await artist_on(node, clients)
    with pytest.raises(ApiError) as refused:
        await upload(artist.client, encode(tmp_path / "big.wav", "wav", SECONDS))
    assert refused.value.status == 413
    assert await count(node, tracks) == 0
    assert media_files(node) == []


async def test_quotas_count_tracks_and_original_bytes(start_node, clients, tmp_path) -> None:
    one = encode(tmp_path / "one.wav", "wav", 1.0)  # ~176 kB of PCM
    size = one.stat().st_size
    node = await start_node(
        ratelimit={"enabled": False}, jobs_in_serve=False,
        track_quota_count=2, track_quota_bytes=3 * size,
    )  # fmt: skip
    artist = await artist_on(node, clients)
    other = await person(lambda: clients(node.url), "other")
    first = await upload(artist.client, one)
    assert await artist.client.track_usage() == {
        "tracks": 1, "track_limit": 2, "bytes": size, "byte_limit": 3 * size,
    }  # fmt: skip
    # Bytes: a second original that would pass 3 * size is refused, and nothing is kept.
    big = encode(tmp_path / "big.wav", "wav", 2.5)
    with pytest.raises(ApiError) as refused:
        await upload(artist.client, big)
    assert (refused.value.status, refused.value.code) == (403, "storage_quota_exceeded")
    assert await count(node, tracks) == 1
    # A new version is measured by what it adds over the original it replaces.
    with pytest.raises(ApiError) as refused:
        await artist.client.replace_track_audio(first["id"], encode(tmp_path / "r.wav", "wav", 4.0))
    assert refused.value.code == "storage_quota_exceeded"
    await artist.client.replace_track_audio(first["id"], encode(tmp_path / "s.wav", "wav", 1.5))
    # Count: the third track is refused before its body is read, whatever its size.
    await upload(artist.client, encode(tmp_path / "two.flac", "flac", 0.5))
    with pytest.raises(ApiError) as refused:
        await upload(artist.client, encode(tmp_path / "three.flac", "flac", 0.5))
    assert (refused.value.status, refused.value.code) == (403, "track_limit_reached")
    assert (await artist.client.track_usage())["tracks"] == 2
    # Quotas are per user; deleting frees room.
    await upload(other.client, one)
    await artist.client.delete_track(first["id"])
    await upload(artist.client, encode(tmp_path / "three.flac", "flac", 0.6))
    assert (await artist.client.track_usage())["tracks"] == 2


async def test_over_the_duration_cap_is_refused(start_node, clients, tmp_path) -> None:
    node = await start_node(ratelimit={"enabled": False}, max_track_seconds=5)
    artist = await artist_on(node, clients)
    with pytest.raises(ApiError) as refused:
        await upload(artist.client, encode(tmp_path / "long.flac", "flac", SECONDS))
    assert (refused.value.status, refused.value.code) == (400, "audio_too_long")
    assert await count(node, tracks) == 0
    assert media_files(node) == []


async def test_a_form_without_the_audio_part_is_refused(node, artist) -> None:
    with pytest.raises(ApiError) as refused:
        await artist.client.request("POST", "/api/v1/tracks", data={"payload_json": "{}"},
                                    files=[("cover", ("c.png", b"x", "image/png"))])  # fmt: skip
    assert (refused.value.status, refused.value.code) == (400, "missing_file")
    with pytest.raises(ApiError) as refused:
        await artist.client.request("POST", "/api/v1/tracks", json={"title": "x"})
    assert (refused.value.status, refused.value.code) == (400, "multipart_required")
    assert media_files(node) == []


# -- details, tags and cover -------------------------------------------------------------------
async def test_tags_and_embedded_cover_become_the_tracks_details(node, artist, tmp_path) -> None:
    path = encode(tmp_path / "tagged.flac", "flac", 3.0)
    tagged = mutagen.flac.FLAC(path)
    tagged.update({"title": "Night Drive", "artist": "The Cats", "album": "Purr",
                   "genre": "Synthwave", "date": "2024", "tracknumber": "3"})  # fmt: skip
    picture = mutagen.flac.Picture()
    image = tmp_path / "art.jpg"
    Image.new("RGB", (600, 400), (10, 120, 200)).save(image, "JPEG")
    picture.data, picture.type, picture.mime = image.read_bytes(), 3, "image/jpeg"
    tagged.add_picture(picture)
    tagged.save()

    track = await upload(artist.client, path, tags=["Night", "retro wave"])
    assert (track["title"], track["artist"], track["album"]) == ("Night Drive", "The Cats", "Purr")
    assert (track["genre"], track["year"], track["track_number"]) == ("Synthwave", 2024, 3)
    assert track["tags"] == ["night", "retro-wave"]
    assert set(track["cover"]) == {"80", "300", "1000"}
    cover = await artist.client.fetch_media(track["cover"]["300"])
    assert cover.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(cover.content)) as shown:
        assert shown.size == (300, 300)

    edited = await artist.client.update_track(track["id"], title="Night Drive (edit)", year=2025)
    assert (edited["title"], edited["year"], edited["artist"]) == (
        "Night Drive (edit)",
        2025,
        "The Cats",
    )
    with pytest.raises(ApiError) as refused:
        await artist.client.update_track(track["id"], title="  ")
    assert refused.value.status == 400
    found = await artist.client.tracks(q="night", tag="retro-wave")
    assert [t["id"] for t in found] == [track["id"]]


async def test_the_same_audio_twice_is_a_conflict(node, artist, tmp_path) -> None:
    path = encode(tmp_path / "once.flac", "flac", 2.0)
    first = await upload(artist.client, path)
    with pytest.raises(ApiError) as refused:
        await upload(artist.client, path)
    assert (refused.value.status, refused.value.code) == (409, "duplicate_track")
    assert first["id"] in str(refused.value.errors)
    assert await count(node, tracks) == 1


# -- visibility, versions, deletion ------------------------------------------------------------
async def test_visibility_rules_through_the_api(node, artist, make_client, tmp_path) -> None:
    fan = await person(make_client, "fan")
    anonymous = make_client()
    public = await upload(artist.client, encode(tmp_path / "a.flac", "flac", 1.0))
    unlisted = await upload(
        artist.client, encode(tmp_path / "b.flac", "flac", 1.5), visibility="unlisted"
    )
    private = await upload(
        artist.client, encode(tmp_path / "c.flac", "flac", 2.0), visibility="private"
    )
    later = await upload(artist.client, encode(tmp_path / "d.flac", "flac", 2.5),
                         release_at=now_ms() + 3_600_000)  # fmt: skip

    assert (await anonymous.track(public["id"]))["id"] == public["id"]
    for hidden in (unlisted, private, later):
        for viewer in (anonymous, fan.client):
            with pytest.raises(ApiError) as refused:
                await viewer.track(hidden["id"])
            assert (refused.value.status, refused.value.code) == (404, "unknown_track")
    secret = unlisted["secret"]
    assert unlisted["secret_url"].endswith(f"?secret={secret}")
    seen = await anonymous.track(unlisted["id"], secret=secret)
    assert seen["id"] == unlisted["id"]
    # Only the owner is handed the secret link; everyone sees whose track it is.
    assert seen["secret_url"] is None and seen["secret"] is None
    assert seen["owner"] == {"id": artist.id, "username": "artist", "display_name": None}
    await artist.client.share_track(private["id"], fan.id)
    assert (await fan.client.track(private["id"]))["id"] == private["id"]

    listed = {t["id"]: t for t in await anonymous.tracks()}
    assert list(listed) == [public["id"]]
    assert listed[public["id"]]["owner"]["username"] == "artist"
    assert {t["id"] for t in await fan.client.tracks()} == {public["id"], private["id"]}
    assert len(await artist.client.tracks(owner=artist.id)) == 4
    with pytest.raises(ApiError) as refused:
        await fan.client.update_track(public["id"], title="mine now")
    assert refused.value.status == 404


async def test_a_new_version_keeps_the_track_and_replaces_the_audio(node, artist, tmp_path) -> None:
    track = await upload(artist.client, encode(tmp_path / "v1.flac", "flac", 2.0))
    await artist.client.wait_for_track(track["id"])
    replaced = await artist.client.replace_track_audio(
        track["id"], encode(tmp_path / "v2.wav", "wav", 4.0), "v2.wav"
    )
    assert (replaced["id"], replaced["version"], replaced["container"]) == (track["id"], 2, "wav")
    ready = await artist.client.wait_for_track(track["id"])
    assert ready["duration_ms"] == pytest.approx(4000, abs=100)
    assert await count(node, track_files, track_files.c.version == 1) == 0
    assert await count(node, track_files, track_files.c.version == 2) > 0


async def processed(node: RunningNode, client: Client, track_id: str) -> dict[str, Any]:
    """Run the node's pending jobs (its own runner is off) until the track is processed."""
    runner = JobRunner(node.node.job_runner.queue, node.node.job_runner.handlers, poll_s=0.05)
    await runner.start()
    try:
        return await client.wait_for_track(track_id)
    finally:
        await runner.stop()


async def test_the_previous_version_plays_while_a_new_one_is_processed(
    start_node, clients, tmp_path
) -> None:
    node = await start_node(ratelimit={"enabled": False}, jobs_in_serve=False)
    artist = await artist_on(node, clients)
    listener = clients(node.url)
    track = await upload(artist.client, encode(tmp_path / "v1.flac", "flac", 2.0))
    first = await processed(node, artist.client, track["id"])
    assert first["media_version"] == 1
    replaced = await artist.client.replace_track_audio(
        track["id"], encode(tmp_path / "v2.wav", "wav", 7.0), "v2.wav"
    )
    assert (replaced["version"], replaced["state"]) == (2, "processing")
    # Until version 2 is processed, everyone keeps hearing version 1.
    during = await listener.track(track["id"])
    assert during["media_version"] == 1 and during["media"] == first["media"]
    samples, rate = decode((await listener.fetch_media(during["media"]["stream"])).content)
    assert len(samples) / rate == pytest.approx(2.0, abs=0.2)
    report = await listener.request(
        "POST", f"/api/v1/tracks/{track['id']}/plays", json={"listened_seconds": 1.0}
    )
    assert report.status_code == 200

    second = await processed(node, artist.client, track["id"])
    assert second["media_version"] == 2 and second["media"] != first["media"]
    samples, rate = decode((await listener.fetch_media(second["media"]["stream"])).content)
    assert len(samples) / rate == pytest.approx(7.0, abs=0.2)
    assert await count(node, track_files, track_files.c.version == 1) == 0


async def test_deleting_a_track_removes_its_rows_and_files(node, artist, tmp_path) -> None:
    track = await upload(artist.client, encode(tmp_path / "gone.flac", "flac", 2.0))
    await artist.client.wait_for_track(track["id"])
    assert media_files(node)
    await artist.client.delete_track(track["id"])
    assert await count(node, tracks) == 0
    assert await count(node, track_files) == 0
    assert media_files(node) == []
    with pytest.raises(ApiError) as refused:
        await artist.client.track(track["id"])
    assert refused.value.status == 404


async def test_collecting_garbage_keeps_every_file_a_track_names(node, artist, tmp_path) -> None:
    track = await upload(artist.client, encode(tmp_path / "kept.flac", "flac", 2.0))
    ready = await artist.client.wait_for_track(track["id"])
    before = sorted(media_files(node))
    assert await node.node.blobs.collect_garbage(node.node.db, grace_seconds=0) == 0
    assert sorted(media_files(node)) == before
    assert (await artist.client.fetch_media(ready["media"]["stream"])).content


async def test_a_job_that_failed_for_good_marks_its_track_failed(
    start_node, clients, tmp_path
) -> None:
    node = await start_node(ratelimit={"enabled": False}, jobs_in_serve=False)
    artist = await artist_on(node, clients)
    track = await upload(artist.client, encode(tmp_path / "doomed.flac", "flac", 1.0))
    queue = node.node.jobs
    job = await queue.claim("test", ["audio.process"], 60_000)
    assert job is not None and job.subject == f"track:{track['id']}"
    await queue.fail(job, "decoder exploded", retry=False)
    shown = await artist.client.track(track["id"])  # from the job, before any sweep
    assert (shown["state"], shown["error"]) == ("failed", "decoder exploded")
    assert await node.node.tracks.settle_failed() == 1
    await queue.prune(now_ms() + 1)  # the job is gone; the track still says why
    shown = await artist.client.track(track["id"])
    assert (shown["state"], shown["error"]) == ("failed", "decoder exploded")
    assert shown["processing"] is None


async def test_a_broken_embedded_picture_costs_the_cover_not_the_upload(
    node, artist, tmp_path
) -> None:
    path = encode(tmp_path / "odd.flac", "flac", 1.0)
    tagged = mutagen.flac.FLAC(path)
    picture = mutagen.flac.Picture()
    picture.data, picture.type, picture.mime = b"\xff\xd8 not really a jpeg", 3, "image/jpeg"
    tagged.add_picture(picture)
    tagged.save()
    track = await upload(artist.client, path)
    assert track["cover"] is None
    with pytest.raises(ApiError) as refused:  # an uploaded cover that is no image is refused
        await artist.client.upload_track(
            encode(tmp_path / "other.flac", "flac", 1.5), "other.flac", cover=b"not an image"
        )
    assert (refused.value.status, refused.value.code) == (400, "invalid_image")
    assert await count(node, tracks) == 1


# -- downloads --------------------------------------------------------------------------------
async def test_downloads_follow_the_owners_choice(node, artist, make_client, tmp_path) -> None:
    fan = await person(make_client, "fan")
    source = encode(tmp_path / "take.flac", "flac", 3.0)
    closed = await upload(artist.client, source, title="Take One")
    path = f"/api/v1/tracks/{closed['id']}/download"
    with pytest.raises(ApiError) as refused:
        await fan.client.request("GET", path)
    assert (refused.value.status, refused.value.code) == (403, "download_not_allowed")

    original = await artist.client.request("GET", path)  # the owner always may
    assert original.content == source.read_bytes()  # lossless: the very upload
    assert original.headers["content-type"] == "audio/flac"
    assert original.headers["content-disposition"] == "attachment; filename*=utf-8''Take%20One.flac"

    await artist.client.update_track(closed["id"], downloadable=True)
    mp3 = await fan.client.request("GET", path, params={"format": "mp3"})
    assert mp3.headers["content-type"] == "audio/mpeg"
    samples, rate = decode(mp3.content)
    assert abs(len(samples) / rate - 3.0) < 0.1 and float(np.sqrt(np.mean(samples**2))) > 0.01
    made = await count(node, track_files, track_files.c.name == "download.mp3")
    again = await fan.client.request("GET", path, params={"format": "mp3"})
    assert again.content == mp3.content  # made once, then served from the store
    assert made == 1 and await count(node, track_files, track_files.c.name == "download.mp3") == 1
    with pytest.raises(ApiError) as refused:
        await fan.client.request("GET", path, params={"format": "wma"})
    assert refused.value.status == 400
