"""The synthetic cohort: determinism, geometry, contrasts, volumes, motion and BIDS layout."""

from __future__ import annotations

import filecmp
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest

from imsct.bids import Naming
from imsct.classes import LESIONS
from imsct.phantom.cohort import cohort_volumes, generate_subject, plan_cohort, table2_comparison
from imsct.phantom.lesions import TABLE2, lognormal_params, volume_cm3, volume_distribution
from imsct.phantom.render import CORD, CSF, TUMOR_ENH
from imsct.phantom.subject import make_subject, realised_volumes

N_FULL = 36
SEED_FULL = 5


def _summary(spec):
    """Per-subject facts measured on a full-size subject (run in a worker process)."""
    d = make_subject(spec, SEED_FULL, "full")
    mean = lambda img, tis, t: float(img[tis == t].mean()) if np.count_nonzero(tis == t) >= 5 else None  # noqa: E731
    return {
        "type": spec.tumor_type,
        "volumes": d.truth["volumes_cm3"],
        "t2_csf": mean(d.t2w, d.t2w_tissue, CSF),
        "t2_cord": mean(d.t2w, d.t2w_tissue, CORD),
        "t1_csf": mean(d.t1w, d.t1w_tissue, CSF),
        "t1_cord": mean(d.t1w, d.t1w_tissue, CORD),
        "t1_enh": mean(d.t1w, d.t1w_tissue, TUMOR_ENH),
        "in_plane": d.truth["t2w_grid"]["spacing_ras"][1],
        "thickness": d.truth["t2w_grid"]["spacing_ras"][0],
        "fov_si": d.truth["t2w_grid"]["spacing_ras"][2] * max(d.t2w.shape),
        "orientation": d.truth["t2w_grid"]["orientation"],
    }


@pytest.fixture(scope="module")
def full_cohort():
    with ProcessPoolExecutor(2) as pool:
        return list(pool.map(_summary, plan_cohort(N_FULL, SEED_FULL)))


def test_plan_follows_paper_proportions():
    specs = plan_cohort(343, 0)
    types = [s.tumor_type for s in specs]
    assert (types.count("astrocytoma"), types.count("ependymoma"), types.count("hemangioblastoma")) == (101, 122, 120)
    assert sum(s.tumor_region == "lumbar" for s in specs) == 45
    assert 0.08 <= np.mean([s.large_motion for s in specs]) <= 0.12
    assert plan_cohort(343, 0) == specs  # deterministic
    males = {t: np.mean([s.sex == "M" for s in specs if s.tumor_type == t]) for t in TABLE2}
    assert all(0.45 < m < 0.72 for m in males.values())
    ages = [s.age for s in specs]
    assert min(ages) >= 1 and max(ages) <= 76 and 30 <= np.median(ages) <= 44


def test_same_seed_same_bytes(tmp_path):
    spec = plan_cohort(4, 3)[2]
    a = generate_subject(tmp_path / "a", spec, 3, "small", Naming())
    b = generate_subject(tmp_path / "b", spec, 3, "small", Naming())
    assert a.keys() == b.keys()
    for k in a:
        assert filecmp.cmp(a[k], b[k], shallow=False), k
    c = generate_subject(tmp_path / "c", spec, 4, "small", Naming())
    assert not filecmp.cmp(a["t2w"], c["t2w"], shallow=False)


@pytest.mark.parametrize("index", range(6))
def test_labels_exclusive_and_inside_the_thecal_sac(index):
    spec = plan_cohort(6, 21)[index]
    d = make_subject(spec, 21, "small")
    stack = np.stack([d.labels[c] for c in LESIONS])
    assert set(np.unique(stack)) <= {0, 1}
    assert stack.sum(axis=0).max() <= 1, "tumor, edema and cavity must be mutually exclusive"
    assert stack.any(), "every subject has a tumor in its field of view"
    # Every labelled voxel centre lies inside the thecal sac drawn by the anatomy (in mm, with half a
    # voxel of tolerance for partial volume).
    anat = d.anatomy
    ijk = np.argwhere(stack.any(axis=0))
    xyz = nib.affines.apply_affine(d.t2w_affine, ijk)  # the T2w header is the patient frame
    i = anat.idx(xyz[:, 2])
    dx = xyz[:, 0] - anat.cx[i]
    n = (xyz[:, 1] - anat.cy[i]) * anat.cos_t[i]
    half_voxel = 0.5 * np.sqrt(np.sum(np.square(nib.affines.voxel_sizes(d.t2w_affine)[:3])))
    rx, ry = anat.sac_rx[i] + half_voxel, anat.sac_ry[i] + half_voxel
    inside = dx**2 / rx**2 + (n - anat.sac_off[i]) ** 2 / ry**2 <= 1
    assert inside.mean() == 1.0, f"{(~inside).sum()} labelled voxels outside the sac"


