"""The paper's metric rules (section 2.6.1) on hand-built cases."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from imsct.evaluation.metrics import METRIC_KEYS, compare, compare_files


def blank(shape=(20, 20, 20)):
    return np.zeros(shape, bool)


def test_identical_masks():
    g = blank()
    g[2:5, 2:5, 2:5] = True
    m = compare(g, g, 1.0)
    assert tuple(m) == METRIC_KEYS
    assert m["dice"] == m["precision"] == m["recall"] == 1.0
    assert m["detection_tpr"] == 1.0 and m["detection_fdr"] == 0.0
    assert m["rel_volume_diff"] == 0.0 and m["volume_gt_mm3"] == 27.0


def test_both_empty_gives_nulls():
    m = compare(blank(), blank(), 1.0)
    for k in ("dice", "precision", "recall", "detection_tpr", "detection_fdr", "rel_volume_diff", "abs_volume_diff"):
        assert m[k] is None, k
    assert m["n_gt_lesions"] == m["n_pred_lesions"] == 0


def test_false_positive_on_empty_ground_truth():
    p = blank()
    p[1:4, 1:4, 1:4] = True
    m = compare(blank(), p, 1.0)
    assert m["dice"] == 0.0 and m["precision"] == 0.0 and m["recall"] is None
    assert m["detection_tpr"] is None and m["detection_fdr"] == 1.0 and m["n_fp_lesions"] == 1
    assert m["rel_volume_diff"] is None


def test_missed_lesion_on_empty_prediction():
    g = blank()
    g[1:4, 1:4, 1:4] = True
    m = compare(g, blank(), 1.0)
    assert m["dice"] == 0.0 and m["precision"] is None and m["recall"] == 0.0
    assert m["detection_tpr"] == 0.0 and m["detection_fdr"] is None and m["n_fn_lesions"] == 1
    assert m["rel_volume_diff"] == 1.0


def test_18_connectivity_joins_edges_not_corners():
    g = blank()
    g[5, 5, 5] = g[6, 6, 5] = True  # share an edge: one lesion with 18-connectivity
    g[10, 10, 10] = g[11, 11, 11] = True  # share a corner only: two lesions
    assert compare(g, g, 1.0)["n_gt_lesions"] == 3


def test_touching_lesions_are_one():
    g = blank()
    g[2:5, 2:5, 2:5] = True
    g[5:8, 2:5, 2:5] = True  # face-adjacent to the first
    m = compare(g, g, 1.0)
    assert m["n_gt_lesions"] == 1 and m["n_tp_lesions"] == 1


def test_lesion_split_by_the_prediction():
    """One GT lesion covered by two predicted pieces: one TP, no FP (each piece overlaps the GT)."""
    g = blank()
    g[2:12, 2:5, 2:5] = True
    p = blank()
    p[2:6, 2:5, 2:5] = True
    p[8:12, 2:5, 2:5] = True
    m = compare(g, p, 1.0)
    assert m["n_gt_lesions"] == 1 and m["n_pred_lesions"] == 2
    assert m["n_tp_lesions"] == 1 and m["n_fp_lesions"] == 0 and m["detection_fdr"] == 0.0
    assert m["dice"] == pytest.approx(2 * 72 / (90 + 72))
    assert m["rel_volume_diff"] == pytest.approx((90 - 72) / 90)


def test_overlap_threshold_in_mm3_with_anisotropic_voxels():
    """3 overlapping voxels are 6 mm3 at 1x1x2 mm (detected) but 3 mm3 at 1 mm (missed, and the
    predicted lesion is then a false positive)."""
    g = blank()
    g[2:10, 2:10, 2:10] = True
    p = blank()
    p[9, 9, 7:10] = True
    p[9, 9, 10:13] = True  # the prediction sticks out of the GT
    assert (g & p).sum() == 3
    aniso = compare(g, p, 2.0)
    assert aniso["n_tp_lesions"] == 1 and aniso["n_fp_lesions"] == 0
    iso = compare(g, p, 1.0)
    assert iso["n_tp_lesions"] == 0 and iso["n_fn_lesions"] == 1 and iso["n_fp_lesions"] == 1
    assert iso["detection_tpr"] == 0.0 and iso["detection_fdr"] == 1.0
    assert compare(g, p, 1.0, overlap_mm3=3.0)["n_tp_lesions"] == 1


def test_over_segmentation_gives_negative_relative_volume_difference():
    g = blank()
    g[2:5, 2:5, 2:5] = True
    p = blank()
    p[2:8, 2:5, 2:5] = True
    m = compare(g, p, 1.0)
    assert m["rel_volume_diff"] == pytest.approx(-1.0) and m["abs_volume_diff"] == pytest.approx(1.0)


def _save(tmp_path, name, data, affine):
    p = tmp_path / name
    nib.save(nib.Nifti1Image(data.astype(np.uint8), affine), p)
    return p


def test_cli_json_and_voxel_size_from_the_affine(tmp_path, capsys):
    from imsct.cli import main

    aff = np.diag([1.0, 1.0, 2.0, 1.0])
    g = blank()
    g[2:5, 2:5, 2:5] = True
    p = blank()
    p[2:5, 2:5, 2:6] = True
    gp, pp = _save(tmp_path, "gt.nii.gz", g, aff), _save(tmp_path, "pred.nii.gz", p, aff)
    assert main(["metrics", str(gp), str(pp), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == list(METRIC_KEYS)
    assert out["volume_gt_mm3"] == 54.0 and out["volume_pred_mm3"] == 72.0
    assert out == compare_files(gp, pp)


def test_grid_mismatch_names_both_files(tmp_path, capsys):
    from imsct.cli import main

    g = blank()
    gp = _save(tmp_path, "gt.nii.gz", g, np.eye(4))
    pp = _save(tmp_path, "pred.nii.gz", g, np.diag([1.0, 1.0, 2.0, 1.0]))
    assert main(["metrics", str(gp), str(pp), "--json"]) != 0
    err = capsys.readouterr().err
    assert "gt.nii.gz" in err and "pred.nii.gz" in err and "grid" in err


def test_table4_means_per_split_then_across_splits():
    """Split A has two subjects (Dice 1.0 and 0.0), split B one (Dice 0.8): the per-split means are
    0.5 and 0.8, so Table 4 says 65.0 ± 21.2, not the pooled 60.0."""
    import pandas as pd

    from imsct.evaluation.aggregate import across_splits, table4

    rows = []
    for split, subject, dice in (("00", "a", 1.0), ("00", "b", 0.0), ("01", "c", 0.8)):
        for cls in ("tumor", "edema", "cavity", "wholetumor"):
            rows.append({"split": split, "subject": subject, "mode": "cascade", "class": cls, "tumor_type": "x",
                         "dice": dice if cls != "cavity" else None, "precision": 1.0, "recall": 1.0,
                         "detection_tpr": 1.0, "detection_fdr": 0.0, "rel_volume_diff": 0.0, "abs_volume_diff": 0.0})
    df = pd.DataFrame(rows)
    a = across_splits(df, ["class"])
    assert a.loc[("tumor", "dice"), "mean"] == pytest.approx(0.65)
    assert a.loc[("tumor", "dice"), "n_splits"] == 2
    t = table4(df)
    assert t.loc["Dice", "tumor"] == "65.0 ± 21.2"
    assert t.loc["Dice", "cavity"] == "n/a"  # undefined everywhere: not 0


def test_per_acquisition_separates_what_the_mean_hides():
    """Blocks at Dice 0.2 and sagittal series at 0.9 in both splits: the per-acquisition table gives
    each its own mean and test-case count; a table without the column reads n/a, not an error."""
    import pandas as pd

    from imsct.evaluation.aggregate import per_acquisition, table4

    rows = []
    for split in ("00", "01"):
        for subject, acq, dice in (("a", "block", 0.2), ("b", "sagittal", 0.9), ("c", "sagittal", 0.9)):
            for cls in ("tumor", "wholetumor"):
                rows.append({"split": split, "subject": f"{subject}{split}", "mode": "cascade", "class": cls,
                             "tumor_type": "x", "acquisition": acq, "dice": dice})
    df = pd.DataFrame(rows)
    t = per_acquisition(df)
    assert t.loc["block", "tumor"] == "20.0 ± 0.0" and t.loc["sagittal", "wholetumor"] == "90.0 ± 0.0"
    assert t.loc["block", "test cases"] == 2 and t.loc["sagittal", "test cases"] == 4
    assert table4(df.assign(precision=1.0, recall=1.0, detection_tpr=1.0, detection_fdr=0.0, rel_volume_diff=0.0,
                            abs_volume_diff=0.0)).loc["Dice", "tumor"] == "66.7 ± 0.0"
    assert list(per_acquisition(df.drop(columns="acquisition")).index) == ["n/a"]


def test_the_report_shows_cascade_vs_single_as_the_workflow_writes_it(tmp_path):
    """The single-step model trained on split 00 alone: the report's table read the TSV's numeric-looking
    column as numbers and showed the split as "0"."""
    import pandas as pd

    from imsct.evaluation.aggregate import cascade_vs_single
    from imsct.evaluation.report import _read_table, _table

    rows = [{"split": split, "subject": f"s{split}", "mode": mode, "class": cls, "dice": 0.722, "seconds": 0.46}
            for split in ("00", "01") for mode in ("cascade", "single") if (mode, split) != ("single", "01")
            for cls in ("tumor", "edema", "cavity", "wholetumor")]
    logs = []
    for kind, seconds in (("tumor", 9.9), ("single", 19.0)):
        log = tmp_path / kind / "log.tsv"
        log.parent.mkdir()
        pd.DataFrame({"epoch": [0, 1], "train_seconds": [seconds, seconds]}).to_csv(log, sep="\t")
        logs.append(str(log))
    table = cascade_vs_single(pd.DataFrame(rows), logs)
    table.to_csv(tmp_path / "cascade_vs_single.tsv", sep="\t")
    html = _table(_read_table(tmp_path / "cascade_vs_single.tsv"))
    assert table.loc["Splits", "cascade"] == "00"
    assert html.count("<td>00</td>") == 2 and "<td>72.2</td>" in html and "<td>19.0</td>" in html
