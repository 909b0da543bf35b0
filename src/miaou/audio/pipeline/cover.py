"""A track's artwork in the three square sizes the clients show: 80, 300 and 1000 px JPEGs.

The image is turned upright (EXIF orientation), cropped to its centre square and scaled
down, never up: a 500 px source gives 80, 300 and 500 px images, since enlarging only adds
bytes. The pixel count is checked before decoding (an image whose header promises a
gigapixel is refused without allocating it), and anything Pillow cannot decode is refused
with the same ``invalid_image`` code, as chat attachments are.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from miaou.errors import InvalidInput

SIZES = (80, 300, 1000)
FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "BMP"]
# As for chat attachments (miaou.chat.media): a 48 MP phone photo passes.
MAX_IMAGE_PIXELS = 50_000_000
JPEG_QUALITY = 85


def cover_sizes(image: bytes) -> dict[int, bytes]:
    """``{80: jpeg, 300: jpeg, 1000: jpeg}`` from an image; raises ``invalid_image``."""
    try:
        with Image.open(io.BytesIO(image), formats=FORMATS) as source:
            width, height = source.size
            if width * height > MAX_IMAGE_PIXELS:
                raise _invalid(f"more than {MAX_IMAGE_PIXELS} pixels")
            largest = min(max(SIZES), width, height)
            # JPEG can decode at 1/2, 1/4, 1/8 scale: far cheaper for a big photo.
            scale = largest / min(width, height)
            source.draft("RGB", (round(width * scale), round(height * scale)))
            upright = _flatten(ImageOps.exif_transpose(source))
    except Image.DecompressionBombError:
        raise _invalid("too many pixels (decompression bomb)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        # Pillow reports corrupt or truncated data with any of these.
        raise _invalid("the image could not be decoded") from None
    side = min(upright.size)
    left, top = (upright.width - side) // 2, (upright.height - side) // 2
    square = upright.crop((left, top, left + side, top + side))
    sizes: dict[int, bytes] = {}
    for size in sorted(SIZES, reverse=True):
        # Each size from the one above it: a cheaper reduction, and the same sharpness.
        square = square.resize((min(size, side),) * 2, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        square.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        sizes[size] = out.getvalue()
    return dict(sorted(sizes.items()))


def _flatten(image: Image.Image) -> Image.Image:
    """RGB; transparency composited over white (JPEG has none, and black shows worst)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _invalid(problem: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid image: {problem}.", code="invalid_image", errors={"cover": [problem]}
    )
