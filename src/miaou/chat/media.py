"""What an uploaded file is: its type from its bytes, and for images their size and a thumbnail.

The client's filename and part ``Content-Type`` are never trusted for the type: the bytes are
sniffed (puremagic), and an image type is only believed once Pillow has decoded the image
into a thumbnail. Pillow runs in a worker thread, at most ``_DECODERS`` at a time, because
decoding is CPU work and a large image takes hundreds of megabytes while it is decoded.
"""

from __future__ import annotations

import asyncio
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import puremagic
from PIL import Image, ImageOps, UnidentifiedImageError

from miaou import ids
from miaou.errors import InvalidInput
from miaou.storage.blobs import BlobStore

OCTET_STREAM = "application/octet-stream"
# Types Pillow verifies, measures and thumbnails; the only image types served inline.
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
THUMBNAIL_MAX = 400
# Below Pillow's own bomb threshold (89 MP): a 48 MP phone photo passes, and decoding the
# largest accepted image as RGBA costs about 200 MB.
MAX_IMAGE_PIXELS = 50_000_000
FILENAME_MAX_BYTES = 255
# The route .../attachments/{id}/thumbnail would shadow a file of this exact name.
_RESERVED_NAMES = {"thumbnail": "thumbnail_"}
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_TEXT_SAMPLE = 8192
_DECODERS = 2


@dataclass(frozen=True)
class StoredFile:
    """An uploaded file in the blob store, ready to become an attachment row."""

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    thumbnail_sha256: str | None = None


def clean_filename(raw: str | None) -> str:
    """Basename only, no control characters, at most 255 UTF-8 bytes (the extension kept)."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    name = _RESERVED_NAMES.get(name, name) or "file"
    encoded = name.encode()
    if len(encoded) <= FILENAME_MAX_BYTES:
        return name
    _stem, dot, ext = name.rpartition(".")
    suffix = (dot + ext).encode() if dot and len(ext.encode()) <= 16 else b""
    head = encoded[: FILENAME_MAX_BYTES - len(suffix)].decode(errors="ignore")
    return head + suffix.decode()


def sniff(path: Path) -> str:
    """The content type of a stored file from its bytes; ``text/plain`` for UTF-8 text."""
    try:
        found = puremagic.magic_file(path)
    except (ValueError, puremagic.PureError):  # empty, or nothing matched
        found = []
    for match in found:
        mime = (match.mime_type or "").lower()
        if _MIME.fullmatch(mime) and len(mime) <= 127:
            return mime
    with path.open("rb") as file:
        sample = file.read(_TEXT_SAMPLE)
    return "text/plain" if sample and _is_text(sample) else OCTET_STREAM


def _is_text(sample: bytes) -> bool:
    try:
        text = sample.decode()
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample's end is still text.
        if exc.start < len(sample) - 3:
            return False
        text = sample[: exc.start].decode()
    return not any(ord(c) < 32 and c not in "\t\n\r\f" for c in text)


def _invalid_image(problem: str, code: str = "invalid_image") -> InvalidInput:
    return InvalidInput(f"Invalid image: {problem}.", code=code, errors={"files": [problem]})


@dataclass(frozen=True)
class _Image:
    width: int
    height: int
    thumbnail: bytes


def _inspect_image(path: Path, pillow_format: str) -> _Image:
    """Measure and thumbnail an image; refuses bombs and images Pillow cannot decode."""
    try:
        with Image.open(path, formats=[pillow_format]) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise _invalid_image(f"more than {MAX_IMAGE_PIXELS} pixels", "image_too_large")
            if image.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated a quarter turn
                width, height = height, width
            # Decodes the (first frame of the) whole image: a truncated file fails here.
            image.thumbnail((THUMBNAIL_MAX, THUMBNAIL_MAX))
            thumb = ImageOps.exif_transpose(image)
            has_alpha = "A" in thumb.mode or "transparency" in thumb.info
            thumb = thumb.convert("RGBA" if has_alpha else "RGB")
            out = io.BytesIO()
            thumb.save(out, "WEBP", quality=80)
    except Image.DecompressionBombError:
        raise _invalid_image("too many pixels (decompression bomb)", "image_too_large") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        # Pillow reports corrupt data with any of these.
        raise _invalid_image("the file could not be decoded") from None
    return _Image(width, height, out.getvalue())


class MediaInspector:
    """Turns stored blobs into described files; owns the limit on concurrent decoders."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        # Made here, not at import: a semaphore binds to the event loop that first waits.
        self._decoders = asyncio.Semaphore(_DECODERS)

    async def describe(self, filename: str | None, sha256: str, size: int) -> StoredFile:
        """Sniff a stored blob; images also get their dimensions and a thumbnail blob."""
        path = self.store.path(sha256)
        content_type = await asyncio.to_thread(sniff, path)
        name = clean_filename(filename)
        if content_type not in IMAGE_TYPES:
            return StoredFile(ids.new_id(), name, content_type, size, sha256)
        async with self._decoders:
            image = await asyncio.to_thread(_inspect_image, path, IMAGE_TYPES[content_type])
        thumbnail = await self.store.put_bytes(image.thumbnail)
        return StoredFile(
            ids.new_id(), name, content_type, size, sha256, image.width, image.height, thumbnail
        )