def test_contrasts_match_the_paper(full_cohort):
    # (a holocord syrinx or edema may leave no normal cord in a field of view)
    assert sum(s["t2_cord"] is None for s in full_cohort) <= 2
    for s in [s for s in full_cohort if s["t2_cord"] is not None]:
        assert s["t2_csf"] > 1.15 * s["t2_cord"], "CSF brighter than cord on T2w (partial volume included)"
        if s["t1_csf"] is not None and s["t1_cord"] is not None:
            assert s["t1_csf"] < 0.9 * s["t1_cord"], "CSF darker than cord on T1w (partial volume included)"
        if s["type"] in ("ependymoma", "hemangioblastoma") and None not in (s["t1_enh"], s["t1_cord"]):
            assert s["t1_enh"] > 1.3 * s["t1_cord"], "enhancing tumor brighter than cord on Gd-T1w"
    enh = [s for s in full_cohort if s["type"] != "astrocytoma" and s["t1_enh"] is not None]
    assert len(enh) >= 0.8 * sum(s["type"] != "astrocytoma" for s in full_cohort)


def test_volumes_and_prevalences_follow_table_2(full_cohort):
    by_type = {t: [s["volumes"] for s in full_cohort if s["type"] == t] for t in TABLE2}
    tumor_mean = {t: np.mean([v["tumor"] for v in vs]) for t, vs in by_type.items()}
    for t, (m, _) in ((t, TABLE2[t]["tumor"]) for t in TABLE2):
        assert 0.5 * m <= tumor_mean[t] <= 1.6 * m, (t, tumor_mean[t], m)
    assert tumor_mean["hemangioblastoma"] < min(tumor_mean["astrocytoma"], tumor_mean["ependymoma"])
    all_v = [v for vs in by_type.values() for v in vs]
    assert all(0.05 < v["tumor"] < 60 for v in all_v)
    edema = np.mean([v["edema"] > 0 for v in all_v])
    cavity = np.mean([v["cavity"] > 0 for v in all_v])
    assert 0.3 <= edema <= 0.75 and 0.45 <= cavity <= 0.85, (edema, cavity)
    # Hemangioblastomas come with the largest edema and cavities (Table 2).
    mean_present = lambda t, k: np.mean([v[k] for v in by_type[t] if v[k] > 0] or [0])  # noqa: E731
    assert mean_present("hemangioblastoma", "edema") > mean_present("ependymoma", "edema")


def test_acquisition_ranges(full_cohort):
    assert all(0.34 <= s["in_plane"] <= 1.33 for s in full_cohort)
    assert all(1.5 <= s["thickness"] <= 5.2 for s in full_cohort)
    assert all(140 <= s["fov_si"] <= 460 for s in full_cohort)
    assert len({s["orientation"] for s in full_cohort}) >= 4, "storage orientations vary"


def test_scanner_misalignment_matches_drawn_motion(small_cohort):
    """Disc labels are the same anatomical points in both scans: their scanner positions differ by
    exactly the saved motion (to voxel rounding), so scanner alignment leaves that motion to undo."""
    n_checked = 0
    for truth_p in sorted((small_cohort / "derivatives" / "phantom").glob("sub-*/sub-*_truth.json")):
        truth = json.loads(truth_p.read_text())
        sub = truth["participant_id"]
        m = np.asarray(truth["motion"]["t1w_from_t2w_world"])
        d2 = nib.load(small_cohort / f"derivatives/labels/{sub}/anat/{sub}_T2w_label-discs_dseg.nii.gz")
        d1 = nib.load(small_cohort / f"derivatives/labels/{sub}/anat/{sub}_ce-gad_T1w_label-discs_dseg.nii.gz")
        a2, a1 = np.asanyarray(d2.dataobj), np.asanyarray(d1.dataobj)
        tol = 0.5 * (np.linalg.norm(nib.affines.voxel_sizes(d2.affine))
                     + np.linalg.norm(nib.affines.voxel_sizes(d1.affine)))
        shared = set(np.unique(a2)) & set(np.unique(a1)) - {0}
        for v in shared:
            p2 = nib.affines.apply_affine(d2.affine, np.argwhere(a2 == v)[0])
            p1 = nib.affines.apply_affine(d1.affine, np.argwhere(a1 == v)[0])
            assert np.linalg.norm(m[:3, :3] @ p2 + m[:3, 3] - p1) <= tol
            if truth["motion"]["translation_mm"] > 2 * tol:
                assert np.linalg.norm(p2 - p1) > tol  # the motion is really there
            n_checked += 1
    assert n_checked >= 8


