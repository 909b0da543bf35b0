"""SDK calls for tracks: upload, read, list, edit, share, play, and waiting for processing.

Answers are the node's JSON as dicts (ids are strings). Media URLs in a track (``media``)
are paths on the node; :meth:`TrackCalls.fetch_media` reads one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import IO, Any

import httpx
import msgspec

JSON = dict[str, Any]
Audio = str | os.PathLike[str] | bytes | IO[bytes]


class TrackCalls:
    """Mixed into :class:`miaou.sdk.Client`."""

    async def request(
        self, method: str, path: str, *, json: Any = None,
        params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
        content: bytes | None = None, data: dict[str, str] | None = None,
        files: list[tuple[str, Any]] | None = None,
    ) -> httpx.Response:  # fmt: skip
        raise NotImplementedError  # provided by Client

    async def upload_track(
        self,
        audio: Audio,
        filename: str = "track",
        *,
        cover: bytes | None = None,
        **details: Any,
    ) -> JSON:
        """Upload ``audio`` (a path, streamed from disk, or bytes); ``details`` are the
        track's fields (title, description, genre, tags, visibility, release_at,
        downloadable)."""
        return await self._send_audio("POST", "/api/v1/tracks", audio, filename, cover, details)

    async def replace_track_audio(
        self, track_id: str, audio: Audio, filename: str = "track"
    ) -> JSON:
        return await self._send_audio(
            "PUT", f"/api/v1/tracks/{track_id}/audio", audio, filename, None, {}
        )

    async def _send_audio(
        self, method: str, path: str, audio: Audio, filename: str, cover: bytes | None,
        details: JSON,
    ) -> JSON:  # fmt: skip
        with contextlib.ExitStack() as opened:
            if isinstance(audio, (str, os.PathLike)):
                # Streamed from disk by httpx rather than read whole.
                audio = opened.enter_context(Path(audio).open("rb"))  # noqa: ASYNC230
            files: list[tuple[str, Any]] = [("file", (filename, audio, "application/octet-stream"))]
            if cover is not None:
                files.append(("cover", ("cover", cover, "application/octet-stream")))
            data = {"payload_json": msgspec.json.encode(details).decode()} if details else None
            response = await self.request(method, path, data=data, files=files)
        result: JSON = response.json()
        return result

    async def track(self, track_id: str, *, secret: str | None = None) -> JSON:
        params = {"secret": secret} if secret else None
        result: JSON = (
            await self.request("GET", f"/api/v1/tracks/{track_id}", params=params)
        ).json()
        return result

    async def tracks(self, **filters: Any) -> list[JSON]:
        params = {k: v for k, v in filters.items() if v is not None}
        result: list[JSON] = (await self.request("GET", "/api/v1/tracks", params=params)).json()
        return result

    async def update_track(self, track_id: str, **changes: Any) -> JSON:
        response = await self.request("PATCH", f"/api/v1/tracks/{track_id}", json=changes)
        result: JSON = response.json()
        return result

    async def track_usage(self) -> JSON:
        """My tracks and the bytes of their originals, and the node's limits (null: none)."""
        result: JSON = (await self.request("GET", "/api/v1/users/@me/track-usage")).json()
        return result

    async def delete_track(self, track_id: str) -> None:
        await self.request("DELETE", f"/api/v1/tracks/{track_id}")

    async def share_track(self, track_id: str, user_id: str) -> None:
        await self.request("PUT", f"/api/v1/tracks/{track_id}/shares/{user_id}")

    async def unshare_track(self, track_id: str, user_id: str) -> None:
        await self.request("DELETE", f"/api/v1/tracks/{track_id}/shares/{user_id}")

    async def wait_for_track(self, track_id: str, *, within: float = 120.0) -> JSON:
        """Poll until the track is ``ready`` (returned) or ``failed`` (raises RuntimeError
        with the recorded error); TimeoutError after ``within`` seconds."""
        deadline = time.monotonic() + within
        delay = 0.05
        while True:
            track = await self.track(track_id)
            if track["state"] == "ready":
                return track
            if track["state"] == "failed":
                raise RuntimeError(f"track {track_id} failed: {track.get('error')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"track {track_id} still {track['state']} after {within} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def fetch_media(
        self, url: str, *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """GET a media URL from a track (``media.hls``, ...), or one relative to it."""
        return await self.request("GET", url, headers=headers)
