"""Synthetic IMSCT cohort: the plan (who has what), and the BIDS writer.

The plan depends only on (n, seed), so the workflow knows every subject at dry-run time, and each
subject is generated independently from ``default_rng([seed, index])``, so subjects can be produced in
parallel jobs and the same seed always gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..bids import Naming, stem
from ..classes import LESIONS
from ..io import save_nifti, write_json, write_text, write_tsv
from .anatomy import size_factor
from .lesions import HIGH_GRADE_FRACTION, P_CAVITY, TUMOR_TYPES, p_edema
from .subject import SubjectData, SubjectSpec, make_subject

# Paper, section 2.1 and Table 1.
TYPE_COUNTS = {"astrocytoma": 101, "ependymoma": 122, "hemangioblastoma": 120}
MALE_FRACTION = {"astrocytoma": 60 / 101, "ependymoma": 70 / 122, "hemangioblastoma": 68 / 120}
AGE = {"astrocytoma": (30, 1, 63), "ependymoma": (42, 8, 76), "hemangioblastoma": (35.5, 8, 66)}
LUMBAR_FRACTION = 45 / 343
LARGE_MOTION_FRACTION = 0.10
CERVICAL_FRACTION = {"astrocytoma": 0.5, "ependymoma": 0.6, "hemangioblastoma": 0.55}


def _quota(n: int, weights: dict[str, float]) -> list[str]:
    """Largest-remainder apportionment, so small cohorts keep the paper's proportions."""
    total = sum(weights.values())
    raw = {k: n * w / total for k, w in weights.items()}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1
    return [k for k in weights for _ in range(counts[k])]


def plan_cohort(n: int, seed: int) -> list[SubjectSpec]:
    if n < 1:
        raise ValueError(f"--subjects must be at least 1, got {n}")
    rng = np.random.default_rng([seed, 0])
    types = rng.permutation(_quota(n, TYPE_COUNTS))
    n_lumbar = int(round(n * LUMBAR_FRACTION))
    lumbar = np.zeros(n, bool)
    lumbar[rng.permutation(n)[:n_lumbar]] = True
    n_large = int(round(n * LARGE_MOTION_FRACTION)) if n >= 5 else 0
    large = np.zeros(n, bool)
    large[rng.permutation(n)[:n_large]] = True
    specs = []
    for i in range(n):
        t = str(types[i])
        r = np.random.default_rng([seed, i + 1, 1])
        median, lo, hi = AGE[t]
        age = int(np.clip(np.rint(r.normal(median, (hi - lo) / 4.5)), lo, hi))
        sex = "M" if r.uniform() < MALE_FRACTION[t] else "F"
        region = "lumbar" if lumbar[i] else ("cervical" if r.uniform() < CERVICAL_FRACTION[t] else "thoracic")
        specs.append(SubjectSpec(i + 1, f"sub-{i + 1:03d}", t, sex, age, region, bool(large[i])))
    _plan_lesions(specs, seed)
    return specs


def _stratified(rng: np.random.Generator, k: int) -> np.ndarray:
    """k quantiles, one in each of k equal strata, in random order (Latin hypercube in 1-D)."""
    return (rng.permutation(k) + rng.uniform(size=k)) / k


def _plan_lesions(specs: list[SubjectSpec], seed: int) -> None:
    """Astrocytoma grades, which subjects have edema / a cavity (quotas per type and grade), and
    stratified volume quantiles per class within each group: a cohort of the paper's size then
    reproduces Table 2 and the prevalences closely instead of within sampling noise. Its own random
    stream, so the rest of the plan is as before."""
    rng = np.random.default_rng([seed, 0, 2])
    astro = [s for s in specs if s.tumor_type == "astrocytoma"]
    n_high = int(round(len(astro) * HIGH_GRADE_FRACTION))
    for k, s in enumerate(rng.permutation(len(astro))):
        astro[s].tumor_grade = "high" if k < n_high else "low"
    groups: dict[tuple, list[SubjectSpec]] = {}
    for s in specs:
        groups.setdefault((s.tumor_type, s.tumor_grade), []).append(s)
    for (t, grade), members in groups.items():
        n = len(members)
        # Larger bodies tend to get the larger lesions (a child's cord cannot hold the largest ones):
        # quantiles go out in the order of body size plus noise.
        size = np.array([size_factor(s.age, s.sex) for s in members])

        def by_size(u, has, size=size, n=n):
            key = size[has] + rng.normal(0, 0.1, int(has.sum()))
            out = np.zeros(n)
            out[np.flatnonzero(has)[np.argsort(key)]] = np.sort(u)
            return out

        q = {"tumor": by_size(_stratified(rng, n), np.ones(n, bool))}
        for cls, p in (("edema", p_edema(t, grade)), ("cavity", P_CAVITY[t])):
            has = np.zeros(n, bool)
            has[rng.permutation(n)[: int(round(n * p))]] = True
            q[cls] = by_size(_stratified(rng, int(has.sum())), has)
            for s, h in zip(members, has):
                setattr(s, f"has_{cls}", bool(h))
        for i, s in enumerate(members):
            s.volume_quantiles = tuple(round(float(q[c][i]), 6) for c in ("tumor", "edema", "cavity"))


