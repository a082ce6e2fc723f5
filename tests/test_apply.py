"""`snakemake apply`: trained models on a new, unlabeled cohort (volumetry, follow-up, agreement, report),
and the measurements it is built from."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from imsct.apply.followup import followup_table, read_sessions
from imsct.apply.levels import disc_heights, disc_name, span
from imsct.apply.volumetry import measure, volume_within
from imsct.inference.uncertainty import ensemble_agreement, pairwise_dice

# An oblique, flipped, permuted grid (voxel axes: i anterior-ish, j inferior, k left): nothing may
# assume RAS or an axis order.
_R = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
_TILT = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(0.2), -np.sin(0.2)], [0.0, np.sin(0.2), np.cos(0.2)]])
AFFINE = np.eye(4)
AFFINE[:3, :3] = _TILT @ _R @ np.diag([0.5, 2.0, 0.8])
AFFINE[:3, 3] = [10.0, -20.0, 300.0]


def test_measure_on_an_oblique_grid():
    mask = np.zeros((20, 40, 10), bool)
    mask[5:8, 10:15, 2:5] = True  # 45 voxels, rows j 10..14
    mask[5:8, 30:32, 2:5] = True  # a second lesion, 18 voxels
    m = measure(mask, AFFINE)
    voxel = 0.5 * 2.0 * 0.8
    assert m["volume_cm3"] == pytest.approx(63 * voxel / 1000, abs=1e-4) and m["n_lesions"] == 2
    # superior coordinate of voxel centres: z = A[2] @ ijk + t; extent adds half a voxel's projection each side
    ijk = np.argwhere(mask)
    z = ijk @ AFFINE[2, :3] + AFFINE[2, 3]
    half = 0.5 * np.abs(AFFINE[2, :3]).sum()
    assert m["si_extent_mm"] == pytest.approx(z.max() - z.min() + 2 * half, abs=0.01)
    assert m["si_top_mm"] == pytest.approx(z.max() + half, abs=0.01)
    assert measure(np.zeros_like(mask), AFFINE)["volume_cm3"] == 0 and measure(np.zeros_like(mask), AFFINE)[
        "n_lesions"] == 0
    # the cord within the lesion's extent: only the voxel rows between its top and bottom
    cord = np.zeros_like(mask)
    cord[10:12, :, 5] = True
    inside = ((np.argwhere(cord) @ AFFINE[2, :3] + AFFINE[2, 3]) >= m["si_bottom_mm"]) & (
        (np.argwhere(cord) @ AFFINE[2, :3] + AFFINE[2, 3]) <= m["si_top_mm"])
    assert volume_within(cord, AFFINE, m["si_bottom_mm"], m["si_top_mm"]) == pytest.approx(
        inside.sum() * voxel / 1000, abs=1e-4)


def test_vertebral_levels_from_disc_labels_in_world_coordinates():
    assert (disc_name(3), disc_name(9), disc_name(25)) == ("C2/C3", "T1/T2", "L5/S1")
    labels = np.zeros((20, 60, 10), np.uint8)
    for n, j in ((3, 10), (4, 25), (5, 40)):  # j grows inferiorly: disc 3 highest
        labels[4, j, 5] = n
    heights = disc_heights(nib.Nifti1Image(labels, AFFINE))
    assert heights[3] > heights[4] > heights[5]
    # an extent from just below disc 3 down past disc 4: C3 to C4, one disc (C3/C4) inside
    discs, levels = span(heights[4] - 3, heights[3] - 1, heights)
    assert (discs, levels) == ("C3/C4", "C3-C4")
    discs, levels = span(heights[5] - 1, heights[3] + 1, heights)  # above disc 3: C2
    assert (discs, levels) == ("C2/C3,C3/C4,C4/C5", "C2-C5")
    assert span(0, 1, {}) == ("", "")


def test_agreement_of_an_ensemble():
    a = np.zeros((4, 10, 10, 10), np.float32)
    a[:, 2:6, 2:6, 2:6] = 0.9
    b = a.copy()
    b[:, 2:6, 2:6, 2:4] = 0.2  # the second model finds half of it
    agree = ensemble_agreement([a, a], ["tumor", "edema", "cavity", "wholetumor"], 0.5)
    assert agree["wholetumor"] == {"dice": 1.0, "std": 0.0}
    half = ensemble_agreement([a, b], ["tumor", "edema", "cavity", "wholetumor"], 0.5)["wholetumor"]
    assert half["dice"] == pytest.approx(2 * 32 / (64 + 32), abs=1e-4) and half["std"] > 0.1
    assert pairwise_dice([a[0] > 0.5]) is None and pairwise_dice([a[0] < 0, a[0] < 0]) == 1.0


def test_followup_arithmetic(tmp_path):
    vol = pd.DataFrame([
        {"participant_id": "sub-1", "session_id": s, "status": "ok", "class": "tumor", "volume_cm3": v}
        for s, v in (("ses-b", 3.0), ("ses-a", 2.0), ("ses-c", 0.0))])
    (tmp_path / "sub-1_sessions.tsv").write_text(
        "session_id\tacq_time\nses-a\t2020-01-01T00:00:00\nses-b\t2021-01-01T00:00:00\nses-c\t2021-07-02T12:00:00\n")
    f = followup_table(vol, read_sessions([str(tmp_path / "sub-1_sessions.tsv")]))
    assert list(f["from_session"]) == ["ses-a", "ses-b"] and list(f["change_cm3"]) == [1.0, -3.0]
    assert list(f["change_percent"]) == [50.0, -100.0]
    assert f["days"].tolist() == [366.0, 182.5]
    assert f["change_cm3_per_year"].tolist() == pytest.approx([365.25 / 366, -3 * 365.25 / 182.5], abs=1e-4)
    # without acquisition times: session order, no rate
    f = followup_table(vol, read_sessions([]))
    assert list(f["to_session"]) == ["ses-b", "ses-c"] and f["change_cm3_per_year"].isna().all()


# --------------------------------------------------------------------------- the workflow


@pytest.fixture(scope="module")
def new_cohort(tmp_path_factory) -> Path:
    """Four participants of the tiny models' cohort (seed 11) as a new dataset without lesion labels:
    sub-001 in two sessions (lesions grown 1.5 times, 180 days apart) with disc labels, sub-002 plain,
    sub-003 without a T1w, sub-004 with an unreadable T2w."""
    from imsct.cli import main

    out = tmp_path_factory.mktemp("apply") / "bids"
    assert main(["phantom", str(out), "--subjects", "8", "--seed", "11", "--size", "small", "--only", "sub-001",
                 "sub-002", "sub-003", "sub-004", "--followup", "sub-001", "--growth", "1.0", "1.5",
                 "--jobs", "2"]) == 0
    labels = out / "derivatives" / "labels"
    for p in sorted(labels.rglob("*.nii.gz")):  # the labels go beside the dataset (truth for the tests)
        if "discs" not in p.name or "sub-001" not in p.name:
            dst = out.parent / "truth" / p.relative_to(labels)
            dst.parent.mkdir(parents=True, exist_ok=True)
            p.rename(dst)
    (out / "sub-003/anat/sub-003_ce-gad_T1w.nii.gz").unlink()
    (out / "sub-004/anat/sub-004_T2w.nii.gz").write_bytes(b"not a NIfTI file")
    return out


@pytest.fixture(scope="module")
def split_models(tiny_models, tiny_model_folder, tmp_path_factory) -> Path:
    """A models folder as training writes it: split-00 (the best tumor model) and split-01 (the tumor
    model of the last epoch: another member of the ensemble without training another)."""
    import torch
    from helpers import TINY

    from imsct.training.export import write_model_folder

    root = tmp_path_factory.mktemp("models")
    shutil.copytree(tiny_model_folder, root / "split-00" / "onnx")
    tumor = tiny_models[0] / "tumor"
    last = torch.load(tumor / "last.pt", map_location="cpu", weights_only=True)
    best = torch.load(tumor / "best.pt", map_location="cpu", weights_only=True)
    torch.save({**best, "model": last["model"]}, root / "tumor-last.pt")
    write_model_folder(tiny_models[0] / "cord/best.pt", root / "tumor-last.pt", root / "split-01" / "onnx", "01", TINY)
    return root


def _truth(cohort: Path, scan: str) -> dict:
    """The phantom's class volumes (cm3) of a scan (``sub-001_ses-02``), with the whole tumor."""
    v = json.loads((cohort / "derivatives/phantom" / scan.replace("_", "/") / f"{scan}_truth.json").read_text())
    return {**v["volumes_cm3"], "wholetumor": sum(v["volumes_cm3"].values())}


