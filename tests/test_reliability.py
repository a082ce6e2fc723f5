"""Bad input and faults (issue: reliability). Each numbered case of the README's reliability table
has a test here or names the test that covers it elsewhere."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from imsct.cli import main
from imsct.io import save_nifti

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TINY = ["--configfile", "config/config.yaml", "tests/tiny-workflow.yaml", "tests/four-subjects.yaml"]


def _bad_scan(case: str, tmp_path: Path, sct_data: Path) -> Path:
    src = nib.load(sct_data / "t2/t2.nii.gz")
    data = np.asanyarray(src.dataobj).astype(np.float32)
    p = tmp_path / f"{case}.nii.gz"
    if case == "missing":
        return p
    if case == "not_nifti":
        p.write_bytes(gzip.compress(b"DICOM? no: plain text with a NIfTI name"))
    elif case == "truncated":
        save_nifti(data, src.affine, p)
        p.write_bytes(p.read_bytes()[:3000])
    elif case == "4d":
        save_nifti(np.stack([data, data], -1), src.affine, p)
    elif case == "2d":
        save_nifti(data[:, :, 0], src.affine, p)
    elif case in ("nan", "inf"):
        data[5, 5, 5] = np.nan if case == "nan" else np.inf
        save_nifti(data, src.affine, p)
    elif case == "all_zero":
        save_nifti(np.zeros_like(data), src.affine, p)
    elif case == "single_slice":
        save_nifti(data[data.shape[0] // 2:data.shape[0] // 2 + 1], src.affine, p)
    return p


# cases 1-4 and the single slice of case 11, through `imsct segment`
@pytest.mark.parametrize("case, message", [
    ("missing", "file not found"), ("not_nifti", "cannot be read as NIfTI"), ("truncated", "cannot be read"),
    ("4d", "expected a 3D image"), ("2d", "expected a 3D image"), ("nan", "NaN or infinite"),
    ("inf", "NaN or infinite"), ("all_zero", "holds no signal"), ("single_slice", "too few voxels"),
])
def test_segment_rejects_bad_scans_naming_the_file(case, message, tmp_path, sct_data, capsys):
    bad = _bad_scan(case, tmp_path, sct_data)
    out = tmp_path / "seg"
    rc = main(["segment", "--t2", str(sct_data / "t2/t2.nii.gz"), "--t1", str(bad), "--model", str(tmp_path / "none"),
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and str(bad) in err and message in err, err
    assert not out.exists()  # nothing written


def test_05_mask_with_other_values_is_refused(sct_data, tmp_path):
    from imsct.io import ImageError
    from imsct.preprocess.pipeline import resample_subject

    t2 = sct_data / "t2/t2.nii.gz"
    seg = nib.load(sct_data / "t2/t2_seg-manual.nii.gz")
    bad = tmp_path / "two.nii.gz"
    save_nifti((np.asanyarray(seg.dataobj) > 0).astype(np.uint8) * 2, seg.affine, bad)
    out = {k: str(tmp_path / f"{k}.nii.gz") for k in ("t2w", "t1w", "tumor", "grid")}
    with pytest.raises(ImageError, match=r"two\.nii\.gz: a mask must hold 0 and 1 only"):
        resample_subject(str(t2), str(t2), {"tumor": str(bad)}, out)
    assert not Path(out["tumor"]).exists() and not Path(out["grid"]).exists()


def test_06_empty_or_outside_centerline(sct_data, tmp_path, capsys):
    t2 = sct_data / "t2/t2.nii.gz"
    img = nib.load(t2)
    empty = tmp_path / "empty.nii.gz"
    save_nifti(np.zeros(img.shape, np.uint8), img.affine, empty)
    assert main(["cord-mask", "--centerline", str(empty), "--out", str(tmp_path / "a.nii.gz")]) == 2
    assert f"{empty}: empty centerline" in capsys.readouterr().err
    csv = tmp_path / "outside.csv"
    csv.write_text("x,y,z\n900,900,900\n-50,3,3\n")
    assert main(["cord-mask", "--centerline", str(csv), "--ref", str(t2), "--out", str(tmp_path / "b.nii.gz")]) == 2
    assert "every centerline point lies outside" in capsys.readouterr().err
    assert not list(tmp_path.glob("[ab].nii.gz"))


def test_07_unmatched_disc_labels_fall_back_to_the_scanner_flagged(small_cohort, tmp_path):
    """The large-motion subject fails the intensity gate; its disc labels share no level with the
    T2w's, so the landmark fallback cannot run: scanner alignment, flagged, and the QC says why."""
    from imsct.preprocess.register import register_files

    sub = "sub-008"  # the large-motion subject of the small cohort (seed 11)
    anat, lab = small_cohort / sub / "anat", small_cohort / "derivatives/labels" / sub / "anat"
    d = nib.load(lab / f"{sub}_ce-gad_T1w_label-discs_dseg.nii.gz")
    shifted = np.asanyarray(d.dataobj).astype(np.int16)
    shifted[shifted > 0] += 30  # indices the T2w does not have
    moved_discs = tmp_path / "discs.nii.gz"
    save_nifti(shifted, d.affine, moved_discs)
    res = register_files(anat / f"{sub}_T2w.nii.gz", anat / f"{sub}_ce-gad_T1w.nii.gz", tmp_path / "t1.nii.gz",
                         lab / f"{sub}_T2w_label-discs_dseg.nii.gz", moved_discs, qc_path=tmp_path / "qc.json")
    qc = json.loads((tmp_path / "qc.json").read_text())
    assert res.flagged and res.method == "scanner" and qc["flagged"]
    assert qc["shared_discs"] == [] and qc["fallback"]["discs"] is False
    assert {r.split(":")[0] for r in qc["gate_reasons"]} == {"affine", "rigid"}  # both were rejected
    assert not qc["affine"]["passed"] and not qc["rigid"]["passed"]


