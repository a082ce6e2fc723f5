"""Discovery: same answer as pybids, ivadomed naming via config only, sessions, incomplete and
hostile datasets, and the parse-time cache."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from imsct.bids import Naming, discover, discover_cached
from imsct.cli import main
from imsct.phantom.cohort import generate_subject, plan_cohort, write_dataset_files

REPO = Path(__file__).resolve().parents[1]


def test_discovery_matches_pybids(small_cohort):
    bids = pytest.importorskip("bids")
    cohort, excluded = discover(small_cohort)
    assert len(cohort) == 8 and len(excluded) == 0
    layout = bids.BIDSLayout(small_cohort, validate=False, indexer=bids.BIDSLayoutIndexer(index_metadata=False))
    t2 = sorted(layout.get(suffix="T2w", extension=".nii.gz", return_type="filename"))
    t1 = sorted(layout.get(suffix="T1w", ceagent="gad", extension=".nii.gz", return_type="filename"))
    assert sorted(cohort["t2w"]) == t2
    assert sorted(cohort["t1w"]) == t1
    for col in ("t2w", "t1w", "tumor", "edema", "cavity", "centerline", "discs", "t1w_discs"):
        assert all(Path(p).is_file() for p in cohort[col]), col
    # participants.tsv columns are merged in
    assert set(cohort["tumor_type"]) <= {"astrocytoma", "ependymoma", "hemangioblastoma"}


def test_cli_discover_writes_cohort_and_excluded(small_cohort, tmp_path):
    out = tmp_path / "cohort.tsv"
    assert main(["discover", str(small_cohort), "--out", str(out)]) == 0
    df = pd.read_csv(out, sep="\t")
    assert list(df["participant_id"]) == [f"sub-{i:03d}" for i in range(1, 9)]
    assert (tmp_path / "excluded.tsv").exists()


def test_ivadomed_naming_by_config_only(tmp_path):
    """The original dataset's names (`_seg-tumor`, plain `_T1w`) work by changing the config only."""
    naming = Naming.ivadomed()
    specs = plan_cohort(3, 2)
    write_dataset_files(tmp_path, specs, 2, "small", naming)
    for s in specs:
        generate_subject(tmp_path, s, 2, "small", naming)
    assert (tmp_path / "derivatives/labels/sub-001/anat/sub-001_T2w_seg-tumor.nii.gz").is_file()
    assert (tmp_path / "sub-001/anat/sub-001_T1w.nii.gz").is_file()
    # With the default naming nothing is complete...
    cohort, excluded = discover(tmp_path)
    assert len(cohort) == 0 and len(excluded) == 3
    assert all("missing" in r for r in excluded["reason"])
    # ...with the shipped config overlay everything is found.
    cfg = yaml.safe_load((REPO / "config" / "ivadomed-naming.yaml").read_text())
    cohort, excluded = discover(tmp_path, Naming.from_config(cfg["inputs"]))
    assert len(cohort) == 3 and len(excluded) == 0
    assert cohort["tumor"].str.endswith("_T2w_seg-tumor.nii.gz").all()


def _to_sessions(root: Path, sub: str, sessions=("01", "02")):
    """Turn a single-session phantom subject into a multi-session one (files renamed accordingly)."""
    for base in (root, root / "derivatives" / "labels"):
        src = base / sub / "anat"
        for ses in sessions:
            dst = base / sub / f"ses-{ses}" / "anat"
            dst.mkdir(parents=True)
            for f in src.iterdir():
                shutil.copy(f, dst / f.name.replace(f"{sub}_", f"{sub}_ses-{ses}_"))
        shutil.rmtree(src)


def test_sessions(cohort_copy):
    _to_sessions(cohort_copy, "sub-002")
    cohort, excluded = discover(cohort_copy)
    assert len(excluded) == 0
    rows = cohort[cohort["participant_id"] == "sub-002"]
    assert list(rows["session_id"]) == ["ses-01", "ses-02"]
    assert rows["tumor"].str.contains("sub-002_ses-01_T2w_label-tumor").any()
    assert len(cohort) == 9


