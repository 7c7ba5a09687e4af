"""Regenerates the small test images in this folder: `python tests/data/make_data.py`.

Every file is derived from scikit-image's `chelsea` photo (public domain) or synthesised, and is
kept tiny. The committed files are what the tests read; this script documents how they were
made and rebuilds them byte-for-byte stable enough for the tests (JPEG bytes may differ across
libjpeg versions, the pixels the tests check do not).
"""

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pillow_heif
from PIL import Image
from skimage import data as skdata

HERE = Path(__file__).resolve().parent
# Stored orientation -> the transpose that makes the stored pixels from the upright image
# (the inverse of what a reader applies).
STORE_TRANSPOSE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright() -> Image.Image:
    """A 60 x 40 crop of the cat, clearly not symmetric in either direction."""
    return Image.fromarray(skdata.chelsea()).resize((90, 60), Image.LANCZOS).crop((10, 5, 70, 45))


def soft_alpha(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2))
    return np.clip((1.1 - dist) * 4 * 255, 0, 255).astype(np.uint8)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height RGB but carries only the start of its pixel data:
    any reader that decodes before checking the size would spend gigabytes on it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * (width * 3)
    idat = zlib.compress(row * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)


def jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """Patch a baseline JPEG's SOF0 frame size (the header says width x height)."""
    out = bytearray(jpeg)
    i = 2
    while i < len(out):
        marker = out[i + 1]
        length = struct.unpack(">H", out[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            out[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(out)
        i += 2 + length
    raise ValueError("no SOF marker")


def save(name: str, body: bytes) -> None:
    (HERE / name).write_bytes(body)


def encoded(im: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def main() -> None:
    base = upright()
    rgb = np.asarray(base)

    # Orientations 1-8: stored so that applying the tag gives `base` back.
    for tag, transpose in STORE_TRANSPOSE.items():
        stored = base if transpose is None else base.transpose(transpose)
        exif = Image.Exif()
        exif[0x0112] = tag
        save(f"orientation_{tag}.jpg", encoded(stored, "JPEG", quality=95, exif=exif.tobytes()))
    save("upright.png", encoded(base, "PNG"))

    # Transparency in its various forms.
    alpha = soft_alpha(base.size)
    save("alpha.png", encoded(Image.fromarray(np.dstack([rgb, alpha])), "PNG"))
    grey = base.convert("L")
    save("grey_alpha.png", encoded(Image.merge("LA", [grey, Image.fromarray(alpha)]), "PNG"))
    pal = base.quantize(colors=16)
    pal_alpha = encoded(pal, "PNG", transparency=0)
    save("palette_transparency.png", pal_alpha)
    save("palette.gif", encoded(pal, "GIF"))

    # Animated GIF: frame 0 is the cat, frame 1 solid red.
    red = Image.new("RGB", base.size, (255, 0, 0)).quantize(colors=2)
    buf = io.BytesIO()
    pal.save(buf, "GIF", save_all=True, append_images=[red], duration=100, loop=0)
    save("animated.gif", buf.getvalue())

    # Bit depths and colour models.
    save("grey.jpg", encoded(grey, "JPEG", quality=95))
    save("grey.png", encoded(grey, "PNG"))
    grey16 = (np.asarray(grey).astype(np.uint16) * 257).astype(np.uint16)
    save("grey16.png", cv2.imencode(".png", grey16)[1].tobytes())
    rgb16 = rgb.astype(np.uint16) * 257
    save("rgb16.png", cv2.imencode(".png", cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))[1].tobytes())
    save("cmyk.jpg", encoded(base.convert("CMYK"), "JPEG", quality=95))
    save("bilevel.png", encoded(grey.point(lambda v: 255 if v > 110 else 0).convert("1"), "PNG"))

    # Other containers.
    save("photo.bmp", encoded(base, "BMP"))
    save("photo.webp", encoded(base, "WEBP", quality=90))
    save("alpha.webp", encoded(Image.fromarray(np.dstack([rgb, alpha])), "WEBP", lossless=True))
    buf = io.BytesIO()
    base.save(buf, "TIFF", save_all=True, append_images=[Image.new("RGB", base.size, "red")])
    save("multipage.tif", buf.getvalue())
    heif = pillow_heif.from_pillow(base)
    buf = io.BytesIO()
    heif.save(buf, quality=90)
    save("photo.heic", buf.getvalue())

    # Edge cases.
    save("tiny_1x1.png", encoded(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"))
    save("tiny_2x2.png", encoded(base.resize((2, 2)), "PNG"))
    save("strip_1x40.png", encoded(base.resize((1, 40)), "PNG"))
    save("strip_2x40.png", encoded(base.resize((2, 40)), "PNG"))
    full = encoded(base, "JPEG", quality=95)
    save("truncated.jpg", full[: len(full) // 2])
    save("truncated.png", encoded(base, "PNG")[:300])
    save("not_an_image.jpg", b"Hello, this is a text file with a .jpg name.\n" * 3)
    save(
        "document.pdf",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n",
    )
    save("bomb_40000x40000.png", png_header_only(40_000, 40_000))
    save("over_cap_6000x6000.png", png_header_only(6000, 6000))
    save("jpeg_50mp_header.jpg", jpeg_with_size(full, 8660, 5774))


if __name__ == "__main__":
    main()