def participants_table(specs: list[SubjectSpec]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"participant_id": s.participant_id, "tumor_type": s.tumor_type, "sex": s.sex, "age": s.age,
          "tumor_region": s.tumor_region, "tumor_grade": s.tumor_grade} for s in specs]
    )


def write_dataset_files(out: Path, specs: list[SubjectSpec], seed: int, size: str, naming: Naming) -> None:
    out = Path(out)
    write_tsv(participants_table(specs), out / "participants.tsv")
    write_json({
        "participant_id": {"Description": "Subject label"},
        "tumor_type": {"Description": "Histological type", "Levels": {t: t for t in TUMOR_TYPES}},
        "sex": {"Description": "Sex", "Levels": {"M": "male", "F": "female"}},
        "age": {"Description": "Age at scan", "Units": "year"},
        "tumor_region": {"Description": "Spinal region of the main tumor",
                         "Levels": {"cervical": "", "thoracic": "", "lumbar": "conus / cauda"}},
        "tumor_grade": {"Description": "Astrocytoma grade (n/a for the other types)",
                        "Levels": {"low": "low-grade", "high": "high-grade"}},
    }, out / "participants.json")
    write_json({"Name": "imsct synthetic IMSCT cohort", "BIDSVersion": "1.9.0", "DatasetType": "raw",
                "GeneratedBy": [{"Name": "imsct phantom", "Version": __version__}],
                "imsct": {"seed": seed, "size": size, "subjects": len(specs)}},
               out / "dataset_description.json")
    for deriv, desc in ((naming.labels_dir, "Ground-truth labels"), ("derivatives/phantom", "Phantom truth")):
        write_json({"Name": desc, "BIDSVersion": "1.9.0", "DatasetType": "derivative",
                    "GeneratedBy": [{"Name": "imsct phantom", "Version": __version__}]},
                   out / deriv / "dataset_description.json")
    write_text(
        "Synthetic intramedullary spinal cord tumor cohort generated by `imsct phantom`.\n"
        "Procedural anatomy; not patient data. See derivatives/phantom/ for the drawn truth.\n",
        out / "README",
    )


def write_subject(out: Path, data: SubjectData, naming: Naming, session: str | None = None) -> dict[str, Path]:
    """Write one subject's images, labels, sidecars and truth (in ``ses-<session>/`` when given);
    returns the paths written."""
    out = Path(out)
    label = data.spec.participant_id[4:]
    ses = [f"ses-{session}"] if session else []
    anat = out.joinpath(data.spec.participant_id, *ses, "anat")
    paths = {
        "t2w": anat / naming.image_name("t2w", label, session),
        "t1w": anat / naming.image_name("t1w", label, session),
    }
    # run-length gzip: the noisy images and one-byte masks compress as well and about twice as fast
    save_nifti(data.t2w, data.t2w_affine, paths["t2w"], rle=True)
    save_nifti(data.t1w, data.t1w_affine, paths["t1w"], rle=True)
    tr = data.truth
    for key, grid in (("t2w", "t2w_grid"), ("t1w", "t1w_grid")):
        write_json({"Modality": "MR", "MRAcquisitionType": "2D", "SliceThickness": tr[grid]["spacing_ras"][0],
                    "ContrastBolusIngredient": "GADOLINIUM" if key == "t1w" else None,
                    "GeneratedBy": "imsct phantom"},
                   paths[key].with_name(stem(paths[key]) + ".json"))
    stems = {"t2w_stem": stem(paths["t2w"]), "t1w_stem": stem(paths["t1w"])}
    for key in (*LESIONS, "centerline", "discs"):
        if key in naming.labels:
            p = naming.label_path(out, key, label, session, stems)
            save_nifti(data.labels[key], data.t2w_affine, p, dtype=np.uint8, rle=True)
            paths[key] = p
    if "t1w_discs" in naming.labels:
        p = naming.label_path(out, "t1w_discs", label, session, stems)
        save_nifti(data.t1w_discs, data.t1w_affine, p, dtype=np.uint8, rle=True)
        paths["t1w_discs"] = p
    scan = "_".join([data.spec.participant_id, *ses])
    truth_p = out.joinpath("derivatives", "phantom", data.spec.participant_id, *ses, f"{scan}_truth.json")
    write_json(tr, truth_p)
    paths["truth"] = truth_p
    return paths