def test_incomplete_and_hostile_subjects_are_excluded_not_fatal(cohort_copy):
    (cohort_copy / "sub-001/anat/sub-001_ce-gad_T1w.nii.gz").unlink()
    (cohort_copy / "derivatives/labels/sub-003/anat/sub-003_T2w_label-tumor_mask.nii.gz").unlink()
    # an invalid label (not alphanumeric) and a symlink loop
    bad = cohort_copy / "sub-x.y" / "anat"
    bad.mkdir(parents=True)
    shutil.copy(cohort_copy / "sub-004/anat/sub-004_T2w.nii.gz", bad / "sub-x.y_T2w.nii.gz")
    os.symlink("..", cohort_copy / "sub-005" / "anat" / "loop")
    os.symlink(cohort_copy, cohort_copy / "sub-006" / "up")
    # two candidate T2w images
    shutil.copy(cohort_copy / "sub-007/anat/sub-007_T2w.nii.gz", cohort_copy / "sub-007/anat/sub-007_acq-ax_T2w.nii.gz")
    cohort, excluded = discover(cohort_copy)
    reasons = dict(zip(excluded["participant_id"], excluded["reason"]))
    assert reasons["sub-001"] == "missing t1w"
    assert reasons["sub-003"] == "missing tumor"
    assert "invalid subject label" in reasons["sub-x.y"]
    assert "2 files match t2w" in reasons["sub-007"]
    assert sorted(cohort["participant_id"]) == ["sub-002", "sub-004", "sub-005", "sub-006", "sub-008"]
    # constraining the entity resolves the ambiguity
    naming = Naming.from_config({"t2w": {"suffix": "T2w", "entities": {"acq": None}}})
    cohort, _ = discover(cohort_copy, naming)
    assert "sub-007" in set(cohort["participant_id"])


def test_cache_is_keyed_on_listing_and_trusted_in_jobs(cohort_copy, tmp_path):
    cache = tmp_path / "cache"
    c1, _ = discover_cached(cohort_copy, Naming(), cache)
    c2, _ = discover_cached(cohort_copy, Naming(), cache)
    pd.testing.assert_frame_equal(c1, c2)
    (cohort_copy / "derivatives/labels/sub-008/anat/sub-008_T2w_label-edema_mask.nii.gz").unlink()
    c3, e3 = discover_cached(cohort_copy, Naming(), cache)
    assert len(c3) == 7 and list(e3["participant_id"]) == ["sub-008"]
    # A job trusts the cache without touching the dataset (here: the dataset is gone).
    shutil.rmtree(cohort_copy)
    c4, _ = discover_cached(cohort_copy, Naming(), cache, trust_cache=True)
    assert len(c4) == 7


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="BIDS directory not found"):
        discover(tmp_path / "nope")


def test_subject_session_labels_each_scan():
    from imsct.bids import subject_session

    assert subject_session("sub-01_ses-02_T2w.nii.gz") == "sub-01_ses-02"
    assert subject_session("/r/preprocess/sub-01_ses-02/sub-01_ses-02_res-1x1x2_grid.json") == "sub-01_ses-02"
    assert subject_session("sub-01_res-1x1x2_grid.json") == "sub-01"
    assert subject_session("sub-01_desc-registration_qc.json") == "sub-01"
    assert subject_session("sub-01_ses-02") == subject_session("sub-01_ses-02.json") == "sub-01_ses-02"
    assert subject_session("T2w.nii.gz") is None and subject_session("sub-x-y_T2w.nii.gz") is None


def test_report_cohort_tables_tell_sessions_apart(cohort_copy, tmp_path):
    """Two sessions of one participant: one participant in Table 1, two scans in Table 2."""
    import re

    from imsct.evaluation.report import cohort_section

    _to_sessions(cohort_copy, "sub-002")
    cohort, _ = discover(cohort_copy)
    grids = []
    for r in cohort.itertuples():
        name = "_".join([r.participant_id] + ([r.session_id] if isinstance(r.session_id, str) else []))
        p = tmp_path / f"{name}_res-1x1x2_grid.json"
        p.write_text('{"label_volumes_mm3": {"tumor": 2000.0, "edema": 0.0, "cavity": 0.0}}')
        grids.append(str(p))
    html = cohort_section(cohort, grids)
    kind = cohort.set_index("participant_id").loc["sub-002", "tumor_type"].iloc[0]
    of_kind = cohort[cohort["tumor_type"] == kind]
    table1, table2 = html.split("Table 2 analogue")
    row1 = re.search(rf"<th>{kind}</th>\s*<td>(\d+)</td>", table1)
    assert int(row1.group(1)) == of_kind["participant_id"].nunique() == len(of_kind) - 1
    row2 = re.search(rf"<th>{kind}</th>\s*<td>([^<]*)</td>", table2)
    assert row2.group(1) == f"2.00 [2.00-2.00]; {len(of_kind)} with"  # every scan once