def test_large_motion_subjects_exist_and_are_large():
    specs = plan_cohort(20, 9)
    large = [s for s in specs if s.large_motion]
    assert len(large) == 2
    d = make_subject(large[0], 9, "small")
    assert d.truth["motion"]["large"] and d.truth["motion"]["translation_mm"] >= 20


def test_bids_layout_and_qc(small_cohort):
    subs = sorted(p.name for p in small_cohort.glob("sub-*"))
    assert subs == [f"sub-{i:03d}" for i in range(1, 9)]
    for sub in subs:
        t2 = nib.load(small_cohort / sub / "anat" / f"{sub}_T2w.nii.gz")
        t1 = nib.load(small_cohort / sub / "anat" / f"{sub}_ce-gad_T1w.nii.gz")
        assert t2.ndim == 3 and t1.ndim == 3 and t2.get_data_dtype() == np.int16
        assert not np.allclose(t2.affine, t1.affine)  # own grids
        for c in (*LESIONS, "centerline", "discs"):
            lab = nib.load(small_cohort / f"derivatives/labels/{sub}/anat/{sub}_T2w_label-{c}_mask.nii.gz"
                           if c != "discs"
                           else small_cohort / f"derivatives/labels/{sub}/anat/{sub}_T2w_label-discs_dseg.nii.gz")
            assert lab.shape == t2.shape and np.allclose(lab.affine, t2.affine)
        cl_path = small_cohort / f"derivatives/labels/{sub}/anat/{sub}_T2w_label-centerline_mask.nii.gz"
        cl = np.asanyarray(nib.load(cl_path).dataobj)
        assert cl.sum() >= 0.8 * max(t2.shape)  # one voxel per superior-inferior row
        png = small_cohort / "derivatives" / "phantom" / "qc" / f"{sub}_qc.png"
        assert png.stat().st_size > 20_000
    part = (small_cohort / "participants.tsv").read_text().splitlines()
    assert part[0].split("\t") == ["participant_id", "tumor_type", "sex", "age", "tumor_region", "tumor_grade",
                                   "acquisition"]
    for row in part[1:]:
        f = row.split("\t")
        assert f[5] in (("low", "high") if f[1] == "astrocytoma" else ("n/a",)), row
    assert len(part) == 9
    assert json.loads((small_cohort / "dataset_description.json").read_text())["BIDSVersion"]


# --- lesion volumes (Table 2), astrocytoma grades, normal cord in small phantoms --------------------


def test_plan_draws_grades_and_prevalences():
    specs = plan_cohort(343, 2021)
    astro = [s for s in specs if s.tumor_type == "astrocytoma"]
    assert sum(s.tumor_grade == "high" for s in astro) == 36 and all(s.tumor_grade in ("low", "high") for s in astro)
    assert all(s.tumor_grade is None for s in specs if s.tumor_type != "astrocytoma")
    high = [s for s in astro if s.tumor_grade == "high"]
    low = [s for s in astro if s.tumor_grade == "low"]
    assert np.mean([s.has_edema for s in high]) > np.mean([s.has_edema for s in low]) + 0.2
    assert 0.49 <= np.mean([s.has_edema for s in specs]) <= 0.54  # paper: 51 %
    assert 0.65 <= np.mean([s.has_cavity for s in specs]) <= 0.69  # paper: 67 %
    # stratified quantiles: evenly spread over (0, 1) within each group
    q = [s.volume_quantiles[0] for s in specs if s.tumor_type == "ependymoma"]
    assert np.histogram(q, bins=4, range=(0, 1))[0].min() >= 29
    assert all(s.volume_quantiles[1] == 0 for s in specs if not s.has_edema)


