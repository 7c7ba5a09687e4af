"""An int8 u2net that keeps its quality: static QDQ, per-channel weights, side outputs in float.

    .venv/bin/python bench/quantize_u2net.py            # writes var/models/u2net-int8.onnx
    .venv/bin/python bench/quality.py --model u2net-int8 --pipeline cutout

A research step, not part of serving: it needs the `onnx` package (dev extra). The recipe:
raise the graph's opset 11 -> 13 (per-channel DequantizeLinear needs `axis`), quantise only
Conv weights per output channel (int8) and activations per tensor (uint8, MinMax), and keep
in float the seven convolutions that make the side maps and the fused map (their outputs
feed the sigmoids directly, where rounding shows as blocky edges). Calibration uses
skimage's photos, never the evaluation set. Per-tensor weights (the earlier attempt) lost
0.05 IoU; this keeps all but ~0.006 (docs/BENCHMARKS.md, Quality).

To serve it: CUTOUT_MODEL=u2net-int8, CUTOUT_CUSTOM_MODEL_FILE=u2net-int8.onnx,
CUTOUT_CUSTOM_MODEL_INPUT_SIZE=320, CUTOUT_CUSTOM_MODEL_NORMALISATION=u2net.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from removal.engine import registry  # noqa: E402
from removal.engine.segment import Segmenter  # noqa: E402

CALIBRATION_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "cat",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "coins",
)


def side_output_convs(model) -> list[str]:
    """The Conv nodes whose outputs reach a graph output through resizes and a sigmoid."""
    producer = {out: node for node in model.graph.node for out in node.output}
    names = []
    for output in model.graph.output:
        node = producer[output.name]
        while node.op_type != "Conv":
            node = producer[node.input[0]]
        names.append(node.name)
    return names


def calibration_tensors(spec: registry.ModelSpec, models_dir: Path) -> list[np.ndarray]:
    from skimage import data

    segmenter = Segmenter(spec.path(models_dir), spec, threads=2, warm=False)
    tensors = []
    for name in CALIBRATION_PHOTOS:
        photo = np.asarray(getattr(data, name)())
        if photo.ndim == 2:
            photo = np.dstack([photo] * 3)
        tensors.append(segmenter.preprocess(np.ascontiguousarray(photo[..., :3])))
    return tensors


def main() -> None:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default=str(ROOT / "var" / "models"))
    parser.add_argument("--out", default="u2net-int8.onnx")
    args = parser.parse_args()
    models_dir = Path(args.models_dir)
    spec = registry.get_spec("u2net")
    model = onnx.load(str(spec.path(models_dir)))
    keep_float = side_output_convs(model)
    tensors = calibration_tensors(spec, models_dir)
    input_name = model.graph.input[0].name

    class Photos(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{input_name: t} for t in tensors])

        def get_next(self):
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory() as tmp:
        opset13, prepared = Path(tmp) / "op13.onnx", Path(tmp) / "prepared.onnx"
        onnx.save(version_converter.convert_version(model, 13), str(opset13))
        quant_pre_process(str(opset13), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(models_dir / args.out),
            Photos(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=keep_float,
            calibrate_method=CalibrationMethod.MinMax,
        )
    print(models_dir / args.out)


if __name__ == "__main__":
    main()
