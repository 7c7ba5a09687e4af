"""Shared engine fixtures: one model session for the whole test run, real photos as bytes."""

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from removal.engine import local


@pytest.fixture(scope="session")
def engine() -> local.LocalRemover:
    """The process-wide local engine (u2netp under tests), the same one the APIs use."""
    from removal import active_engine

    remover = active_engine.get_remover()
    assert isinstance(remover, local.LocalRemover)
    return remover


def encode_image(pixels: np.ndarray, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **params)
    return buf.getvalue()


@pytest.fixture(scope="session")
def astronaut_png() -> bytes:
    return encode_image(skdata.astronaut())


@pytest.fixture(scope="session")
def chelsea_jpeg() -> bytes:
    return encode_image(skdata.chelsea(), "JPEG", quality=90)