def test_clipped_lognormals_reproduce_table_2():
    """The drawn distributions (before any anatomy) have Table 2's mean and std."""
    u = (np.arange(2000) + 0.5) / 2000
    for t in TABLE2:
        for c, (m, sd) in TABLE2[t].items():
            if t == "astrocytoma":  # 65 low-grade and 36 high-grade; edema weighted by prevalence
                w = {"low": 65 * (0.4 if c == "edema" else 1), "high": 36 * (0.7 if c == "edema" else 1)}
                v = np.concatenate([np.repeat([volume_cm3(t, g, c, x) for x in u], round(w[g] * 10)) for g in w])
            else:
                v = np.array([volume_cm3(t, None, c, x) for x in u])
            assert abs(v.mean() / m - 1) < 0.03 and abs(v.std() / sd - 1) < 0.05, (t, c, v.mean(), v.std())
            lo, hi = volume_distribution(t, None, c)[2:]
            assert v.min() >= lo and v.max() <= hi
    assert lognormal_params(8.1, 2.9, 1.5, 20.0) == lognormal_params(8.1, 2.9, 1.5, 20.0)


def test_fast_volumes_equal_written_masks():
    """`realised_volumes` (no image rendering) gives exactly the volumes of the written masks."""
    specs = plan_cohort(10, 4)
    for s in (specs[0], specs[3]):
        for size in ("small", "full") if s is specs[0] else ("small",):
            d = make_subject(s, 4, size)
            r = realised_volumes(s, 4, size)
            voxel = float(np.prod(nib.affines.voxel_sizes(d.t2w_affine)))
            masks = {c: round(float(d.labels[c].sum()) * voxel / 1000, 4) for c in LESIONS}
            assert r["volumes_cm3"] == masks == d.truth["volumes_cm3"]


def test_realised_volumes_near_table_2():
    """60 full-size subjects (fast path): every type and class mean within 30 % of Table 2 and std
    within 45 % (the paper-size cohort is within 10 %: `python benchmarks/run.py --phantom-volumes`)."""
    cmp = table2_comparison(cohort_volumes(60, 5, "full", jobs=2))
    assert (cmp["n"] >= 5).all(), cmp
    bad = cmp[(abs(cmp["mean_ratio"] - 1) > 0.3) | (abs(cmp["std_ratio"] - 1) > 0.45)]
    assert bad.empty, bad.to_string()
    # hemangioblastomas: smallest tumors, largest edema and cavities (Table 2)
    m = cmp.set_index(["tumor_type", "class"])["mean"]
    assert m["hemangioblastoma", "tumor"] < min(m["astrocytoma", "tumor"], m["ependymoma", "tumor"])
    assert m["hemangioblastoma", "edema"] > max(m["astrocytoma", "edema"], m["ependymoma", "edema"])


def test_high_grade_astrocytomas_enhance_and_are_recorded():
    specs = [s for s in plan_cohort(40, 8) if s.tumor_type == "astrocytoma"]
    looks = {}
    for s in specs:
        d = make_subject(s, 8, "small")
        assert d.truth["tumor_grade"] == s.tumor_grade
        looks.setdefault(s.tumor_grade, []).append(d.truth["appearance"]["enhancing_fraction"])
    assert min(looks["high"]) >= 0.35 > max(looks["low"])


def _lesion_free_mm(d):
    """Millimetres of field of view above and below the whole-tumor mask (superior-inferior), and
    whether there is cord (not the lesion) in both margins."""
    canon = nib.as_closest_canonical(nib.Nifti1Image(np.stack([d.labels[c] for c in LESIONS], -1), d.t2w_affine))
    les = np.asanyarray(canon.dataobj).any(-1)
    tissue = np.asanyarray(nib.as_closest_canonical(nib.Nifti1Image(d.t2w_tissue, d.t2w_affine)).dataobj)
    rows = np.flatnonzero(les.any(axis=(0, 1)))
    dz = canon.header.get_zooms()[2]
    below, above = rows.min() * dz, (les.shape[2] - 1 - rows.max()) * dz
    cord_rows = (tissue == CORD).any(axis=(0, 1))
    return below, above, cord_rows[: rows.min()].any(), cord_rows[rows.max() + 1:].any()