def _truth_mask(cohort: Path, scan: str, cls: str) -> nib.Nifti1Image:
    """A ground-truth class mask of the phantom (the whole tumor: the union of the classes)."""
    root = cohort.parent / "truth" / scan.replace("_", "/") / "anat"
    names = ("tumor", "edema", "cavity") if cls == "wholetumor" else (cls,)
    imgs = [nib.load(root / f"{scan}_T2w_label-{c}_mask.nii.gz") for c in names]
    data = np.any([np.asanyarray(i.dataobj) > 0 for i in imgs], axis=0)
    return nib.Nifti1Image(data.astype(np.uint8), imgs[0].affine)


def test_volumetry_of_the_phantom_truth(new_cohort, tmp_path):
    """The ground-truth masks measured as if they were a segmentation: the volumes are the phantom's
    own (truth JSON), the levels are those of the drawn discs (truth JSON, world coordinates)."""
    from imsct.apply.volumetry import volumes_table

    scan, key = "sub-001_ses-02", "001_ses-02"
    masks = {}
    for cls in ("tumor", "edema", "cavity", "wholetumor"):
        nib.save(_truth_mask(new_cohort, scan, cls), tmp_path / f"{cls}.nii.gz")
        masks[cls] = str(tmp_path / f"{cls}.nii.gz")
    masks["cord"] = masks["wholetumor"]
    record = {"key": key, "participant_id": "sub-001", "session_id": "ses-02", "status": "ok", "masks": masks,
              "agreement": {"wholetumor": {"dice": 0.5, "std": 0.2}}}
    (tmp_path / "segment.json").write_text(json.dumps(record))
    discs = new_cohort / "derivatives/labels/sub-001/ses-02/anat/sub-001_ses-02_T2w_label-discs_dseg.nii.gz"
    vol = volumes_table([str(tmp_path / "segment.json")], {key: str(discs)}, 0.7).set_index("class")
    truth = json.loads((new_cohort / "derivatives/phantom/sub-001/ses-02/sub-001_ses-02_truth.json").read_text())
    for cls, v in _truth(new_cohort, scan).items():
        assert vol.loc[cls, "volume_cm3"] == pytest.approx(v, abs=1e-3), cls
    w = vol.loc["wholetumor"]
    assert w["cord_volume_cm3"] == pytest.approx(w["volume_cm3"], abs=1e-3) and bool(w["flagged"])
    inside = sorted(int(n) for n, (_, _, z) in truth["discs_t2w_world"].items()
                    if w["si_bottom_mm"] <= z <= w["si_top_mm"])
    assert w["discs"] == ",".join(disc_name(n) for n in inside)
    assert w["n_lesions"] >= 1 and w["si_extent_mm"] > 0


