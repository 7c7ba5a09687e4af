"""The decoding budget: what a small hostile file could make the decoder do, counted from the
file's own structure before a codec sees it.

A header check of width x height (removal/engine/decode.py `probe`) does not bound the work:
a 250 KB progressive JPEG with tens of thousands of empty scans decodes for minutes, a GIF or
TIFF can hold millions of frames, a TIFF millions of strips (Pillow builds one tile per strip
when it opens the file). These walkers read only the markers, blocks and directories, each
loop bounded by the file's length or by the limit it checks, and never raise: a structure
they cannot follow counts what they saw, and the codec then refuses the file (1006).

The limits are far above what any camera or editor writes; each refusal has its own code.
"""

from dataclasses import dataclass

from PIL import Image

from removal.errors import (
    DECODED_TOO_LARGE,
    TOO_MANY_FRAMES,
    TOO_MANY_SCANS,
    TOO_MANY_STRIPS,
    RemovalError,
)


@dataclass(frozen=True)
class DecodeBudget:
    """Ceilings on the decoder's work. Progressive JPEGs from encoders have about 10 scans
    (mozjpeg's optimised ones up to ~20); decoding costs one pass over every block per scan.
    Only the first frame is decoded, but counting frames walks them all. `max_decoded_bytes`
    is the first frame as the codec holds it (32 MP at 4 bytes a pixel fits)."""

    max_jpeg_scans: int = 100
    max_frames: int = 1000
    max_tiff_strips: int = 200_000
    max_decoded_bytes: int = 128 * 2**20


DEFAULT_BUDGET = DecodeBudget()

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_STRIP_OFFSETS, _TILE_OFFSETS = 273, 324
# JPEG markers without a length field: TEM, RST0-7, SOI, EOI.
_STANDALONE = {0x01, *range(0xD0, 0xDA)}


def jpeg_scans(data: bytes) -> int:
    """Start-of-scan (FF DA) markers in a JPEG. The header segments are walked to the first
    scan; after it FF DA is counted by bytes: entropy-coded data stuffs every FF with 00 (or
    is followed by a restart marker), so FF DA there is always a marker."""
    pos, size = 2, len(data)
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0xDA:
            return 1 + data.count(b"\xff\xda", pos + 2)
        elif marker in _STANDALONE:
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return 0


def gif_frames(data: bytes, limit: int) -> int:
    """Image descriptors in a GIF, counted up to `limit` + 1 (extension and image data
    sub-blocks are skipped by their lengths)."""
    size = len(data)
    if size < 13:
        return 0
    pos = 13
    if data[10] & 0x80:  # global colour table
        pos += 3 * 2 ** ((data[10] & 7) + 1)
    frames = 0
    while pos < size and frames <= limit:
        block = data[pos]
        if block == 0x2C:  # image descriptor: 9 bytes, local colour table, LZW code size
            frames += 1
            if pos + 10 > size:
                break
            flags = data[pos + 9]
            pos += 10 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0) + 1
        elif block == 0x21:  # extension: label, then sub-blocks
            pos += 2
        else:  # trailer, or something no decoder would go past
            break
        while pos < size and data[pos]:
            pos += data[pos] + 1
        pos += 1
    return frames


def tiff_layout(data: bytes, limit: int) -> tuple[int, int]:
    """(directories, strips or tiles of all of them) in a TIFF or BigTIFF, walking at most
    `limit` + 1 directories; a directory chain that loops ends the walk."""
    order = "little" if data[:2] == b"II" else "big"

    def number(at: int, width: int) -> int:
        return int.from_bytes(data[at : at + width], order)

    big = number(2, 2) == 43
    count_width, entry_size, value_width = (8, 20, 8) if big else (2, 12, 4)
    offset = number(8, 8) if big else number(4, 4)
    seen: set[int] = set()
    directories = strips = 0
    while 8 <= offset < len(data) and offset not in seen and directories <= limit:
        seen.add(offset)
        directories += 1
        entries = number(offset, count_width)
        first = offset + count_width
        # Entries past the end of the file cannot be read by the codec either.
        entries = min(entries, max(0, (len(data) - first) // entry_size))
        for index in range(entries):
            at = first + index * entry_size
            if number(at, 2) in (_STRIP_OFFSETS, _TILE_OFFSETS):
                strips += number(at + 4, value_width)
        offset = number(first + entries * entry_size, value_width)
    return directories, strips


def check_structure(data: bytes, budget: DecodeBudget = DEFAULT_BUDGET) -> None:
    """Refuse, before any codec opens `data`, a JPEG with too many scans (1015), a GIF or
    TIFF with too many frames (1016) and a TIFF with too many strips or tiles (1017)."""
    if data[:2] == b"\xff\xd8":
        scans = jpeg_scans(data)
        if scans > budget.max_jpeg_scans:
            raise RemovalError(
                TOO_MANY_SCANS,
                f"The JPEG has {scans:,} scans; at most {budget.max_jpeg_scans} are decoded: "
                "save it again as a baseline or ordinary progressive JPEG.",
            )
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        check_frames(gif_frames(data, budget.max_frames), budget)
    elif data[:4] in _TIFF_MAGIC:
        directories, strips = tiff_layout(data, budget.max_frames)
        check_frames(directories, budget)
        if strips > budget.max_tiff_strips:
            raise RemovalError(
                TOO_MANY_STRIPS,
                f"The TIFF has {strips:,} strips or tiles; at most "
                f"{budget.max_tiff_strips:,} are read.",
            )


def check_frames(frames: int, budget: DecodeBudget = DEFAULT_BUDGET) -> None:
    """Refuse more than `max_frames` frames (1016); counts past the limit may stop early."""
    if frames > budget.max_frames:
        raise RemovalError(
            TOO_MANY_FRAMES,
            f"The image has more than {budget.max_frames:,} frames (pages); send one image.",
        )


def check_decoded_size(
    width: int, height: int, mode: str, budget: DecodeBudget = DEFAULT_BUDGET
) -> None:
    """Refuse a first frame whose pixels, as Pillow's `mode` holds them, exceed
    `max_decoded_bytes` (1018)."""
    if mode in ("I", "F", "I;32", "I;32B", "I;32L", "I;32S"):
        pixel = 4
    elif mode.startswith("I;16"):
        pixel = 2
    else:
        try:
            pixel = Image.getmodebands(mode)
        except (KeyError, ValueError):
            pixel = 4
    decoded = width * height * pixel
    if decoded > budget.max_decoded_bytes:
        raise RemovalError(
            DECODED_TOO_LARGE,
            f"The image would take {decoded:,} bytes decoded; at most "
            f"{budget.max_decoded_bytes:,} are allowed.",
        )
