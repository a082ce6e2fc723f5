"""postprocess.tune: the smallest kept objects chosen on validation subjects (imsct.inference.tuning)."""

import json

import numpy as np
import pytest

from imsct.evaluation.metrics import dice
from imsct.inference.postprocess import postprocess_binary
from imsct.inference.tuning import choose_min_volumes, validation_case

SHAPE = (40, 30, 20)


def _ball(center, radius, shape=SHAPE):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, center)) <= radius**2


def _case(key, truth_lesion, predicted=None, specks=()):
    """A validation subject: truth = one edema ball (and nothing else); the prediction = the same ball
    (or ``predicted``) plus false-positive specks."""
    empty = np.zeros(SHAPE, bool)
    truth = {"tumor": empty, "edema": truth_lesion, "cavity": empty}
    pred = (truth_lesion if predicted is None else predicted).copy()
    for s in specks:
        pred[s] = True
    binary = {"tumor": empty, "edema": pred, "cavity": empty, "wholetumor": pred}
    truth["wholetumor"] = truth_lesion
    return validation_case(key, binary, truth, 1.0)


def test_a_floor_that_removes_true_small_lesions_is_lowered():
    """Edemas of about 0.1 cm3 (113 voxels of 1 mm3) are what the validation subjects hold: the
    configured 0.5 cm3 removes every one (Dice 0), a candidate of 0.05 keeps them (Dice 1)."""
    cases = [_case(f"s{i}", _ball((20, 15, 10), 3)) for i in range(3)]
    configured = {"tumor": 200.0, "edema": 500.0, "cavity": 500.0, "wholetumor": 0.0}
    floors, rows = choose_min_volumes(cases, configured, [0.0, 0.05, 0.5, 1.0], ["tumor", "edema", "cavity"], 0.01)
    assert floors["edema"] == 50.0  # 0 scores the same: a tie goes to the larger floor
    assert floors["tumor"] == 200.0 and floors["cavity"] == 500.0  # undefined Dice everywhere: kept
    edema = {r["min_volume_cm3"]: r for r in rows if r["class"] == "edema"}
    assert 1.0 not in edema  # above the configured floor: not tried (direction lower)
    assert edema[0.5]["dice"] == 0.0 and edema[0.5]["configured"] and not edema[0.5]["chosen"]
    assert edema[0.05]["dice"] == 1.0 and edema[0.05]["cases"] == 3
    assert sum(r["chosen"] for r in rows if r["class"] == "edema") == 1


def test_specks_make_a_higher_floor_win_and_min_gain_keeps_the_configured_one():
    lesion = _ball((20, 15, 10), 6)  # about 0.9 cm3
    specks = [(slice(2, 4), slice(2, 4), slice(2, 4)), (slice(35, 37), slice(25, 27), slice(1, 3))]
    cases = [_case(f"s{i}", lesion, specks=specks) for i in range(2)]
    configured = {"edema": 0.0}
    floors, _ = choose_min_volumes(cases, configured, [0.0, 0.05, 0.5], ["edema"], 0.0, direction="both")
    assert floors["edema"] == 50.0  # the 8-voxel specks go, the lesion stays; 0.5 ties, 0.05 is nearer 0
    # by default a floor is only lowered: from 0 nothing else is tried
    floors, rows = choose_min_volumes(cases, configured, [0.0, 0.05, 0.5], ["edema"], 0.0)
    assert floors["edema"] == 0.0 and [r["min_volume_cm3"] for r in rows] == [0.0]
    gain = 1.0 - dice(lesion, lesion | _specks_mask(specks))  # what removing the specks buys
    assert 0 < gain < 0.1
    floors, _ = choose_min_volumes(cases, configured, [0.0, 0.05, 0.5], ["edema"], gain + 0.001, direction="both")
    assert floors["edema"] == 0.0


