#!/usr/bin/env python
"""The paper-size models on other CPU engines than onnxruntime fp32: onnxruntime's own int8
quantizers (dynamic: ``ConvInteger``; static: ``QLinearConv``, calibrated on the timing input) on the
cord model, and OpenVINO (fp32 and bf16 inference precision) on both models where it is installed
(``pip install openvino``; not an imsct dependency). Timed on the cord model's 512x256x32 input and a
batch of two 128x128x32 tumor windows (random weights: the time does not depend on them), one warm-up
run, then the best of ``--repeats``.

    python benchmarks/cord_engines.py [--threads 2] [--repeats 3] [--out DIR]

Ideas for issue 14's `imsct segment` in 2 s: the cord model alone takes 3-5 s of it on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import _paper_size_model_folder, print_table  # noqa: E402


def _best(run, x: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:
    y = run(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        y = run(x)
        times.append(time.perf_counter() - t)
    return min(times), y


def _onnxruntime(path: str, threads: int):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return lambda x: s.run(None, {name: x})[0]


def _quantized(fp32: str, tmp: Path, x: np.ndarray) -> list[tuple[str, str]]:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    class OneInput(CalibrationDataReader):
        def __init__(self, name):
            self.feed = iter([{name: x}])

        def get_next(self):
            return next(self.feed, None)

    name = ort.InferenceSession(fp32, providers=["CPUExecutionProvider"]).get_inputs()[0].name
    dyn, stat = str(tmp / "cord_int8_dynamic.onnx"), str(tmp / "cord_int8_static.onnx")
    quantize_dynamic(fp32, dyn, weight_type=QuantType.QUInt8, op_types_to_quantize=["Conv"])
    quantize_static(fp32, stat, OneInput(name), quant_format=QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"])
    return [("onnxruntime int8 dynamic (ConvInteger)", dyn), ("onnxruntime int8 static (QLinearConv)", stat)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", help="keep the models here (default: a temporary folder)")
    args = p.parse_args(argv)
    try:
        import openvino
    except ImportError:
        openvino = None
    rng = np.random.default_rng(0)
    inputs = {"cord": rng.standard_normal((1, 1, 512, 256, 32), dtype=np.float32),
              "tumor": rng.standard_normal((2, 2, 128, 128, 32), dtype=np.float32)}
    rows = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(args.out or t)
        tmp.mkdir(parents=True, exist_ok=True)
        folder = _paper_size_model_folder(tmp)
        for kind, x in inputs.items():
            fp32 = str(folder / f"{kind}.onnx")
            base_s, base_y = _best(_onnxruntime(fp32, args.threads), x, args.repeats)
            rows.append((f"{kind}: onnxruntime fp32 (as imsct segment runs it)", f"{base_s:.2f} s", "-", ""))
            engines = [(label, _onnxruntime(path, args.threads))
                       for label, path in (_quantized(fp32, tmp, x) if kind == "cord" else [])]
            if openvino is not None:
                core = openvino.Core()
                for precision in ("f32", "bf16"):
                    compiled = core.compile_model(fp32, "CPU", {"INFERENCE_NUM_THREADS": args.threads,
                                                                "INFERENCE_PRECISION_HINT": precision,
                                                                "PERFORMANCE_HINT": "LATENCY"})
                    engines.append((f"OpenVINO {openvino.__version__.split('-')[0]} {precision}",
                                    lambda a, c=compiled: c(a)[0]))
            for label, run in engines:
                s, y = _best(run, x, args.repeats)
                rows.append((f"{kind}: {label}", f"{s:.2f} s", "faster than fp32",
                             f"{base_s / s:.2f}x fp32's speed; max |p - p_fp32| {float(np.abs(y - base_y).max()):.3f}"))
    print(f"paper-size models with random weights, CPU, {args.threads} threads"
          + ("" if openvino else "; OpenVINO not installed (pip install openvino): its rows left out"))
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
