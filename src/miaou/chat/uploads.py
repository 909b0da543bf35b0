"""Reading a ``multipart/form-data`` message send from the raw ASGI stream, to disk.

Litestar's own form parsing spools every file to a temporary file outside the media store
and parses the whole body before the handler runs, with one size limit for the whole
route. Here the body is pushed through ``multipart``'s streaming parser as it arrives:
file parts go straight into the blob store (each under ``max_attachment_bytes``, checked
while streaming), ``payload_json`` is kept in memory under ``max_body_bytes``, and the whole
request under ``max_upload_request_bytes``. Memory stays bounded by the parser's buffer and
the writer's flush size, whatever the upload's size.

Parts, as Discord takes them: ``payload_json`` (the JSON of a send) and ``files[N]``, at most
ten files. Anything else is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

from miaou.chat.media import MediaInspector, StoredFile
from miaou.config import MAX_ATTACHMENTS, Settings
from miaou.errors import InvalidInput, PayloadTooLarge
from miaou.http.body import FormPart, Receive, body_chunks, drain

_FILE_PART = re.compile(r"files\[(\d{1,20})\]")
PAYLOAD_PART = "payload_json"


def too_many_files() -> InvalidInput:
    return InvalidInput(
        f"A message may carry at most {MAX_ATTACHMENTS} attachments.",
        code="max_attachments",
        errors={"files": [f"at most {MAX_ATTACHMENTS} files"]},
    )


def _bad_form(problem: str, part: str = "body") -> InvalidInput:
    return InvalidInput(f"Invalid multipart body: {problem}.", errors={part: [problem]})


@dataclass
class Upload:
    payload: bytes | None = None
    files: list[StoredFile] = field(default_factory=list)


class UploadReader:
    """One multipart send being read. ``held`` lists every blob hash it put in the store
    and holds; the caller releases them (``BlobStore.discard``) whatever happens."""

    def __init__(self, inspector: MediaInspector, settings: Settings) -> None:
        self.inspector = inspector
        self.store = inspector.store
        self.max_file = settings.max_attachment_bytes
        self.max_request = settings.max_upload_request_bytes
        self.max_field = settings.max_body_bytes
        self.held: list[str] = []

    async def read(self, receive: Receive, boundary: str, content_length: int | None) -> Upload:
        if content_length is not None and content_length > self.max_request:
            raise self._too_large()
        stored: list[tuple[str | None, str, int]] = []  # (client filename, sha256, size)
        upload = Upload()
        part: FormPart | None = None
        stream = body_chunks(receive, self.max_request, self._too_large)
        try:
            with PushMultipartParser(boundary, max_segment_count=MAX_ATTACHMENTS + 4) as parser:
                async for chunk in stream:
                    for event in parser.parse(chunk):
                        if isinstance(event, MultipartSegment):
                            part = self._start(event, upload, len(stored))
                        elif event and part is not None:
                            await self._feed(part, event)
                        elif part is not None:  # end of the part
                            await self._end(part, upload, stored)
                            part = None
        except (PayloadTooLarge, InvalidInput):
            if part is not None and part.writer is not None:
                part.writer.abort()
            await drain(stream)
            raise
        except ParserLimitReached as exc:
            raise _bad_form(str(exc) or "a limit was reached") from None
        except ParserError as exc:
            raise _bad_form(str(exc) or "malformed") from None
        finally:
            if part is not None and part.writer is not None:
                part.writer.abort()
        for filename, sha256, size in stored:
            described = await self.inspector.describe(filename, sha256, size)
            if described.thumbnail_sha256:
                self.held.append(described.thumbnail_sha256)
            upload.files.append(described)
        return upload

    def _start(self, segment: MultipartSegment, upload: Upload, files: int) -> FormPart:
        name = segment.name or ""
        if name == PAYLOAD_PART:
            if upload.payload is not None:
                raise _bad_form("payload_json given twice", PAYLOAD_PART)
            return FormPart(name)
        if not _FILE_PART.fullmatch(name):
            raise _bad_form("is not a known part (payload_json, files[N])", name or "body")
        if files >= MAX_ATTACHMENTS:
            raise too_many_files()
        return FormPart(name, segment.filename, self.store.writer(self.max_file))

    async def _feed(self, part: FormPart, data: bytes) -> None:
        if part.writer is not None:
            await part.writer.write(data)
            return
        if len(part.data) + len(data) > self.max_field:
            raise PayloadTooLarge(
                f"payload_json may be at most {self.max_field} bytes.",
                errors={PAYLOAD_PART: [f"must be at most {self.max_field} bytes"]},
            )
        part.data += data

    async def _end(
        self, part: FormPart, upload: Upload, stored: list[tuple[str | None, str, int]]
    ) -> None:
        if part.writer is None:
            upload.payload = bytes(part.data)
            return
        writer, part.writer = part.writer, None
        sha256 = await writer.finish()
        self.held.append(sha256)
        stored.append((part.filename, sha256, writer.size))

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"A message with attachments may be at most {self.max_request} bytes.",
            errors={"files": [f"at most {MAX_ATTACHMENTS} files of {self.max_file} bytes"]},
        )