def test_of_the_candidates_near_the_best_the_one_nearest_the_configured_floor_is_taken():
    """20 validation lesions of 0.26 cm3 and one of 0.03 cm3: floor 0 keeps all (Dice 1), 0.05 and
    0.2 all but the tiny one (0.952), the configured 0.5 none. 0 is best, but within min_gain 0.1 of
    it the floor nearest the configured one is 0.2."""
    cases = [_case(f"s{i}", _ball((20, 15, 10), 4)) for i in range(20)] + [_case("tiny", _ball((20, 15, 10), 2))]
    configured = {"edema": 500.0}
    floors, rows = choose_min_volumes(cases, configured, [0.0, 0.05, 0.2], ["edema"], 0.1)
    assert floors["edema"] == 200.0
    score = {r["min_volume_cm3"]: r["dice"] for r in rows}
    assert score[0.0] == 1.0 and score[0.2] == pytest.approx(20 / 21) and score[0.5] == 0.0
    # with no tolerance, the best itself
    assert choose_min_volumes(cases, configured, [0.0, 0.05, 0.2], ["edema"], 0.0)[0]["edema"] == 0.0


def _specks_mask(specks):
    m = np.zeros(SHAPE, bool)
    for s in specks:
        m[s] = True
    return m


@pytest.mark.parametrize("exclusive", [False, True])
def test_the_crop_scores_as_the_whole_image(exclusive):
    """The validation case is cropped to where a mask holds a voxel, with background around it: every
    floor gives the same Dice on the crop as on the whole image, holes and lesions at the border
    included."""
    rng = np.random.default_rng(3)
    binary = {c: rng.random(SHAPE) > 0.93 for c in ("tumor", "edema", "cavity", "wholetumor")}
    ring = _ball((20, 15, 0), 6) & ~_ball((20, 15, 0), 3)  # a hole, at the image's edge
    binary["edema"] |= ring
    truth = {c: rng.random(SHAPE) > 0.95 for c in ("tumor", "edema", "cavity")}
    truth["wholetumor"] = truth["tumor"] | truth["edema"] | truth["cavity"]
    case = validation_case("s", binary, truth, 2.0)
    for floors in ({}, {"tumor": 10.0, "edema": 30.0, "cavity": 4.0, "wholetumor": 12.0}):
        full = postprocess_binary(binary, 2.0, True, floors, exclusive)
        crop = postprocess_binary(case.binary, 2.0, True, floors, exclusive)
        for c in full:
            assert dice(truth[c], full[c]) == pytest.approx(dice(case.truth[c], crop[c]))


def test_truth_beyond_the_predicted_box_is_kept_in_the_crop():
    """The crop holds the truth as well as the prediction: a prediction smaller than the lesion scores
    the same Dice as on the whole image (a crop to the prediction alone would cut the truth down)."""
    empty = np.zeros(SHAPE, bool)
    pred, lesion = _ball((20, 15, 10), 3), _ball((20, 15, 10), 6)
    binary = {"tumor": pred, "edema": empty, "cavity": empty, "wholetumor": pred}
    truth = {"tumor": lesion, "edema": empty, "cavity": empty, "wholetumor": lesion}
    case = validation_case("s", binary, truth, 1.0)
    expected = dice(lesion, pred)
    assert 0.1 < expected < 0.5
    assert dice(case.truth["tumor"], postprocess_binary(case.binary, 1.0)["tumor"]) == pytest.approx(expected)


def test_a_small_lesion_cropped_tightly_keeps_its_hole():
    """A lesion far from the border, cropped to its box: the hole inside is filled as on the whole
    image, and the crop is much smaller than the image."""
    ring = _ball((20, 15, 10), 5) & ~_ball((20, 15, 10), 2)
    empty = np.zeros(SHAPE, bool)
    binary = {"tumor": ring, "edema": empty, "cavity": empty, "wholetumor": ring}
    truth = {"tumor": _ball((20, 15, 10), 5), "edema": empty, "cavity": empty}
    truth["wholetumor"] = truth["tumor"]
    case = validation_case("s", binary, truth, 1.0)
    assert case.binary["tumor"].shape == (13, 13, 13)  # the ball's 11 voxels and one of background each side
    assert dice(case.truth["tumor"], postprocess_binary(case.binary, 1.0)["tumor"]) == 1.0
    assert dice(case.truth["tumor"], postprocess_binary(case.binary, 1.0, fill_holes=False)["tumor"]) < 1.0


