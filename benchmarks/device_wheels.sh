#!/usr/bin/env bash
# Wheels that `python benchmarks/run.py --training-only cuda` needs on a lent GPU machine whose image
# has torch, numpy, scipy, pandas, PyYAML, rich, attrs and packaging but not these (Python 3.12,
# nothing fetched there). Run here, in the repository root; .whl/ is git-ignored locally:
#   bash benchmarks/device_wheels.sh            # about 9 MB into .whl/
# then, on the machine (the device tool's `run`, carry [".whl"]):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
#   PYTHONPATH=/tmp/site:src python3 benchmarks/run.py --training-only cuda
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> "$(git rev-parse --git-path info/exclude)"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    nibabel==5.4.2 connected-components-3d==4.1.1 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 \
    referencing==0.37.0 rpds-py==2026.9.1
du -sh .whl
