"""A reproducible mutation fuzzer over the test images: a fixed seed and a fixed number of
inputs, so CI runs the same few thousand files every time (a few seconds here).

Every mutated file must either decode or be refused with a 4xx RemovalError, through a
codec error the decoder knows by name: its last-resort `except Exception` logs at ERROR, and
such a record fails the test, so a new kind of crash is seen here rather than in production.
The crashes found so far are files in tests/data/fuzz/ with a test each
(tests/test_api_hostile.py). docs/SECURITY.md says how to run a longer, coverage-guided
search with atheris.
"""

import logging
import random
import warnings
from pathlib import Path

import pytest

from removal.engine import decode
from removal.errors import RemovalError
from tests.support_hostile import FUZZ_CRASH_CODES, FUZZ_DIR, fuzz_crash

DATA = Path(__file__).resolve().parent / "data"
SEED = 12
INPUTS = 4000
# Every container the decoder reads, kept small so each input decodes in milliseconds.
SEEDS = [
    "alpha.png",
    "alpha.webp",
    "animated.gif",
    "cmyk.jpg",
    "grey16.png",
    "multipage.tif",
    "orientation_6.jpg",
    "palette.gif",
    "photo.bmp",
    "photo.heic",
    "photo.webp",
]
MAGIC_NUMBERS = [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to eight byte-level edits: overwrite, flip a bit, delete or insert a run, or write
    an extreme 32-bit number (sizes, offsets and counts live in such fields)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out))
        choice = rng.random()
        if choice < 0.5:
            out[at] = rng.randrange(256)
        elif choice < 0.7:
            out[at] ^= 1 << rng.randrange(8)
        elif choice < 0.8:
            del out[at : at + rng.randint(1, 64)]
        elif choice < 0.9:
            out[at:at] = rng.randbytes(rng.randint(1, 16))
        else:
            out[at : at + 4] = rng.choice(MAGIC_NUMBERS)
        if not out:
            out = bytearray(data)
    return bytes(out)


def outcome(data: bytes) -> str:
    """'ok' or the refusal's code (from `probe`'s header check or from decoding); anything
    else propagates and fails the test."""
    try:
        decode.probe(data)
        decode.decode(data)
    except RemovalError as exc:
        assert 400 <= exc.status < 500, exc
        raise
    return "ok"


def refusal(data: bytes) -> str:
    try:
        return outcome(data)
    except RemovalError as exc:
        return str(exc.code)


def test_a_seeded_mutation_run_decodes_or_refuses_every_input_with_a_4xx(caplog):
    rng = random.Random(SEED)
    seeds = [(DATA / name).read_bytes() for name in SEEDS]
    outcomes: dict[str, int] = {}
    with warnings.catch_warnings(), caplog.at_level(logging.ERROR, "removal.engine.decode"):
        warnings.simplefilter("ignore")  # Pillow warns about the damage it tolerates
        for _ in range(INPUTS):
            result = refusal(mutate(rng.choice(seeds), rng))
            outcomes[result] = outcomes.get(result, 0) + 1
    assert [r.exc_info[1] for r in caplog.records if r.name == decode.__name__] == []
    # The run really exercises both paths: many inputs still decode, many are refused.
    assert outcomes.get("ok", 0) > INPUTS / 10 and outcomes.get("1006", 0) > INPUTS / 10


@pytest.mark.parametrize("name", sorted(p.name for p in FUZZ_DIR.iterdir()))
def test_each_crash_file_is_refused_with_its_code(name, caplog):
    with caplog.at_level(logging.ERROR, "removal.engine.decode"):
        with pytest.raises(RemovalError) as caught:
            outcome(fuzz_crash(name))
    assert caught.value.code == FUZZ_CRASH_CODES[name]
    # A codec error the decoder names, not its last-resort handler.
    assert [r for r in caplog.records if r.name == decode.__name__] == []


def test_every_crash_file_has_its_expected_code():
    assert sorted(FUZZ_CRASH_CODES) == sorted(p.name for p in FUZZ_DIR.iterdir())