def test_small_phantoms_show_normal_cord_above_and_below():
    """Demo-size subjects: the lesion complex is shrunk along z so >= 15 mm of lesion-free cord shows
    above and below it (lumbar tumors: conus/cauda below) in at least 90 % of subjects."""
    specs = plan_cohort(20, 42)
    ok = []
    for s in specs:
        d = make_subject(s, 42, "small")
        below, above, cord_below, cord_above = _lesion_free_mm(d)
        assert max(d.t2w.shape) <= 160  # grids stay small
        ok.append(min(below, above) >= 15 and cord_above and (cord_below or s.tumor_region == "lumbar"))
    assert np.mean(ok) >= 0.9, ok


def test_block_fraction_only_adds_the_acquisition():
    """`block_fraction` picks which subjects are 3-D research blocks (cervical first, never a
    large-motion one) from its own random stream: everything else in the plan stays as without."""
    plain = plan_cohort(40, 42)
    assert all(s.acquisition == "sagittal" for s in plain)
    mixed = plan_cohort(40, 42, 0.25)
    blocks = [s for s in mixed if s.acquisition == "block"]
    assert len(blocks) == 10
    assert all(s.tumor_region == "cervical" and not s.large_motion for s in blocks)
    assert [replace(s, acquisition="sagittal") for s in mixed] == plain
    n_blocks = len([s for s in plan_cohort(40, 42, 1.0) if s.acquisition == "block"])
    assert n_blocks == 40 - sum(s.large_motion for s in plain)
    with pytest.raises(ValueError, match="block_fraction"):
        plan_cohort(10, 0, 1.5)


def test_narrow_fraction_only_marks_subjects():
    """`narrow_fraction` marks subjects from a stream of their own: the rest of the plan is as without
    it; lumbar subjects never."""
    plain = plan_cohort(40, 42, 0.25)
    marked = plan_cohort(40, 42, 0.25, 0.3)
    assert not any(s.narrow for s in plain)
    assert [replace(s, narrow=False) for s in marked] == plain
    assert 6 <= sum(s.narrow for s in marked) <= 18
    every = plan_cohort(40, 42, 0, 1.0)
    assert any(s.tumor_region == "lumbar" for s in every)
    assert all(s.narrow == (s.tumor_region != "lumbar") for s in every)  # a tumor at the conus has no width to fit
    with pytest.raises(ValueError, match="narrow_fraction"):
        plan_cohort(10, 0, 0, -0.1)


def test_narrow_lesions_barely_widen_the_cord():
    """A narrow subject's tumor and cavity are held within the cord's own width: its cord's
    cross-section grows at most 2.5-fold (edema swelling and the rim included) where the widened-cord
    version of the same draw grows it far more, and its cavity, long and thin, holds less."""
    from imsct.phantom.anatomy import draw_anatomy
    from imsct.phantom.subject import draw_subject

    checked = 0
    for spec in plan_cohort(24, 42, 0.25):
        if not spec.has_cavity or spec.tumor_region == "lumbar":
            continue
        native = draw_anatomy(np.random.default_rng([42, spec.index]), spec.age, spec.sex)  # before expand_cord
        area = native.cord_rx * native.cord_ry
        rows = area > 0.5 * np.median(area[area > 0])  # not the tapering conus
        growth = {}
        for kind, s in (("wide", spec), ("thin", replace(spec, narrow=True))):
            a = draw_subject(s, 42, "small").anat
            growth[kind] = float(np.max(a.cord_rx[rows] * a.cord_ry[rows] / area[rows]))
        assert growth["thin"] <= 2.5 and growth["thin"] < growth["wide"], (spec.participant_id, growth)
        vols = {k: realised_volumes(s, 42, "small")["volumes_cm3"]["cavity"]
                for k, s in (("wide", spec), ("thin", replace(spec, narrow=True)))}
        assert 0 < vols["thin"] < vols["wide"], (spec.participant_id, vols)
        checked += 1
    assert checked >= 10