def test_09_no_cord_found_falls_back_to_the_whole_field_of_view(tiny_model_folder, sct_data):
    """No voxel reaches the cord threshold (set above 1 here: a sigmoid never gets there), as on a
    scan without a spinal cord: the tumor model runs on the whole field of view, flagged."""
    from imsct.inference.predictor import Predictor, SegmentOptions

    t2 = nib.load(sct_data / "t2/t2.nii.gz")
    seg = Predictor(tiny_model_folder).segment(t2, t2, SegmentOptions(register=False, cord_threshold=1.01))
    p = seg.provenance
    assert not p["cord_found"] and p["cord_fallback_whole_fov"]
    assert p["crop"] is None
    assert all(m.shape == t2.shape for m in seg.masks.values())


def _dice(a, b):
    from imsct.evaluation.metrics import compare

    return compare(a, b, 1.0)["dice"]


def test_10_orientation_does_not_change_the_result(tiny_model_folder, sct_data):
    """The real T2w (stored PSR) re-stored as LPI and RAS gives the same cord; an oblique copy (the same
    voxels, its affine rotated 8 degrees) gives the same voxels back within interpolation."""
    from imsct.inference.predictor import Predictor, SegmentOptions

    pred = Predictor(tiny_model_folder)
    t2 = nib.load(sct_data / "t2/t2.nii.gz")
    t2 = nib.Nifti1Image(np.asanyarray(t2.dataobj).astype(np.float32), t2.affine)
    opts = SegmentOptions(register=False)
    ref = pred.segment(t2, t2, opts).masks["cord"]
    assert ref.any()
    for codes in (("L", "P", "I"), ("R", "A", "S")):
        ornt = nib.orientations.ornt_transform(nib.io_orientation(t2.affine), nib.orientations.axcodes2ornt(codes))
        img = t2.as_reoriented(ornt)
        cord = pred.segment(img, img, opts).masks["cord"]
        back = nib.orientations.apply_orientation(cord, nib.orientations.ornt_transform(
            nib.orientations.axcodes2ornt(codes), nib.io_orientation(t2.affine)))
        assert _dice(back, ref) >= 0.98, codes
    a = np.deg2rad(8)
    rot = np.eye(4)
    rot[1:3, 1:3] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    oblique = nib.Nifti1Image(np.asanyarray(t2.dataobj), rot @ t2.affine)
    cord = pred.segment(oblique, oblique, opts).masks["cord"]
    # the oblique copy is resampled, not merely re-stored: the tiny models' uncertain border moves
    # (0.82 measured with the tiny models of this version)
    assert cord.shape == ref.shape and _dice(cord, ref) >= 0.8


def test_11_field_of_view_smaller_than_a_patch(tiny_model_folder, sct_data, tmp_path):
    t2 = nib.load(sct_data / "t2/t2.nii.gz")
    small = t2.slicer[:, 10:40, 10:40]  # 30 x 30 voxels in-plane: smaller than every patch
    p = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.asanyarray(small.dataobj).astype(np.float32), small.affine), p)
    assert main(["segment", "--t2", str(p), "--t1", str(p), "--no-register", "--model", str(tiny_model_folder),
                 "--out", str(tmp_path / "seg")]) == 0
    out = nib.load(tmp_path / "seg/small_label-wholetumor_mask.nii.gz")
    assert out.shape == small.shape and np.allclose(out.affine, small.affine)
    # the folder's settings (the paper's) unless the command asks for others
    assert json.loads((tmp_path / "seg/small_label-wholetumor_mask.json").read_text())["tta"] is False
    assert main(["segment", "--t2", str(p), "--t1", str(p), "--no-register", "--model", str(tiny_model_folder),
                 "--tta", "--blend", "gaussian", "--out", str(tmp_path / "tta")]) == 0
    side = json.loads((tmp_path / "tta/small_label-wholetumor_mask.json").read_text())
    assert (side["tta"], side["blend"]) == (True, "gaussian")


