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
    parser.add_argument("--model", default="u2net", choices=["u2net", "u2netp"])
    parser.add_argument("--out", help="default: <model>-int8.onnx")
    parser.add_argument(
        "--compare", type=int, default=0, help="then time N runs of each and compare their maps"
    )
    args = parser.parse_args()
    args.out = args.out or f"{args.model}-int8.onnx"
    models_dir = Path(args.models_dir)
    spec = registry.get_spec(args.model)
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
    if args.compare:
        compare(spec, models_dir, models_dir / args.out, args.compare)


def compare(spec: registry.ModelSpec, models_dir: Path, int8_path: Path, runs: int) -> None:
    """CPU seconds per model run (1 thread, taking turns) and the maps' agreement on the
    calibration photos (IoU at 0.5, mean absolute difference): a speed probe, not the
    quality gate (that is bench/quality_sets.py on the three shared sets)."""
    import os
    import statistics
    import time

    tensors = calibration_tensors(spec, models_dir)
    float_model = Segmenter(spec.path(models_dir), spec, threads=1)
    int8_model = Segmenter(int8_path, spec, threads=1)
    cpu: dict[str, list[float]] = {"float": [], "int8": []}
    for index in range(runs):
        pair = [("float", float_model), ("int8", int8_model)]
        for name, model in pair[index % 2 :] + pair[: index % 2]:
            started = time.process_time()
            model.run(tensors[0], release=False)
            cpu[name].append(time.process_time() - started)
    ious, maes = [], []
    for tensor in tensors:
        a, b = float_model.run(tensor, release=False), int8_model.run(tensor, release=False)
        union = np.logical_or(a >= 0.5, b >= 0.5).sum()
        ious.append(np.logical_and(a >= 0.5, b >= 0.5).sum() / union if union else 1.0)
        maes.append(float(np.abs(a - b).mean()))
    for name, values in cpu.items():
        print(
            f"{spec.name} {name}: CPU s per run {statistics.median(values):.3f} "
            f"({min(values):.3f}-{max(values):.3f})"
        )
    print(
        f"int8 / float CPU {statistics.median(cpu['int8']) / statistics.median(cpu['float']):.2f}; "
        f"maps on {len(tensors)} photos: IoU min {min(ious):.3f} median "
        f"{statistics.median(ious):.3f}, MAE median {statistics.median(maes):.4f}; "
        f"load average {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