def test_research_t1w_table_changes_only_the_blocks_t1w(monkeypatch):
    """The gradient-echo T1w table draws from its own stream: with its factors at 1 (the clinical
    table) a block subject's T2w, labels and T1w grid are the same bytes, and only the T1w's tissue
    values move: its cord brighter against the image median."""
    from imsct.phantom import subject as subject_module

    spec = next(s for s in plan_cohort(12, 42, 0.5) if s.acquisition == "block")
    research = make_subject(spec, 42, "small")
    clinical_block = replace(subject_module.BLOCK, t1_background=(1.0, 1.0), t1_fat=(1.0, 1.0))
    monkeypatch.setattr(subject_module, "BLOCK", clinical_block)
    clinical = make_subject(spec, 42, "small")
    assert np.array_equal(research.t2w, clinical.t2w) and np.array_equal(research.t1w_affine, clinical.t1w_affine)
    assert all(np.array_equal(research.labels[k], clinical.labels[k]) for k in research.labels)
    assert np.array_equal(research.t1w_tissue, clinical.t1w_tissue) and not np.array_equal(research.t1w, clinical.t1w)

    def cord_over_median(d):
        t1 = d.t1w.astype(np.float32)
        return np.median(t1[d.t1w_tissue == CORD]) / np.median(t1)

    assert cord_over_median(research) > 1.05 * cord_over_median(clinical)


def test_block_subjects_are_isotropic_research_blocks(tmp_path):
    """A block subject: both scans isotropic 0.8-1 mm blocks of 40-80 mm each way around the cord,
    >= 9 mm of normal cord above and below the lesions, a heavily T2-weighted T2w where the cord
    stands well above the dark background (the real pair: cord 3.8x the image median; a clinical
    sagittal phantom: 1.5-1.8x) and a gradient-echo T1w whose cord lies among its brightest tissues
    (the real T1w: cord 1.58x the median, its brightest 1 % 1.9x)."""
    specs = plan_cohort(16, 42, 0.5)
    blocks = [s for s in specs if s.acquisition == "block"][:4]
    ratios, t1_ratios = {}, []
    for s in blocks + [s for s in specs if s.acquisition == "sagittal"][:4]:
        d = make_subject(s, 42, "small")
        t2 = d.t2w.astype(np.float32)
        ratios.setdefault(s.acquisition, []).append(np.median(t2[d.t2w_tissue == CORD]) / np.median(t2))
        if s.acquisition == "block":
            t1 = d.t1w.astype(np.float32)
            t1_ratios.append((np.median(t1[d.t1w_tissue == CORD]) / np.median(t1),
                              np.percentile(t1, 99) / np.median(t1)))
        if s.acquisition == "sagittal":
            continue
        assert d.truth["acquisition"] == "block"
        for img, aff in ((d.t2w, d.t2w_affine), (d.t1w, d.t1w_affine)):
            zooms = nib.affines.voxel_sizes(aff)
            assert np.allclose(zooms, zooms[0]) and 0.8 <= zooms[0] <= 1.0
            assert all(38 <= n * zooms[0] <= 82 for n in img.shape), img.shape
        below, above, cord_below, cord_above = _lesion_free_mm(d)
        assert min(below, above) >= 9 and cord_below and cord_above, (below, above)
        assert np.median(t2[d.t2w_tissue == CSF]) > 2.5 * np.median(t2[d.t2w_tissue == CORD])
    assert min(ratios["block"]) > 2.0 > max(ratios["sagittal"]), ratios
    cord_t1, top_t1 = np.array(t1_ratios).T
    assert 1.3 < cord_t1.min() and cord_t1.max() < 2.1 and top_t1.max() < 2.6, t1_ratios
    paths = generate_subject(tmp_path, blocks[0], 42, "small", Naming())
    assert json.loads(paths["t2w"].with_name(paths["t2w"].name.replace(".nii.gz", ".json")).read_text())[
        "MRAcquisitionType"] == "3D"


def test_cli_narrow_fraction_is_recorded(tmp_path):
    """`imsct phantom --narrow-fraction` reaches the subjects: the dataset counts them and each truth
    JSON says which lesions were held within the cord's width."""
    from imsct.cli import main

    out = tmp_path / "bids"
    args = ["--subjects", "2", "--seed", "5", "--size", "small", "--narrow-fraction", "1"]
    assert main(["phantom", str(out), *args]) == 0
    assert json.loads((out / "dataset_description.json").read_text())["imsct"]["narrow_subjects"] == 2
    for sub in ("sub-001", "sub-002"):
        truth = json.loads((out / "derivatives/phantom" / sub / f"{sub}_truth.json").read_text())
        assert truth["lesion_model"]["narrow"] is True


