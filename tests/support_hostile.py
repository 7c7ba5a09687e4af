"""Hostile images, built in memory: small files that would keep a decoder busy for minutes or
grow a loop without bound if they were not refused from their structure (removal/engine/
budget.py, decode.py). Each is built in well under a second and never decoded here.

The crash files a mutation fuzzer found are in tests/data/fuzz/ (tests/test_fuzz.py).
"""

import io
import struct
from functools import cache
from pathlib import Path

from PIL import Image

FUZZ_DIR = Path(__file__).resolve().parent / "data" / "fuzz"
# Each crash the mutation fuzzer found (tests/test_fuzz.py), with the code it now gets. Before
# issue 12 each answered 500: the exception named in the file name escaped the decoder.
FUZZ_CRASH_CODES = {
    "gif_frame_index_out_of_range.gif": 1006,  # IndexError while counting frames
    "heic_libheif_security_limit.heic": 1006,  # libheif's RuntimeError
    "tiff_missing_dimensions.tif": 1006,  # TypeError in a later directory, counting frames
    "tiff_unknown_data_organization.tif": 1006,  # SyntaxError counting frames
    "tiff_unknown_pixel_mode.tif": 1017,  # a mutated strip count: refused before Pillow
    "tiff_unknown_tag_type.tif": 1006,  # KeyError counting frames
}


@cache
def scan_bomb_jpeg(scans: int = 5_000, size: tuple[int, int] = (8000, 4000)) -> bytes:
    """A progressive JPEG of one flat colour whose smallest scan is repeated `scans` times.

    Each scan of a flat image is a few bytes (all-zero coefficients code as end-of-band runs)
    but costs the decoder a pass over every 8 x 8 block: 8000 x 4000 with 5,000 scans is
    about 390 KB, and 2,000 of them kept OpenCV's libjpeg-turbo busy for over three minutes
    on the CI machine. The header check of width x height passes it."""
    buffer = io.BytesIO()
    Image.new("L", size, 128).save(buffer, "JPEG", progressive=True, quality=50)
    data = buffer.getvalue()
    end = data.rindex(b"\xff\xd9")
    starts = [at for at in range(len(data) - 1) if data.startswith(b"\xff\xda", at)]
    scans_at = zip(starts, [*starts[1:], end], strict=True)
    first, last = min(scans_at, key=lambda scan: scan[1] - scan[0])
    return data[:end] + data[first:last] * scans + b"\xff\xd9"


def gif_with_frames(frames: int) -> bytes:
    """A valid animated GIF of `frames` 2 x 2 frames (a few bytes each)."""
    images = [Image.new("P", (2, 2), i % 2) for i in range(frames)]
    for image in images:
        image.putpalette([0, 0, 0, 255, 255, 255])
    buffer = io.BytesIO()
    images[0].save(
        buffer, "GIF", save_all=True, append_images=images[1:], disposal=1, optimize=False
    )
    return buffer.getvalue()


def tiff_claiming_strips(strips: int, size: tuple[int, int] = (100, 100)) -> bytes:
    """A little-endian TIFF of a small grey image whose first directory lists `strips` strip
    offsets and byte counts (all pointing at the same pixels): Pillow builds one tile per
    entry when it opens the file."""
    width, height = size
    pixels = b"\x80" * (width * height)
    entries = 8
    ifd_at = 8
    ifd_size = 2 + entries * 12 + 4
    offsets_at = ifd_at + ifd_size
    counts_at = offsets_at + 4 * strips
    pixels_at = counts_at + 4 * strips
    rows = max(1, height // strips)

    def entry(tag: int, kind: int, count: int, value: int) -> bytes:
        return struct.pack("<HHII", tag, kind, count, value)

    ifd = struct.pack("<H", entries) + b"".join(
        [
            entry(256, 4, 1, width),  # ImageWidth
            entry(257, 4, 1, height),  # ImageLength
            entry(258, 3, 1, 8),  # BitsPerSample
            entry(259, 3, 1, 1),  # Compression: none
            entry(262, 3, 1, 1),  # Photometric: black is zero
            entry(273, 4, strips, offsets_at),  # StripOffsets
            entry(278, 4, 1, rows),  # RowsPerStrip
            entry(279, 4, strips, counts_at),  # StripByteCounts
        ]
    )
    ifd += struct.pack("<I", 0)
    offsets = struct.pack(f"<{strips}I", *([pixels_at] * strips))
    counts = struct.pack(f"<{strips}I", *([width * rows] * strips))
    return b"II*\x00" + struct.pack("<I", ifd_at) + ifd + offsets + counts + pixels


def fuzz_crash(name: str) -> bytes:
    return (FUZZ_DIR / name).read_bytes()
