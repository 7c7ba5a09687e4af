"""The segmentation model: an onnxruntime session, loaded once and warmed, and its maths.

Preprocessing follows the U²-Net authors: resize to the model's square input (INTER_AREA),
divide by the resized image's maximum, then ImageNet mean/std. The map the model returns is
kept when it is already a probability, else min-max normalised (see `run()`); `to_alpha()`
turns a map at processing size into 8-bit alpha, snapping values near either end to exactly
0 or 255.

Precision. On a CPU that computes in bfloat16 natively (Intel AMX or AVX-512 BF16) the model
runs through onnxruntime's OpenVINO execution provider in bfloat16 (`onnxruntime-openvino`):
measured 5-6x faster per run than onnxruntime's own CPU provider in float32 for the same
weights. Its maps differ (up to 0.3-0.4 at a few pixels of a photo), so it is used only for
models whose cut-outs were measured to hold on every evaluation set in bfloat16 (u2net; not
u2netp: docs/BENCHMARKS.md, "Precision"). Elsewhere, or with `precision="f32"`, the model runs
on onnxruntime's CPU provider in float32.
"""

import ctypes
import json
import re
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from .registry import ModelSpec

# Alpha values at or below SNAP_LOW become 0 and at or above SNAP_HIGH become 255 (on the
# 0-255 scale). Near-transparent haze and near-opaque speckle cost Delta PNG bytes and
# carry little visible information. Measured on the dev set (docs/BENCHMARKS.md): IoU is
# unchanged by any margin, MAE improves slightly as it widens, and the Delta PNG shrinks
# from 0.89x (no snapping) to 0.39x (10/245) and 0.30x (24/231) of a level-6 RGBA PNG.
# SNAP_LOW went from 24 to 51 (0.2) in issue 15's third round: on all three evaluation sets,
# matting's soft alpha included, the faint values between them were more often haze over
# clear background than hair or fur (ghost down on every set for both models, MAE level or
# lower; docs/BENCHMARKS.md).
SNAP_LOW = 51
SNAP_HIGH = 231


class ModelMissingError(RuntimeError):
    pass


class PrecisionUnavailableError(RuntimeError):
    """bfloat16 was asked for where it cannot run."""


PRECISIONS = ("auto", "bf16", "f32")
OPENVINO = "OpenVINOExecutionProvider"
CPU = "CPUExecutionProvider"


def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes in bfloat16 natively (AMX or AVX-512 BF16, as Linux lists its
    flags). Without it bfloat16 is emulated, slower than float32."""
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return re.search(r"\b(amx_bf16|avx512_bf16)\b", flags) is not None


def openvino_available() -> bool:
    return OPENVINO in ort.get_available_providers()


def bf16_here() -> bool:
    """Whether bfloat16 runs natively here: the OpenVINO provider installed, and a CPU that
    computes in bfloat16."""
    return openvino_available() and native_bf16()


def resolve_precision(precision: str, spec: ModelSpec) -> str:
    """The precision to run `spec` in ("bf16" or "f32") for a setting of PRECISIONS: "auto" is
    bf16 for a model measured to hold in it (`spec.bf16`) where bfloat16 is both native and
    available (the OpenVINO provider installed), else f32."""
    if precision not in PRECISIONS:
        raise PrecisionUnavailableError(
            f"unknown inference precision {precision!r}: use one of {', '.join(PRECISIONS)}"
        )
    if precision == "bf16" and not openvino_available():
        raise PrecisionUnavailableError(
            "bf16 inference needs onnxruntime's OpenVINO execution provider "
            "(pip install onnxruntime-openvino, Linux x86-64)"
        )
    if precision == "auto":
        return "bf16" if spec.bf16 and bf16_here() else "f32"
    return precision


def providers(precision: str, threads: int) -> list:
    """onnxruntime's providers for a resolved precision: bf16 through OpenVINO, f32 on the
    CPU provider (whose memory behaviour docs/BENCHMARKS.md measured)."""
    if precision == "bf16":
        config = {"CPU": {"INFERENCE_PRECISION_HINT": "bf16"}}
        options = {
            "device_type": "CPU",
            "num_of_threads": str(max(1, int(threads))),
            "load_config": json.dumps(config),
        }
        return [(OPENVINO, options), CPU]
    return [CPU]


def _snap_lut(low: int = SNAP_LOW, high: int = SNAP_HIGH) -> np.ndarray:
    lut = np.arange(256, dtype=np.uint8)
    lut[: low + 1] = 0
    lut[high:] = 255
    return lut


_SNAP_LUT = _snap_lut()


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


def _release_free_heap() -> None:
    """Return freed heap pages to the OS (glibc only; a no-op elsewhere)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD_BYTES = 1 << 20