def test_an_ensemble_of_tuned_folders_takes_the_median_floor():
    from imsct.inference.predictor import ensemble_postprocess

    def meta(edema, tuned=True):
        post = {"threshold": 0.5, "fill_holes": True, "exclusive": False,
                "min_volume_mm3": {"tumor": 200.0, "edema": edema, "cavity": 500.0, "wholetumor": 0.0}}
        if tuned:
            post["tuning"] = {"subjects": ["001"]}
        return {"postprocess": post}

    folders = [meta(500.0), meta(100.0), meta(50.0)]
    assert ensemble_postprocess(folders)["min_volume_mm3"]["edema"] == 100.0
    assert ensemble_postprocess(folders)["min_volume_mm3"]["tumor"] == 200.0
    # one folder alone, or folders whose floors were configured: the first one's, as before
    assert ensemble_postprocess(folders[2:])["min_volume_mm3"]["edema"] == 50.0
    untuned = [meta(500.0, False), meta(100.0, False)]
    assert ensemble_postprocess(untuned)["min_volume_mm3"]["edema"] == 500.0


def test_the_paper_and_gpu_configurations_keep_the_published_floors_untuned():
    """Layered over the demo's config as the workflow layers them (Snakemake's update_config), paper.yaml
    and gpu.yaml apply the paper's floors as published; the demo tunes its tumor and cavity floors."""
    from pathlib import Path

    import yaml
    from snakemake.utils import update_config

    config = Path(__file__).resolve().parents[1] / "config"
    demo = yaml.safe_load((config / "config.yaml").read_text())
    assert demo["postprocess"]["tune"] == {"enabled": True, "classes": ["tumor", "cavity"]}
    for name in ("paper.yaml", "gpu.yaml"):
        merged = yaml.safe_load((config / "config.yaml").read_text())
        update_config(merged, yaml.safe_load((config / name).read_text()))
        assert merged["postprocess"]["tune"]["enabled"] is False, name
        assert merged["postprocess"]["min_volume_cm3"] == {"tumor": 0.2, "edema": 0.5, "cavity": 0.5}, name


def _anat(cohort, sub):
    return cohort / sub / "anat", cohort / "derivatives/labels" / sub / "anat"


def test_a_model_folder_tuned_on_phantom_subjects(tiny_model_folder, small_cohort, tmp_path):
    """tune_model_folder on the tiny models and two phantom subjects: model.json gains the tuning
    record (subjects, every candidate at or below the configured floor scored, one chosen per class)
    and keeps its ONNX files' hashes; a label on another grid is refused, naming the file."""
    import shutil

    import nibabel as nib

    from imsct.inference.modelfolder import read_model_folder
    from imsct.inference.tuning import tune_model_folder

    folder = tmp_path / "onnx"
    shutil.copytree(tiny_model_folder, folder)
    subjects = {}
    for sub in ("sub-003", "sub-007"):
        anat, labels = _anat(small_cohort, sub)
        subjects[sub[4:]] = {"t2w": str(anat / f"{sub}_T2w.nii.gz"), "t1w": str(anat / f"{sub}_ce-gad_T1w.nii.gz"),
                             "gt": {c: str(labels / f"{sub}_T2w_label-{c}_mask.nii.gz")
                                       for c in ("tumor", "edema", "cavity")}}
    settings = {"candidates_cm3": [0.0, 0.1, 2.0], "classes": ["tumor", "cavity"], "min_gain": 0.0}
    post = tune_model_folder(folder, subjects, settings, threads=1)
    meta = read_model_folder(folder)  # hashes still match
    assert meta["postprocess"] == json.loads(json.dumps(post))
    tuning = post["tuning"]
    assert tuning["subjects"] == ["003", "007"] and tuning["direction"] == "lower"
    for cls in ("tumor", "cavity"):
        rows = [r for r in tuning["scores"] if r["class"] == cls]
        configured = tuning["configured_mm3"][cls] / 1000
        assert {r["min_volume_cm3"] for r in rows} == {v for v in (0.0, 0.1, 2.0) if v <= configured} | {configured}
        assert sum(r["chosen"] for r in rows) == 1
        chosen = next(r for r in rows if r["chosen"])
        assert post["min_volume_mm3"][cls] == pytest.approx(1000 * chosen["min_volume_cm3"])
    assert post["min_volume_mm3"]["edema"] == tuning["configured_mm3"]["edema"]  # not a tuned class
    # a label on another grid than its T2w
    bad = tmp_path / "shifted_tumor.nii.gz"
    img = nib.load(subjects["003"]["gt"]["tumor"])
    shifted = img.affine.copy()
    shifted[:3, 3] += 5.0
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), shifted), str(bad))
    subjects["003"]["gt"]["tumor"] = str(bad)
    with pytest.raises(ValueError, match="shifted_tumor.nii.gz"):
        tune_model_folder(folder, subjects, settings, threads=1)