def test_contrast_weighting_only_sets_powers():
    """`contrast_weighting` draws each subject's powers from a stream of its own: the rest of the plan
    is as without it; powers fall within their ranges, blocks keep their own T2w weighting; bad ranges
    are refused by name."""
    plain = plan_cohort(40, 42, 0.25)
    weighted = plan_cohort(40, 42, 0.25, 0, {"t2w": [1, 2], "t1w": [0.6, 1]})
    assert all(s.contrast_power == (1.0, 1.0) for s in plain)
    assert plan_cohort(40, 42, 0.25, 0, {"t2w": [1, 1], "t1w": [1, 1]}) == plain
    assert [replace(s, contrast_power=(1.0, 1.0)) for s in weighted] == plain
    for s in weighted:
        w2, w1 = s.contrast_power
        assert (w2 == 1.0) if s.acquisition == "block" else 1 <= w2 <= 2, s
        assert 0.6 <= w1 <= 1
    assert np.std([s.contrast_power[0] for s in weighted if s.acquisition != "block"]) > 0.15  # drawn, not one value
    assert np.std([s.contrast_power[1] for s in weighted]) > 0.08
    for bad, match in (({"t2w": [2, 1]}, "t2w"), ({"t1w": [0, 1]}, "t1w"), ({"pd": [1, 1]}, "t2w and t1w")):
        with pytest.raises(ValueError, match=match):
            plan_cohort(10, 0, 0, 0, bad)


def test_contrast_weighting_changes_only_tissue_contrasts():
    """A subject's powers change its tissue values and nothing else (labels, tissue maps, grids), and
    in the direction of the sequence they stand for: a T2w power above 1 (longer echo time) darkens the
    cord against CSF, a T1w power below 1 (flatter T1 weighting) brings CSF closer to the cord."""
    spec = next(s for s in plan_cohort(12, 42) if s.acquisition == "sagittal" and s.has_cavity)
    nominal = make_subject(spec, 42, "small")
    weighted = make_subject(replace(spec, contrast_power=(1.8, 0.6)), 42, "small")
    assert all(np.array_equal(nominal.labels[k], weighted.labels[k]) for k in nominal.labels)
    for same in ("t2w_tissue", "t1w_tissue", "t2w_affine", "t1w_affine"):
        assert np.array_equal(getattr(nominal, same), getattr(weighted, same)), same
    assert not np.array_equal(nominal.t2w, weighted.t2w) and not np.array_equal(nominal.t1w, weighted.t1w)
    assert weighted.truth["appearance"]["contrast_power"] == {"t2w": 1.8, "t1w": 0.6}

    def ratio(d, img, tis, a, b):
        x = getattr(d, img).astype(np.float32)
        t = getattr(d, tis)
        return np.median(x[t == a]) / np.median(x[t == b])

    assert ratio(weighted, "t2w", "t2w_tissue", CSF, CORD) > 1.5 * ratio(nominal, "t2w", "t2w_tissue", CSF, CORD)
    assert ratio(weighted, "t1w", "t1w_tissue", CSF, CORD) > 1.2 * ratio(nominal, "t1w", "t1w_tissue", CSF, CORD)


def test_contrast_weighting_from_the_workflow_config():
    """The workflow plans from its validated `synthetic` section: absent or partial, the schema fills
    the nominal [1, 1] ranges, so an absent option is the plan without it."""
    from imsct.config import validate_config
    from imsct.phantom.plan import plan_from_config

    def plan(synthetic):
        return plan_from_config(validate_config({"synthetic": {"subjects": 12, "seed": 42, **synthetic}})["synthetic"])

    assert plan({}) == plan_cohort(12, 42)
    partial = plan({"contrast_weighting": {"t2w": [1.5, 1.5]}})
    assert {s.contrast_power for s in partial} == {(1.5, 1.0)}


def test_cli_contrast_weighting_is_recorded(tmp_path):
    """`imsct phantom --t2w-power/--t1w-power` reach the subjects: the dataset counts them and each
    truth JSON holds its powers."""
    from imsct.cli import main

    out = tmp_path / "bids"
    args = ["--subjects", "2", "--seed", "5", "--size", "small", "--t2w-power", "1.2", "1.6",
            "--t1w-power", "0.7", "0.9"]
    assert main(["phantom", str(out), *args]) == 0
    assert json.loads((out / "dataset_description.json").read_text())["imsct"]["weighted_subjects"] == 2
    for sub in ("sub-001", "sub-002"):
        power = json.loads((out / "derivatives/phantom" / sub / f"{sub}_truth.json").read_text())["appearance"][
            "contrast_power"]
        assert 1.2 <= power["t2w"] <= 1.6 and 0.7 <= power["t1w"] <= 0.9