@pytest.mark.slow
def test_apply_on_a_new_cohort(new_cohort, split_models, tmp_path):
    from test_workflow import batched, job_counts, snakemake

    over = tmp_path / "apply.yaml"
    over.write_text("apply: {probabilities: true, agreement_threshold: 0.7}\n")
    args = ["--cores", "2", "apply", "--configfile", "config/config.yaml", str(over), "--config",
            f"results={tmp_path}/results", f"resources={tmp_path}/resources", f"bids_dir={new_cohort}",
            f"models={split_models}"]
    r = snakemake("-n", *args)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    counts = job_counts(r.stdout)
    # 5 scans in batches of batching.infer (4 in the demo config); nothing trains
    assert batched(counts, "apply") == 2 and "train_cord" not in counts
    r = snakemake(*args)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    res = tmp_path / "results" / "apply"
    deriv = res / "derivatives" / "imsct"
    desc = json.loads((deriv / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and [m["split"] for m in desc["imsct_models"]] == ["00", "01"]
    for scan, anat in (("sub-001_ses-01", "sub-001/ses-01/anat"), ("sub-001_ses-02", "sub-001/ses-02/anat"),
                       ("sub-002", "sub-002/anat")):
        t2 = nib.load(next((new_cohort / anat).glob("*_T2w.nii.gz")))
        for cls in ("tumor", "edema", "cavity", "wholetumor", "cord"):
            m = nib.load(deriv / anat / f"{scan}_label-{cls}_mask.nii.gz")
            assert m.shape == t2.shape and np.allclose(m.affine, t2.affine)
            assert json.loads((deriv / anat / f"{scan}_label-{cls}_mask.json").read_text())["Sources"]
        p = np.asanyarray(nib.load(deriv / anat / f"{scan}_label-wholetumor_probseg.nii.gz").dataobj)
        assert p.shape == t2.shape and 0 <= p.min() and p.max() <= 1
    assert not (deriv / "sub-004").exists()  # skipped: no masks, no empty folder
    # sub-003 has no T1w: segmented on the T2w alone, and its sidecars say so
    side = json.loads((deriv / "sub-003/anat/sub-003_label-wholetumor_mask.json").read_text())
    assert side["contrasts"] == ["T2w"] and side["t1w_missing"] is True

    vol = pd.read_csv(res / "volumes.tsv", sep="\t", dtype={"key": str})
    status = vol.drop_duplicates("key").set_index("key")["status"]
    assert status["003"] == "ok" and status["004"].startswith("skipped: ") and "004" in status["004"]
    contrasts = vol.drop_duplicates("key").set_index("key")["contrasts"]
    assert contrasts["003"] == "T2w" and contrasts["002"] == "T2w+T1w"
    ok = vol[vol["status"] == "ok"].set_index(["key", "class"])
    assert len(ok) == 4 * 4
    for key, scan, anat in (("001_ses-01", "sub-001_ses-01", "sub-001/ses-01/anat"),
                            ("001_ses-02", "sub-001_ses-02", "sub-001/ses-02/anat"),
                            ("002", "sub-002", "sub-002/anat")):
        truth = _truth(new_cohort, scan)
        for cls in ("tumor", "edema", "cavity", "wholetumor"):
            # the table against the phantom's truth volume: off by no more than the segmentation error
            # (the voxels where the written mask and the truth differ, on the native grid); the tiny test
            # models over-segment several-fold, so this checks the measurement, not the models
            pred = nib.load(deriv / anat / f"{scan}_label-{cls}_mask.nii.gz")
            gt = np.asanyarray(_truth_mask(new_cohort, scan, cls).dataobj) > 0
            p = np.asanyarray(pred.dataobj) > 0
            voxel = abs(np.linalg.det(pred.affine[:3, :3])) / 1000
            assert abs(ok.loc[(key, cls), "volume_cm3"] - truth[cls]) <= np.sum(p ^ gt) * voxel + 1e-3, (key, cls)
            assert ok.loc[(key, cls), "volume_cm3"] == pytest.approx(p.sum() * voxel, abs=1e-3)
        # and they find the lesion
        assert (p & gt).any() and ok.loc[(key, "wholetumor"), "n_lesions"] >= 1
        assert ok.loc[(key, "wholetumor"), "si_extent_mm"] > 5
        assert ok.loc[(key, "wholetumor"), "cord_volume_cm3"] > 0
        assert 0 <= ok.loc[(key, "wholetumor"), "agreement_dice"] <= 1
    # disc labels only for sub-001: its levels are named, sub-002's are not
    assert re.fullmatch(r"[CTLS]\d+(-[CTLS]\d+)?", ok.loc[("001_ses-01", "wholetumor"), "vertebral_levels"])
    assert pd.isna(ok.loc[("002", "wholetumor"), "vertebral_levels"])
    # the flag follows the agreement and the threshold
    assert (ok["flagged"] == (ok.groupby(level="key")["agreement_dice"].transform("last") < 0.7)).all()

    fol = pd.read_csv(res / "followup.tsv", sep="\t")
    assert set(fol["participant_id"]) == {"sub-001"} and len(fol) == 4
    for _, row in fol.iterrows():
        a = ok.loc[("001_ses-01", row["class"]), "volume_cm3"]
        b = ok.loc[("001_ses-02", row["class"]), "volume_cm3"]
        assert (row["from_cm3"], row["to_cm3"]) == (a, b)
        assert row["change_cm3"] == pytest.approx(b - a, abs=1e-4) and row["days"] == 180
        if a > 0:
            assert row["change_percent"] == pytest.approx(100 * (b - a) / a, abs=0.01)
        assert row["change_cm3_per_year"] == pytest.approx((b - a) * 365.25 / 180, abs=1e-3)
    assert (res / "figures/growth/sub-001_growth.png").stat().st_size > 5000

    html = (res / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 1 + 4 and 'src="http' not in html
    assert "skipped: " in html and "sub-001" in html
    check_report_renders(res / "report.html", tmp_path)


def check_report_renders(report: Path, tmp_path: Path):
    """Open the page in headless Chromium: every embedded image decodes (naturalWidth > 0) and the page
    is not blank."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs it as root)")
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace(
        "</body>", "<script>window.addEventListener('load',()=>{const i=[...document.images];"
        "document.body.setAttribute('data-decoded',i.filter(x=>x.complete&&x.naturalWidth>0).length+'/'+i.length)})"
        "</script></body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    decoded = re.search(r'data-decoded="(\d+)/(\d+)"', dom)
    assert decoded and decoded.group(1) == decoded.group(2) != "0", dom[-500:]
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,3000", report.as_uri()],
                   capture_output=True, timeout=120)
    from PIL import Image

    px = np.asarray(Image.open(shot).convert("L"), float)
    assert px.std() > 10  # figures and tables, not a blank page
