#!/usr/bin/env python
"""The paper-size cord model in int8 against fp32 on CPU: onnxruntime's own quantizers (dynamic:
``ConvInteger``; static: ``QLinearConv``, calibrated on the timing input), timed on the paper's
512x256x32 input (random weights: the time does not depend on them), one warm-up run then one timed.

    python benchmarks/cord_int8.py [--threads 2] [--out DIR]

An idea for issue 14's `imsct segment` in 2 s: the cord model alone takes 3.7-5 s of it on 2 cores.
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


def _timed(path: str, x: np.ndarray, threads: int) -> tuple[float, np.ndarray]:
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    feed = {s.get_inputs()[0].name: x}
    s.run(None, feed)
    t = time.perf_counter()
    y = s.run(None, feed)[0]
    return time.perf_counter() - t, y


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="keep the models here (default: a temporary folder)")
    args = p.parse_args(argv)
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    with tempfile.TemporaryDirectory() as t:
        tmp = Path(args.out or t)
        tmp.mkdir(parents=True, exist_ok=True)
        fp32 = str(_paper_size_model_folder(tmp) / "cord.onnx")
        x = np.random.default_rng(0).standard_normal((1, 1, 512, 256, 32)).astype(np.float32)

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
        base_s, base_y = _timed(fp32, x, args.threads)
        rows = [("cord model fp32 (exported as the workflow does)", f"{base_s:.2f} s", "-", "")]
        for label, path in (("int8 dynamic (ConvInteger)", dyn), ("int8 static (QLinearConv)", stat)):
            s, y = _timed(path, x, args.threads)
            rows.append((f"cord model {label}", f"{s:.2f} s", "faster than fp32",
                         f"{base_s / s:.2f}x fp32's speed; max |p - p_fp32| {float(np.abs(y - base_y).max()):.3f}"))
    print(f"paper-size cord model, 1x1x512x256x32, onnxruntime CPU, {args.threads} threads")
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
