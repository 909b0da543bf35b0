"""REST routes for tracks: upload, read, list, edit, replace the audio, cover, share, delete.

Reading is open to anonymous callers for what the visibility rules let anyone see (public
released tracks; unlisted ones with ``?secret=``); a bearer token adds the caller's own and
shared tracks. Playback routes live in ``playback.py``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from miaou.audio import quota
from miaou.audio.models import Track, TrackCreate, TrackUpdate
from miaou.audio.service import TrackService
from miaou.audio.track_store import COVER_SIZES, LIST_LIMIT_MAX, unknown_track, visible_track
from miaou.audio.upload import PAYLOAD_PART, TrackUpload, TrackUploadReader
from miaou.errors import InvalidInput
from miaou.http.auth import node_of, optional_user, principal
from miaou.http.params import AnyRequest, Who, path_id, query_id
from miaou.http.ranges import stored_file


def _tracks(request: AnyRequest) -> TrackService:
    return node_of(request).tracks


def _boundary(request: AnyRequest) -> str:
    media_type, options = request.content_type
    if media_type.lower() != "multipart/form-data" or not options.get("boundary"):
        raise InvalidInput(
            "Send the track as multipart/form-data (parts: file, cover, payload_json).",
            code="multipart_required",
        )
    return options["boundary"]


async def _read_upload(request: AnyRequest) -> TrackUpload:
    """Read the form into the blob store; on a refusal its blobs are discarded here."""
    node = node_of(request)
    reader = TrackUploadReader(
        node.blobs, max_audio=node.settings.max_track_bytes, max_field=node.settings.max_body_bytes
    )
    try:
        return await reader.read(request.receive, _boundary(request), request.content_length)
    except BaseException:
        await node.blobs.discard(node.db, reader.upload.held)
        raise


def _payload(raw: bytes | None) -> TrackCreate:
    if raw is None:
        return TrackCreate()
    try:
        return msgspec.json.decode(raw, type=TrackCreate)
    except msgspec.ValidationError as exc:
        raise InvalidInput(
            f"Invalid payload_json: {exc}.", errors={PAYLOAD_PART: [str(exc)]}
        ) from None
    except msgspec.DecodeError:
        raise InvalidInput(
            "payload_json is not valid JSON.", errors={PAYLOAD_PART: ["is not valid JSON"]}
        ) from None


class TracksController(Controller):
    path = "/api/v1/tracks"
    tags = ["tracks"]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        dependencies={"who": principal},
        summary="Upload a track (multipart: file, optional cover and payload_json)",
    )
    async def upload(self, request: AnyRequest, who: Who) -> Track:
        """MP3, WAV, FLAC, AIFF, OGG Vorbis/Opus or M4A (AAC/ALAC), recognised from the
        bytes, at most `max_track_bytes` (413) and `max_track_seconds` long (400
        `audio_too_long`); corrupt or truncated files: 400 `invalid_audio`; anything else
        400 `unsupported_audio`. The answer is the track with `state` `processing`; it
        becomes `ready` (playable) when its job is done: poll it (`processing.progress`).
        The same audio uploaded twice by one user: 409 `duplicate_track`. Past the
        uploader's quota (`GET /users/@me/track-usage`): 403 `track_limit_reached` or
        `storage_quota_exceeded`, before the body is read when already at a limit."""
        node = node_of(request)
        quota.refuse_if_over(await node.tracks.usage(who.user_id), adding_tracks=1, adding_bytes=1)
        upload = await _read_upload(request)
        try:
            body = _payload(upload.payload)
            return await node.tracks.create(who.user_id, upload, body)
        finally:
            await node.blobs.discard(node.db, upload.held)

    @get("/", summary="Tracks, newest first: public ones, plus your own and those shared with you")
    async def listing(
        self,
        request: AnyRequest,
        owner: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
        genre: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
        before: FromQuery[str | None] = None,
        limit: FromQuery[int] = 50,
    ) -> list[Track]:
        """`q` matches words of the title, artist, genre and tags; `before` a track id
        (pagination); `limit` 1 to 100."""
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise InvalidInput(
                "Invalid limit.", errors={"limit": [f"must be in 1..{LIST_LIMIT_MAX}"]}
            )
        if q is not None and len(q) > 200:
            raise InvalidInput("Invalid q.", errors={"q": ["must be at most 200 characters"]})
        viewer = await optional_user(request)
        return await _tracks(request).listing(
            viewer,
            owner_id=query_id(owner, "owner"),
            query=q,
            genre=genre,
            tag=tag,
            before=query_id(before, "before"),
            limit=limit,
        )

    @get("/{track_id:str}", summary="One track (anyone it is visible to; unlisted: ?secret=)")
    async def read(
        self, request: AnyRequest, track_id: FromPath[str], secret: FromQuery[str | None] = None
    ) -> Track:
        viewer = await optional_user(request)
        return await _tracks(request).get(viewer, path_id(track_id, "track"), secret)

    @patch("/{track_id:str}", dependencies={"who": principal}, summary="Edit my track's details")
    async def edit(
        self, request: AnyRequest, who: Who, track_id: FromPath[str], data: JSONBody[TrackUpdate]
    ) -> Track:
        return await _tracks(request).update(who.user_id, path_id(track_id, "track"), data)

    @put(
        "/{track_id:str}/audio",
        dependencies={"who": principal},
        summary="Replace my track's audio (a new version; id, counts and details stay)",
    )
    async def replace(self, request: AnyRequest, who: Who, track_id: FromPath[str]) -> Track:
        node = node_of(request)
        track = path_id(track_id, "track")
        upload = await _read_upload(request)
        try:
            return await node.tracks.replace_audio(who.user_id, track, upload)
        finally:
            await node.blobs.discard(node.db, upload.held)

    @put(
        "/{track_id:str}/cover",
        dependencies={"who": principal},
        summary="Set my track's cover (the image as the body; PNG, JPEG, GIF or WEBP)",
        request_max_body_size=10 * 1_048_576,
    )
    async def set_cover(self, request: AnyRequest, who: Who, track_id: FromPath[str]) -> Track:
        image = await request.body()
        if not image:
            raise InvalidInput("Send the image as the request body.", code="missing_file")
        return await _tracks(request).set_cover(who.user_id, path_id(track_id, "track"), image)

    @get("/{track_id:str}/cover/{size:int}", summary="A track's cover, 80, 300 or 1000 px JPEG")
    async def cover(
        self,
        request: AnyRequest,
        track_id: FromPath[str],
        size: FromPath[int],
        secret: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """Visible like the track (a private track's cover needs the owner's or a shared
        user's token)."""
        node = node_of(request)
        viewer = await optional_user(request)
        async with node.db.read() as conn:
            row = await visible_track(
                conn, path_id(track_id, "track"), viewer, node.tracks.clock(), secret
            )
        sha256 = getattr(row, f"cover_{size}", None) if size in COVER_SIZES else None
        if sha256 is None:
            raise unknown_track()
        return stored_file(
            request,
            node.blobs.path(sha256),
            media_type="image/jpeg",
            filename=f"cover-{size}.jpg",
            disposition="inline",
            etag=sha256,
            cache_control="public, max-age=31536000, immutable"
            if row.visibility == "public"
            else "private, max-age=3600",
            missing=unknown_track(),
        )

    @delete(
        "/{track_id:str}",
        dependencies={"who": principal},
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete my track and its files",
    )
    async def remove(self, request: AnyRequest, who: Who, track_id: FromPath[str]) -> None:
        await _tracks(request).delete(who.user_id, path_id(track_id, "track"))

    @get(
        "/{track_id:str}/shares",
        dependencies={"who": principal},
        summary="Who my private track is shared with (user ids)",
    )
    async def shares(self, request: AnyRequest, who: Who, track_id: FromPath[str]) -> list[str]:
        return await _tracks(request).shares.user_ids(who.user_id, path_id(track_id, "track"))

    @put(
        "/{track_id:str}/shares/{user_id:str}",
        dependencies={"who": principal},
        status_code=HTTP_204_NO_CONTENT,
        summary="Share my track with a user",
    )
    async def share(
        self, request: AnyRequest, who: Who, track_id: FromPath[str], user_id: FromPath[str]
    ) -> None:
        await _tracks(request).shares.add(
            who.user_id, path_id(track_id, "track"), path_id(user_id, "user")
        )

    @delete(
        "/{track_id:str}/shares/{user_id:str}",
        dependencies={"who": principal},
        status_code=HTTP_204_NO_CONTENT,
        summary="Stop sharing my track with a user",
    )
    async def unshare(
        self, request: AnyRequest, who: Who, track_id: FromPath[str], user_id: FromPath[str]
    ) -> None:
        await _tracks(request).shares.remove(
            who.user_id, path_id(track_id, "track"), path_id(user_id, "user")
        )


class TrackUsageController(Controller):
    path = "/api/v1/users/@me/track-usage"
    tags = ["tracks"]

    @get("/", dependencies={"who": principal}, summary="My tracks and storage, and my limits")
    async def usage(self, request: AnyRequest, who: Who) -> quota.TrackUsage:
        return await _tracks(request).usage(who.user_id)


routes = [TracksController, TrackUsageController]