def _map_large_allocations() -> None:
    """Process-wide: allocations of 1 MB and more get their own mapping, returned to the OS
    when freed. glibc's default threshold grows up to 32 MB after the first large free, after
    which onnxruntime's activations and the image buffers come from the heap and stay in RSS
    between requests (measured: u2net's peak RSS at 12 MP 813 -> 665 MB, docs/BENCHMARKS.md)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


class Segmenter:
    """One onnxruntime session for one model. `predict()` is safe to call from many threads."""

    def __init__(
        self,
        model_path: Path | str,
        spec: ModelSpec,
        threads: int = 2,
        warm: bool = True,
        *,
        memory_pattern: bool = False,
        spinning: bool = True,
        precision: str = "auto",
    ) -> None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelMissingError(
                f"model file {model_path} is missing: run `python manage.py install_model "
                f"{spec.name}`"
            )
        self.spec = spec
        self.threads = threads
        self.precision = resolve_precision(precision, spec)
        _map_large_allocations()
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Memory (measured, docs/BENCHMARKS.md, "The segmenter's memory options"): memory
        # patterns pre-plan one block per shape and keep it (+20 to +150 MB for u2netp after
        # a 1 MP request, for no measurable speed), so they are off. The arena is kept between
        # runs unless a run is asked to release it (`run(release=True)`): that returns its
        # 230-270 MB to the OS, but the next run faults every page back in (+26 % CPU per
        # u2netp run, +10 % per u2net run).
        options.enable_mem_pattern = memory_pattern
        options.enable_cpu_mem_arena = True
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._keep_arena = ort.RunOptions()
        self._release_arena = ort.RunOptions()
        self._release_arena.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.session = ort.InferenceSession(
            str(model_path), options, providers=providers(self.precision, threads)
        )
        _release_free_heap()  # the parsed model file is freed but not yet returned to the OS
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        size = spec.input_size
        self._mean = np.asarray(spec.mean, dtype=np.float32).reshape(1, 1, 3)
        self._inv_std = (1.0 / np.asarray(spec.std, dtype=np.float32)).reshape(1, 1, 3)
        if warm:
            grey = np.full((size, size, 3), 128, dtype=np.uint8)
            self.predict(grey)

    def preprocess(self, rgb: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
        """HxWx3 uint8 (+ optional alpha) -> the model's 1x3xSxS float32 input.

        With alpha, the image is first laid on white at the model's resolution, so what is
        already transparent reads as background.
        """
        size = self.spec.input_size
        small = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
        if alpha is not None:
            a = cv2.resize(alpha, (size, size), interpolation=cv2.INTER_AREA)
            a = a.astype(np.float32)[:, :, None] * (1.0 / 255.0)
            small = small * a + 255.0 * (1.0 - a)
        if self.spec.divide_by_max:
            small *= 1.0 / max(float(small.max()), 1e-6)
        else:
            small *= 1.0 / 255.0
        small -= self._mean
        small *= self._inv_std
        return np.ascontiguousarray(small.transpose(2, 0, 1)[None])

    def run(self, tensor: np.ndarray, release: bool = True) -> np.ndarray:
        """The model's first output for a prepared tensor, SxS float32 in [0, 1]. With
        `release`, the arena's memory goes back to the OS after the run.

        A map that is already a probability (U²-Net ends in a sigmoid) is kept as it is:
        min-max normalising it turns a confident "nothing here" (max 0.03) into a full-strength
        ghost subject (measured: dev MAE 0.0965 -> 0.0930, IoU unchanged). Other maps (a
        custom model's logits) are min-max normalised.
        """
        feeds = {self.input_name: tensor}
        run_options = self._release_arena if release else self._keep_arena
        pred = self.session.run([self.output_name], feeds, run_options)[0]
        pred = np.asarray(pred, dtype=np.float32).reshape(pred.shape[-2], pred.shape[-1])
        lo, hi = float(pred.min()), float(pred.max())
        if lo >= 0.0 and hi <= 1.0:
            return pred
        if hi - lo > 1e-6:
            pred = (pred - lo) * (1.0 / (hi - lo))
        else:
            pred = np.clip(pred, 0.0, 1.0)
        return pred

    def predict(
        self, rgb: np.ndarray, alpha: np.ndarray | None = None, release: bool = True
    ) -> np.ndarray:
        """The model's probability map for `rgb`, at the model's resolution (SxS float32)."""
        return self.run(self.preprocess(rgb, alpha), release)


def to_alpha(prob: np.ndarray, raw: bool = False, snap_low: int = SNAP_LOW) -> np.ndarray:
    """A float map in [0, 1] -> uint8 alpha; unless `raw`, snapped to 0/255 near the ends
    (to 0 at or below `snap_low`: the benchmarks rebuild earlier pipelines with theirs)."""
    alpha = cv2.convertScaleAbs(prob, alpha=255.0)  # saturating round; prob is never negative
    if not raw:
        lut = _SNAP_LUT if snap_low == SNAP_LOW else _snap_lut(snap_low)
        cv2.LUT(alpha, lut, dst=alpha)
    return alpha
