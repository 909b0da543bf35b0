"""Reading a track upload (``multipart/form-data``) from the raw ASGI stream, to disk.

Parts: ``file`` (the audio, required, at most ``max_track_bytes``), ``cover`` (an image,
optional, at most ``COVER_MAX_BYTES``) and ``payload_json`` (the JSON of a
:class:`~miaou.audio.models.TrackCreate`, optional, at most ``max_body_bytes``). The body
goes through ``multipart``'s streaming parser as it arrives: the audio streams straight into
the blob store (hashed on the way), so a 500 MB upload never sits in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

from miaou.errors import InvalidInput, PayloadTooLarge
from miaou.http.body import FormPart, Receive, body_chunks, drain
from miaou.storage.blobs import BlobStore

COVER_MAX_BYTES = 10 * 1_048_576
FILE_PART, COVER_PART, PAYLOAD_PART = "file", "cover", "payload_json"
_FRAMING = 1_048_576  # multipart headers and boundaries, on top of the parts' own caps


def _bad_form(problem: str, part: str = "body") -> InvalidInput:
    return InvalidInput(f"Invalid multipart body: {problem}.", errors={part: [problem]})


@dataclass
class StoredUpload:
    """The audio's blob (held: the caller releases or discards it), its size and name."""

    sha256: str
    size: int
    filename: str | None


@dataclass
class TrackUpload:
    audio: StoredUpload | None = None
    cover: bytes | None = None
    payload: bytes | None = None
    held: list[str] = field(default_factory=list)


class TrackUploadReader:
    def __init__(self, store: BlobStore, *, max_audio: int, max_field: int) -> None:
        self.store = store
        self.max_audio = max_audio
        self.max_field = max_field
        self.max_request = max_audio + COVER_MAX_BYTES + max_field + _FRAMING
        self.upload = TrackUpload()

    async def read(
        self, receive: Receive, boundary: str, content_length: int | None
    ) -> TrackUpload:
        """Read the whole body; on failure the blobs already stored stay in ``upload.held``
        for the caller to discard."""
        if content_length is not None and content_length > self.max_request:
            raise self._too_large()
        part: FormPart | None = None
        stream = body_chunks(receive, self.max_request, self._too_large)
        try:
            with PushMultipartParser(boundary, max_segment_count=8) as parser:
                async for chunk in stream:
                    for event in parser.parse(chunk):
                        if isinstance(event, MultipartSegment):
                            part = self._start(event)
                        elif event and part is not None:
                            await self._feed(part, event)
                        elif part is not None:
                            await self._end(part)
                            part = None
        except (PayloadTooLarge, InvalidInput):
            await drain(stream)
            raise
        except ParserLimitReached as exc:
            raise _bad_form(str(exc) or "a limit was reached") from None
        except ParserError as exc:
            raise _bad_form(str(exc) or "malformed") from None
        finally:
            if part is not None and part.writer is not None:
                part.writer.abort()
        if self.upload.audio is None:
            raise InvalidInput(
                "An upload needs the audio in a part named 'file'.",
                code="missing_file",
                errors={FILE_PART: ["is required"]},
            )
        return self.upload

    def _start(self, segment: MultipartSegment) -> FormPart:
        name = segment.name or ""
        upload = self.upload
        seen = {FILE_PART: upload.audio, COVER_PART: upload.cover, PAYLOAD_PART: upload.payload}
        if name not in seen:
            raise _bad_form("is not a known part (file, cover, payload_json)", name or "body")
        if seen[name] is not None:
            raise _bad_form(f"{name} given twice", name)
        if name == FILE_PART:
            return FormPart(
                name, segment.filename, self.store.writer(self.max_audio, part=FILE_PART)
            )
        limit = COVER_MAX_BYTES if name == COVER_PART else self.max_field
        return FormPart(name, segment.filename, limit=limit)

    async def _feed(self, part: FormPart, data: bytes) -> None:
        if part.writer is not None:
            await part.writer.write(data)
            return
        if len(part.data) + len(data) > part.limit:
            raise PayloadTooLarge(
                f"{part.name} may be at most {part.limit} bytes.",
                errors={part.name: [f"must be at most {part.limit} bytes"]},
            )
        part.data += data

    async def _end(self, part: FormPart) -> None:
        if part.writer is None:
            if part.name == COVER_PART:
                self.upload.cover = bytes(part.data)
            else:
                self.upload.payload = bytes(part.data)
            return
        writer, part.writer = part.writer, None
        sha256 = await writer.finish()
        self.upload.held.append(sha256)
        self.upload.audio = StoredUpload(sha256, writer.size, part.filename)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"A track upload may be at most {self.max_audio} bytes of audio.",
            errors={FILE_PART: [f"must be at most {self.max_audio} bytes"]},
        )
