"""An emoji's image: the data URI Discord's API takes, the type from the bytes, a decode.

The type the URI claims is not trusted: the bytes are sniffed (puremagic) and must be PNG,
JPEG, GIF or WEBP, then Pillow decodes the first frame (call :func:`inspect_image` in a
worker thread: it is CPU work). More than one frame (GIF, WEBP, APNG) makes it animated.
"""

from __future__ import annotations

import base64
import binascii
import io

import puremagic
from PIL import Image, UnidentifiedImageError

from miaou.chat.media import IMAGE_TYPES
from miaou.errors import InvalidInput

MAX_IMAGE_BYTES = 256 * 1024
MAX_SIDE = 4096
DECODERS = 2  # images decoded at once by a node
_MAX_BASE64 = 4 * -(-MAX_IMAGE_BYTES // 3)


def _invalid_image(problem: str, code: str = "invalid_image") -> InvalidInput:
    return InvalidInput(f"Invalid emoji image: {problem}.", code=code, errors={"image": [problem]})


def decode_data_uri(raw: str) -> bytes:
    """The bytes of ``data:<type>;base64,<data>``; the claimed type is not looked at."""
    head, comma, payload = raw.partition(",")
    if not comma or not head.startswith("data:") or not head.endswith(";base64"):
        raise _invalid_image("must be a data URI such as data:image/png;base64,...")
    if len(payload) > _MAX_BASE64:
        raise _invalid_image(f"at most {MAX_IMAGE_BYTES // 1024} KiB", "image_too_large")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid_image("the data URI is not valid base64") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise _invalid_image(f"at most {MAX_IMAGE_BYTES // 1024} KiB", "image_too_large")
    if not data:
        raise _invalid_image("the image is empty")
    return data


def sniff_image(data: bytes) -> str:
    """The image type from the bytes, if it is one an emoji may have."""
    try:
        found = puremagic.magic_string(data)
    except (ValueError, puremagic.PureError):
        found = []
    mime = next((m.mime_type.lower() for m in found if m.mime_type), "")
    if mime not in IMAGE_TYPES:
        raise _invalid_image("must be a PNG, JPEG, GIF or WEBP image")
    return mime


def inspect_image(data: bytes, content_type: str) -> bool:
    """Decode the image (its first frame) with Pillow; whether it is animated."""
    try:
        with Image.open(io.BytesIO(data), formats=[IMAGE_TYPES[content_type]]) as image:
            width, height = image.size
            if width > MAX_SIDE or height > MAX_SIDE:
                raise _invalid_image(f"at most {MAX_SIDE} pixels a side", "image_too_large")
            image.load()
            return bool(getattr(image, "is_animated", False))
    except Image.DecompressionBombError:
        raise _invalid_image("too many pixels", "image_too_large") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise _invalid_image("the image could not be decoded") from None
