"""cover_sizes(): upright, centre-cropped, never enlarged JPEGs; bombs and junk refused."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from miaou.audio.pipeline.cover import cover_sizes
from miaou.errors import InvalidInput

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def opened(blob: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(blob))
    assert image.format == "JPEG"
    return image.convert("RGB")


def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel, colour, strict=False))


def test_three_squares_from_the_centre() -> None:
    # 1500 x 1100: red side bands that a centre square of 1100 leaves out, green inside.
    image = Image.new("RGB", (1500, 1100), RED)
    image.paste(GREEN, (200, 0, 1300, 1100))
    sizes = cover_sizes(encode(image, "JPEG", quality=95))
    assert sorted(sizes) == [80, 300, 1000]
    for size, blob in sizes.items():
        square = opened(blob)
        assert square.size == (size, size)
        for x in (1, size // 2, size - 2):
            assert near(square.getpixel((x, size // 2)), GREEN), (size, x)


def test_never_enlarged_and_transparency_on_white() -> None:
    image = Image.new("RGBA", (200, 150), (0, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 200, 75))  # top half opaque blue
    sizes = cover_sizes(encode(image, "PNG"))
    assert {size: opened(blob).size for size, blob in sizes.items()} == {
        80: (80, 80),
        300: (150, 150),
        1000: (150, 150),
    }
    square = opened(sizes[1000])
    assert near(square.getpixel((75, 10)), BLUE)
    assert near(square.getpixel((75, 140)), (255, 255, 255))  # transparent became white


def test_exif_orientation_is_applied() -> None:
    # Stored 400 x 200, left half red, right half blue, tagged "rotate 90 degrees clockwise
    # to display": upright it is 200 x 400, red on top.
    image = Image.new("RGB", (400, 200), RED)
    image.paste(BLUE, (200, 0, 400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    square = opened(cover_sizes(encode(image, "JPEG", exif=exif, quality=95))[1000])
    assert square.size == (200, 200)
    assert near(square.getpixel((100, 20)), RED)
    assert near(square.getpixel((100, 180)), BLUE)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size and has almost no data: what a bomb looks like up front."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "size",
    [
        (8_000, 8_000),  # 64 MP: over our limit, under Pillow's own bomb threshold
        (40_000, 40_000),  # 1.6 GP: Pillow's DecompressionBombError
    ],
)
def test_bombs_are_refused_before_decoding(size: tuple[int, int]) -> None:
    with pytest.raises(InvalidInput) as caught:
        cover_sizes(png_header_only(*size))
    assert caught.value.code == "invalid_image"
    assert "pixels" in caught.value.message


def test_undecodable_images_are_refused() -> None:
    photo = encode(Image.new("RGB", (600, 600), GREEN), "JPEG")
    for junk in (b"not an image at all", photo[: len(photo) // 3], b""):
        with pytest.raises(InvalidInput) as caught:
            cover_sizes(junk)
        assert caught.value.code == "invalid_image"
