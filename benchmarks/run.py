#!/usr/bin/env python
"""Speed targets of imsct, printed as a table (targets from the issues; not timed tests).

    python benchmarks/run.py [--quick] [--pybids]

Rows: phantom generation (full and small subjects, one core), discovery of a 1,000-subject dataset,
`snakemake -n` on the paper configuration (343 subjects).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from imsct.bids import Naming, discover  # noqa: E402
from imsct.phantom.cohort import generate_subject, plan_cohort  # noqa: E402


def bench_phantom(size: str, n: int, tmp: Path) -> float:
    specs = plan_cohort(n, 123)
    t0 = time.perf_counter()
    for s in specs:
        generate_subject(tmp / size, s, 123, size, Naming())
    return (time.perf_counter() - t0) / n


def fake_dataset(root: Path, n: int) -> None:
    """Empty files with the contract's names: discovery only reads names."""
    naming = Naming()
    lines = ["participant_id\ttumor_type"]
    for i in range(1, n + 1):
        sub = f"{i:04d}"
        anat = root / f"sub-{sub}" / "anat"
        lab = root / naming.labels_dir / f"sub-{sub}" / "anat"
        anat.mkdir(parents=True)
        lab.mkdir(parents=True)
        for key in ("t2w", "t1w"):
            (anat / naming.image_name(key, sub)).touch()
        stems = {"t2w_stem": f"sub-{sub}_T2w", "t1w_stem": f"sub-{sub}_ce-gad_T1w"}
        for key, pattern in naming.labels.items():
            (lab / pattern.format(**stems)).touch()
        lines.append(f"sub-{sub}\tependymoma")
    (root / "participants.tsv").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer phantom subjects")
    ap.add_argument("--pybids", action="store_true", help="also time pybids on the 1,000-subject dataset")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        n_full = 4 if args.quick else 12
        t = bench_phantom("full", n_full, tmp)
        rows.append(("phantom, full-size subject (both contrasts, labels, written)", f"{t:.2f} s", "<= 1 s",
                     f"{n_full} subjects, 1 process; 343 on 2 cores: {343 * t / 2 / 60:.1f} min"))
        t = bench_phantom("small", 12, tmp)
        rows.append(("phantom, small subject", f"{t:.2f} s", "seconds per demo cohort", "12 subjects"))
        fake_dataset(tmp / "big", 1000)
        t0 = time.perf_counter()
        cohort, _ = discover(tmp / "big")
        t = time.perf_counter() - t0
        assert len(cohort) == 1000
        rows.append(("discovery, 1,000 subjects", f"{t:.2f} s", "<= 3 s", "imsct.bids.discover"))
        if args.pybids:
            import bids

            t0 = time.perf_counter()
            layout = bids.BIDSLayout(tmp / "big", validate=False, indexer=bids.BIDSLayoutIndexer(index_metadata=False))
            n = len(layout.get(suffix="T2w", extension=".nii.gz"))
            rows.append(("pybids index + query, 1,000 subjects", f"{time.perf_counter() - t0:.2f} s", "-", f"{n} T2w"))
        exe = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"
        t0 = time.perf_counter()
        r = subprocess.run([exe, "-n", "-q", "--cores", "2", "--configfile", "config/paper.yaml", "--config",
                            f"results={tmp}/results", f"resources={tmp}/resources"],
                           cwd=REPO, capture_output=True, text=True)
        t = time.perf_counter() - t0
        rows.append(("snakemake -n, paper config (343 subjects)", f"{t:.1f} s" if r.returncode == 0 else "FAILED",
                     "-", "whole DAG"))
    table = Table(title="imsct benchmarks (this machine)")
    for col in ("what", "measured", "target", "notes"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