def generate_subject(out, spec: SubjectSpec, seed: int, size: str, naming: Naming, qc: bool | str | Path = False):
    """Write one subject into the dataset ``out``; ``qc``: True (the dataset's derivatives/phantom/qc)
    or a path writes the QC montage too."""
    data = make_subject(spec, seed, size)
    paths = write_subject(Path(out), data, naming)
    if qc:
        from .qc import montage

        p = Path(qc) if not isinstance(qc, bool) else (
            Path(out) / "derivatives" / "phantom" / "qc" / f"{spec.participant_id}_qc.png")
        montage(data, p)
        paths["qc"] = p
    return paths


# --- realised volumes against the paper's Table 2 --------------------------------------------------


def _realised_row(args) -> dict:
    from .subject import realised_volumes

    spec, seed, size = args
    r = realised_volumes(spec, seed, size)
    return {"participant_id": spec.participant_id, "tumor_type": spec.tumor_type, "tumor_grade": spec.tumor_grade,
            **r["volumes_cm3"]}


def cohort_volumes(n: int, seed: int, size: str = "full", jobs: int = 1) -> pd.DataFrame:
    """Per subject, the class volumes (cm3) `imsct phantom` writes into the masks for this cohort,
    computed without rendering the images (:func:`~imsct.phantom.subject.realised_volumes`)."""
    todo = [(s, seed, size) for s in plan_cohort(n, seed)]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as pool:
            rows = list(pool.map(_realised_row, todo, chunksize=8))
    else:
        rows = [_realised_row(a) for a in todo]
    return pd.DataFrame(rows)


def dataset_volumes(bids_dir, naming: Naming | None = None) -> pd.DataFrame:
    """The same table measured on a written dataset: voxels of each class mask times voxel volume."""
    import nibabel as nib

    naming = naming or Naming()
    bids_dir = Path(bids_dir)
    part = pd.read_csv(bids_dir / "participants.tsv", sep="\t", na_values="n/a", keep_default_na=False)
    rows = []
    for _, p in part.iterrows():
        label = p["participant_id"][4:]
        stems = {"t2w_stem": stem(naming.image_name("t2w", label)), "t1w_stem": stem(naming.image_name("t1w", label))}
        row = {"participant_id": p["participant_id"], "tumor_type": p["tumor_type"],
               "tumor_grade": p.get("tumor_grade") if isinstance(p.get("tumor_grade"), str) else None}
        for c in LESIONS:
            img = nib.load(naming.label_path(bids_dir, c, label, None, stems))
            voxel = float(np.prod(img.header.get_zooms()[:3]))
            row[c] = float(np.count_nonzero(np.asanyarray(img.dataobj))) * voxel / 1000
        rows.append(row)
    return pd.DataFrame(rows)


def table2_comparison(volumes: pd.DataFrame) -> pd.DataFrame:
    """Mean and std per tumor type and class over the subjects having the class (as Table 2 counts
    them), beside the paper's values and their ratios."""
    from .lesions import TABLE2

    rows = []
    for t in TUMOR_TYPES:
        for c in LESIONS:
            v = volumes.loc[(volumes["tumor_type"] == t) & (volumes[c] > 0), c].to_numpy(float)
            m, s = TABLE2[t][c]
            mean, std = (float(v.mean()), float(v.std(ddof=1))) if len(v) > 1 else (float("nan"), float("nan"))
            rows.append({"tumor_type": t, "class": c, "n": len(v), "mean": mean, "std": std,
                         "paper_mean": m, "paper_std": s, "mean_ratio": mean / m, "std_ratio": std / s})
    return pd.DataFrame(rows)