def test_segment_many_subjects_in_one_call_skips_a_bad_one(tiny_model_folder, small_cohort, tmp_path, capsys):
    """Several T2w/T1w pairs in one call share the model sessions; a broken subject is reported and
    skipped, the others are written, and the exit status says something was skipped."""
    anat = [small_cohort / f"sub-00{i}/anat" for i in (1, 2)]
    pairs = [(a / f"{a.parent.name}_T2w.nii.gz", a / f"{a.parent.name}_ce-gad_T1w.nii.gz") for a in anat]
    bad = tmp_path / "sub-bad_T2w.nii.gz"
    bad.write_bytes(b"not a nifti")
    t2s = [str(pairs[0][0]), str(bad), str(pairs[1][0])]
    t1s = [str(pairs[0][1]), str(pairs[0][1]), str(pairs[1][1])]
    rc = main(["segment", "--t2", *t2s, "--t1", *t1s, "--no-register", "--model", str(tiny_model_folder),
               "--out", str(tmp_path / "seg")])
    out = capsys.readouterr()
    assert rc == 1
    assert "skipped" in out.err and "sub-bad_T2w.nii.gz" in out.err
    assert "2 of 3 subject(s) segmented" in out.out and "per minute" in out.out
    for i in (1, 2):
        mask = nib.load(tmp_path / f"seg/sub-00{i}_T2w_label-wholetumor_mask.nii.gz")
        assert mask.shape == nib.load(pairs[i - 1][0]).shape
    assert not list((tmp_path / "seg").glob("sub-bad*"))
    assert main(["segment", "--t2", *t2s, "--t1", *t1s[:2], "--model", str(tiny_model_folder),
                 "--out", str(tmp_path / "x")]) != 0


def _wait_for(pred, timeout: float, what: str):
    t0 = time.time()
    while not pred():
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _workflow_copy(tmp_path) -> Path:
    """The workflow copied under ``tmp_path``: a killed run's `--unlock` then touches no other test's
    ``.snakemake/`` (tests run in parallel). The package is the installed one."""
    wf = tmp_path / "wf"
    for part in ("Snakefile", "workflow", "config", "tests/tiny-workflow.yaml", "tests/four-subjects.yaml"):
        src, dst = REPO / part, wf / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
    return wf


def _kill9(proc):
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: Snakemake and its jobs
    proc.wait()


@pytest.mark.slow
def test_kill9_during_training_resumes_through_snakemake(tmp_path):
    """kill -9 of the whole run while the cord model trains; `--rerun-incomplete` resumes from the last
    checkpoint (the log says so) and finishes."""
    wf = _workflow_copy(tmp_path)
    extra = tmp_path / "longer.yaml"
    extra.write_text("training:\n  max_epochs: 40\n  patience: 100\n  threads: 1\n  cord: {max_epochs: 40}\n")
    args = ["--cores", "2", *TINY, str(extra),
            "--config", f"results={tmp_path}/results", f"resources={tmp_path}/resources"]
    target = f"{tmp_path}/results/models/split-00/cord/best.pt"
    proc = subprocess.Popen([SNAKEMAKE, target, *args], cwd=wf, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "results/models/split-00/cord/log.tsv"
    try:
        _wait_for(lambda: log.is_file() and len(log.read_text().splitlines()) >= 4, 600, "3 epochs")
    finally:
        _kill9(proc)
    done = len(log.read_text().splitlines()) - 1
    assert done < 40 and (tmp_path / "results/models/split-00/cord/last.pt").is_file()
    r = subprocess.run([SNAKEMAKE, target, *args, "--unlock"], cwd=wf, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([SNAKEMAKE, target, *args, "--rerun-incomplete"], cwd=wf, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    train_log = (tmp_path / "results/logs/train/split-00_cord.log").read_text()
    assert "resum" in train_log.lower(), train_log[-2000:]
    hist = [int(line.split("\t")[0]) for line in log.read_text().splitlines()[1:]]
    assert hist == list(range(len(hist))) and len(hist) == 40  # every epoch once, none repeated


@pytest.mark.slow
def test_kill9_during_a_cohort_run_then_rerun_completes_clean(tmp_path):
    wf = _workflow_copy(tmp_path)
    args = ["--cores", "2", *TINY, "--config", f"results={tmp_path}/results", f"resources={tmp_path}/resources"]
    target = f"{tmp_path}/results/qc/registration.tsv"
    proc = subprocess.Popen([SNAKEMAKE, target, *args], cwd=wf, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len(list((tmp_path / "results/preprocess").glob("sub-*/*registered_T1w.nii.gz"))) >= 2,
                  600, "two registrations")
    finally:
        _kill9(proc)
    subprocess.run([SNAKEMAKE, target, *args, "--unlock"], cwd=wf, capture_output=True, check=True)
    r = subprocess.run([SNAKEMAKE, target, *args, "--rerun-incomplete"], cwd=wf, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not [p for p in tmp_path.rglob(".*tmp*") if p.is_file()]  # no temporaries left behind
    for p in list((tmp_path / "resources").rglob("*.nii.gz")) + list((tmp_path / "results").rglob("*.nii.gz")):
        np.asanyarray(nib.load(p).dataobj)  # every image reads in full
    assert len(open(target).read().splitlines()) == 5  # header + 4 subjects