def test_an_ensemble_of_tuned_folders_segments_with_the_median_floors(tiny_model_folder, sct_data, tmp_path):
    """Two copies of a model folder, each with floors as postprocess.tune writes them: segmenting the
    real T2w with both applies the median per class (recorded in the masks' provenance)."""
    import shutil

    from imsct.inference.predictor import Predictor, SegmentOptions
    from imsct.io import load_image

    folders = []
    for i, edema in enumerate((100.0, 300.0)):
        f = tmp_path / f"onnx-{i}"
        shutil.copytree(tiny_model_folder, f)
        meta = json.loads((f / "model.json").read_text())
        meta["postprocess"]["min_volume_mm3"]["edema"] = edema
        meta["postprocess"]["tuning"] = {"subjects": ["001"]}
        (f / "model.json").write_text(json.dumps(meta))
        folders.append(f)
    seg = Predictor(folders, threads=1).segment(load_image(sct_data / "t2/t2.nii.gz"), None,
                                                SegmentOptions(register=False))
    assert seg.provenance["min_volume_mm3"]["edema"] == 200.0


def test_a_split_without_validation_subjects_keeps_its_floors(tiny_model_folder, tmp_path, caplog):
    import shutil

    from imsct.inference.tuning import tune_model_folder

    folder = tmp_path / "onnx"
    shutil.copytree(tiny_model_folder, folder)
    before = json.loads((folder / "model.json").read_text())["postprocess"]["min_volume_mm3"]
    with caplog.at_level("WARNING"):
        post = tune_model_folder(folder, {}, {"candidates_cm3": [0.0], "classes": ["tumor"], "min_gain": 0.0})
    assert post["min_volume_mm3"] == before and post["tuning"]["subjects"] == []
    assert "no validation subjects" in caplog.text


def test_the_report_lists_each_splits_floors_and_what_tuning_gained(tmp_path):
    from imsct.evaluation.report import postprocess_section

    scores = [{"class": "tumor", "min_volume_cm3": v, "dice": d, "cases": 8, "configured": v == 0.2, "chosen": v == 0.1}
              for v, d in ((0.0, 0.80), (0.1, 0.80), (0.2, 0.70))]
    tuned = {"postprocess": {"min_volume_mm3": {"tumor": 100.0, "edema": 200.0, "cavity": 100.0, "wholetumor": 0.0},
                             "tuning": {"subjects": ["001", "002"], "scores": scores}}}
    plain = {"postprocess": {"min_volume_mm3": {"tumor": 200.0, "edema": 500.0, "cavity": 500.0, "wholetumor": 0.0}}}
    for name, meta in (("a", tuned), ("b", plain)):
        (tmp_path / f"{name}.json").write_text(json.dumps(meta))
    html = postprocess_section({"00": str(tmp_path / "a.json"), "01": str(tmp_path / "b.json")})
    assert "2 validation subjects (tumor core; the rest configured)" in html and "Tumor core +10.0" in html
    assert "configuration" in html and "<td>0.5</td>" in html and "<td>0.1</td>" in html
