"""Cascaded inference for one subject with ONNX models (no PyTorch): register the T1w onto the T2w,
resample to the working grid, find the cord, crop around it, segment the tumor by sliding window,
postprocess, and bring every result back onto the T2w's own grid.

One :class:`Predictor` loads each model folder once (one onnxruntime session per model) and serves
any number of subjects.

Without a T1w (many patients have no gadolinium scan; paper 4.5.2) there is no registration and the
tumor model's T1w channel is zeros: after z-scoring, the channel's mean, which is what training with
``training.tumor.modality_dropout`` shows it. The sidecar says which contrasts were used, and warns
when the tumor model was never trained without a T1w.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from ..crops import cord_network_input, paper_to_array, safety_to_array, tumor_network_input, uncrop
from ..paths import mask_name
from ..preprocess.resample import canonical_grid, resample_image, to_native, zscore
from .modelfolder import BLENDS, read_model_folder
from .postprocess import largest_component, postprocess_classes
from .sliding import run_padded, sliding_window

log = logging.getLogger(__name__)


@dataclass
class SegmentOptions:
    cascade: bool | None = None  # default: as the tumor model was trained (cord crop = cascade)
    cord_output: bool = True  # single step: still run the cord model for the cord mask (timed apart)
    blend: str | None = None  # uniform (paper) | gaussian; default: the model folder's
    tta: bool | None = None  # mirror test-time augmentation; default: the model folder's (paper: False)
    register: bool = True
    threshold: float | None = None  # default: the model folder's
    cord_threshold: float | None = None  # default: the model folder's
    min_volume_mm3: dict = field(default_factory=dict)  # overrides per class
    fill_holes: bool | None = None
    exclusive: bool | None = None  # default: the model folder's (paper: False)
    soft: bool = False  # also the ensemble's probabilities (native grid) and the models' agreement


@dataclass
class Segmentation:
    masks: dict[str, np.ndarray]  # on the native T2w grid: tumor, edema, cavity, wholetumor, cord
    affine: np.ndarray
    provenance: dict
    # the same prediction with the other class rule (exclusive vs independent thresholds), for reports
    alternative: dict[str, np.ndarray] = field(default_factory=dict)
    # with SegmentOptions.soft: the ensemble's mean probability per class on the native T2w grid
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)


def _untuned(post: dict | None) -> dict | None:
    """A postprocess entry without what postprocess.tune chose per folder (floors and their scores)."""
    if not post or "tuning" not in post:
        return post
    return {k: v for k, v in post.items() if k not in ("tuning", "min_volume_mm3")}


def ensemble_postprocess(meta: list[dict]) -> dict:
    """The postprocess entry an ensemble applies: the first folder's, except that where the folders'
    floors were chosen on their own validation subjects (postprocess.tune; the splits of one run),
    each class takes the median of their floors, as no one split's choice speaks for the averaged
    models."""
    post = dict(meta[0]["postprocess"])
    tuned = [m["postprocess"]["min_volume_mm3"] for m in meta if "tuning" in m["postprocess"]]
    if len(meta) > 1 and len(tuned) == len(meta):
        post["min_volume_mm3"] = {c: float(np.median([f.get(c, 0.0) for f in tuned])) for c in tuned[0]}
        log.info("an ensemble of %d folders with floors chosen on validation: the median per class (%s)",
                 len(meta), ", ".join(f"{c} {v / 1000:g} cm3" for c, v in post["min_volume_mm3"].items()))
    return post


class Predictor:
    def __init__(self, folders, device: str = "cpu", threads: int = 2):
        import onnxruntime as ort

        self.folders = [Path(f) for f in (folders if isinstance(folders, (list, tuple)) else [folders])]
        self.meta = [read_model_folder(f) for f in self.folders]
        if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError("--device cuda needs onnxruntime with CUDA (pip install onnxruntime-gpu); this "
                               f"onnxruntime offers {ort.get_available_providers()}")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        self.device = device
        opts = {k: ort.SessionOptions() for k in ("cord", "tumor")}
        for o in opts.values():
            o.intra_op_num_threads = threads
        # The tumor model runs once per batch of patches, whose count varies: a memory pattern planned
        # on one batch shape lay in its arena beside the next one's (1.6 -> 2.3 GB over four batches).
        opts["tumor"].enable_mem_pattern = False
        self.sessions = [{k: ort.InferenceSession(str(f / m[k]["file"]), opts[k], providers=providers)
                          for k in ("cord", "tumor")} for f, m in zip(self.folders, self.meta)]
        # The cord model's run hands its CPU arena back when it ends: an arena otherwise keeps a
        # session's peak (about 1.1 GB for the paper-size cord model on its 512x256x32 input) for the
        # process's life, and the tumor model's arena came on top of it. The tumor model keeps its
        # arena: it runs once per batch of patches, and fresh memory for each run cost more time than
        # the arena holds (benchmarks/run.py --segment-only). No arena at all gave the lowest peak but
        # made the cord model 40 % slower.
        self._run_options = {"cord": ort.RunOptions(), "tumor": None}
        if device != "cuda":
            self._run_options["cord"].add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._check_ensemble()
        first = self.meta[0]
        self.spacing = tuple(first["spacing_si_ap_rl_mm"])
        self.trained_on = first["tumor"].get("input", "cord_crop")
        # folders written before modality dropout existed have no entry: trained with both contrasts
        self.modality_dropout = [float(m["tumor"].get("modality_dropout", 0.0)) for m in self.meta]

    # what every folder of an ensemble must share: the grid and what the networks see
    _GEOMETRY = (("spacing_si_ap_rl_mm",), ("cord", "patch_si_ap_rl"), ("tumor", "patch_si_ap_rl"),
                 ("tumor", "stride_si_ap_rl"), ("tumor", "safety_factor"), ("tumor", "classes"),
                 ("tumor", "input"), ("tumor", "normalization"))

    def _check_ensemble(self):
        def get(m, keys):
            for k in keys:
                m = m.get(k) if isinstance(m, dict) else None
            return m
        for keys in self._GEOMETRY:
            values = [get(m, keys) for m in self.meta]
            if any(v != values[0] for v in values[1:]):
                detail = ", ".join(f"{f}: {v}" for f, v in zip(self.folders, values))
                raise ValueError(f"model folders disagree on {'.'.join(keys)} ({detail}); an ensemble "
                                 "averages models that see the same input")
        for f, m in zip(self.folders, self.meta):
            blend = m.get("inference", {}).get("blend", "uniform")
            if blend not in BLENDS:
                raise ValueError(f"{f}: model.json inference.blend {blend!r} is not one of {', '.join(BLENDS)}")
        # how to apply and postprocess is read from the first folder: say so where the others differ
        self.post = ensemble_postprocess(self.meta)
        for key in ("inference", "postprocess"):
            values = [_untuned(m.get(key)) if key == "postprocess" else m.get(key) for m in self.meta]
            if any(v != values[0] for v in values[1:]):
                log.warning("model folders disagree on %s; the first one's is used (%s: %s)", key, self.folders[0],
                            values[0])

    def resolve_cascade(self, cascade: bool | None) -> bool:
        """Cascade unless told otherwise, or unless the tumor model was trained on whole images (the
        single-step baseline), which cannot run on a cord crop it never saw."""
        if cascade is None:
            return self.trained_on != "whole_image"
        if cascade and self.trained_on == "whole_image":
            raise ValueError(f"{self.folders[0]}: this tumor model was trained on whole images (single step); "
                             "it cannot run cascaded (use --no-cascade or a cascade model folder)")
        return bool(cascade)

    def _net(self, i, kind):
        sess = self.sessions[i][kind]
        return lambda x: sess.run(None, {"input": x}, self._run_options[kind])[0]

    def cord_probability(self, t2w: np.ndarray) -> np.ndarray:
        """Mean cord probability of the ensemble on the working grid. The network sees what it was
        trained on: the image cropped or zero-padded to its patch at the centre of the field of view
        (paper 2.3); outside that patch the probability is 0."""
        probs = []
        for i, m in enumerate(self.meta):
            x, starts = cord_network_input(t2w, paper_to_array(m["cord"]["patch_si_ap_rl"]))
            p = run_padded(self._net(i, "cord"), x, m["cord"]["size_multiple"])[0]
            probs.append(uncrop(p, starts, t2w.shape))
        return np.mean(probs, axis=0)

    def tumor_input(self, w2: np.ndarray, w1: np.ndarray | None, cord: np.ndarray | None):
        """The tumor model's input ((2, *size): T2w, T1w), its starts on the working grid and the grown
        cord box: built by :func:`imsct.crops.tumor_network_input`, as in training. ``cord`` None or
        empty = the whole image; ``w1`` None = no T1w (its channel zeros)."""
        t = self.meta[0]["tumor"]
        crop = cord if cord is not None and cord.any() else None
        # folders written before the crop z-score existed have no entry: trained on the image's z-score
        return tumor_network_input(w2, w1, crop, safety_to_array(t["safety_factor"]),
                                   paper_to_array(t["patch_si_ap_rl"]), t.get("normalization", "image"))

    def member_probabilities(self, x: np.ndarray, blend: str, tta: bool) -> list[np.ndarray]:
        """Each model's class probabilities on the tumor network's input."""
        probs = []
        for i, m in enumerate(self.meta):
            t = m["tumor"]
            probs.append(sliding_window(self._net(i, "tumor"), x, paper_to_array(t["patch_si_ap_rl"]),
                                        paper_to_array(t["stride_si_ap_rl"]), len(t["classes"]),
                                        t["size_multiple"], blend, tta))
        return probs

    def tumor_probability(self, x: np.ndarray, blend: str, tta: bool) -> np.ndarray:
        return np.mean(self.member_probabilities(x, blend, tta), axis=0)

    # ------------------------------------------------------------------ the steps of segment()
    def register_t1(self, t2: nib.Nifti1Image, t1: nib.Nifti1Image, register: bool):
        """The T1w on the T2w's grid: registered (as in preprocessing) or by scanner alignment."""
        from ..preprocess.register import register as run_registration
        from ..preprocess.transforms import resample_to

        reg = run_registration(t2, t1) if register else None
        m = reg.matrix if reg is not None else np.eye(4)
        return resample_to(np.asarray(t1.dataobj), t1.affine, t2.shape, t2.affine, m), reg

    def to_working_grid(self, t2: nib.Nifti1Image, t1_on_t2: np.ndarray | None):
        """Both images resampled to the RAS working grid and z-scored; with the grid's shape and affine.
        No T1w: ``w1`` None (:func:`imsct.crops.tumor_network_input` then feeds zeros)."""
        shape, aff = canonical_grid(t2.shape, t2.affine, self.spacing)
        w2 = zscore(resample_image(np.asarray(t2.dataobj), t2.affine, shape, aff))
        w1 = None if t1_on_t2 is None else zscore(resample_image(t1_on_t2, t2.affine, shape, aff))
        return w2, w1, shape, aff

    def contrast_provenance(self, has_t1: bool) -> dict:
        """Which contrasts the tumor model saw, how its folders were trained for a missing T1w, and a
        warning (also logged) when a T2w-only subject meets a model trained only with both contrasts."""
        untrained = [str(f) for f, p in zip(self.folders, self.modality_dropout) if p <= 0]
        warnings = []
        if not has_t1 and untrained:
            warnings.append(f"no T1w: the T1w channel is zeros, but the tumor model of {', '.join(untrained)} was "
                            "trained without modality dropout (it always saw a T1w); expect a poorer segmentation")
            log.warning(warnings[-1])
        return {"contrasts": ["T2w", "T1w"] if has_t1 else ["T2w"], "t1w_missing": not has_t1,
                "modality_dropout": list(self.modality_dropout), "trained_for_missing_t1w": not untrained,
                "warnings": warnings}

    def locate_cord(self, w2: np.ndarray, threshold: float) -> np.ndarray:
        """The cord mask on the working grid: the ensemble's probability thresholded, largest component."""
        return largest_component(self.cord_probability(w2) >= threshold)

    def segment_tumor(self, w2, w1, cord: np.ndarray | None, blend: str, tta: bool):
        """Class probabilities on the working grid (zero outside the network input), the input's
        region on the grid, the grown cord box and each model's probabilities on the network input."""
        x, starts, box = self.tumor_input(w2, w1, cord)
        members = self.member_probabilities(x, blend, tta)
        prob = uncrop(np.mean(members, axis=0), starts, w2.shape)
        region = [[int(s), int(s) + int(n)] for s, n in zip(starts, x.shape[1:])]
        return prob, region, box, members

    def postprocess(self, prob: np.ndarray, voxel_mm3: float, o: SegmentOptions) -> tuple[dict, dict, dict]:
        """Masks with the chosen class rule, with the other rule, and the settings used; ``prob`` on the
        grid the masks are for (voxels of ``voxel_mm3``)."""
        post = self.post
        settings = {"threshold": post["threshold"] if o.threshold is None else o.threshold,
                    "fill_holes": post["fill_holes"] if o.fill_holes is None else o.fill_holes,
                    "exclusive": bool(post.get("exclusive", False)) if o.exclusive is None else o.exclusive,
                    "min_volume_mm3": {**post["min_volume_mm3"], **o.min_volume_mm3}}
        ex = settings["exclusive"]
        chosen, other = (postprocess_classes(prob, voxel_mm3, settings["threshold"], settings["fill_holes"],
                                             settings["min_volume_mm3"], rule) for rule in (ex, not ex))
        return chosen, other, settings

    def segment(self, t2: nib.Nifti1Image, t1: nib.Nifti1Image | None = None,
                opts: SegmentOptions | None = None) -> Segmentation:
        """Register, resample, locate the cord, crop and segment the tumor, postprocess, back to the
        T2w's grid; each step timed (``provenance["seconds"]``). ``t1`` None: T2w only (no
        registration, the T1w channel zeros; see :meth:`contrast_provenance`)."""
        from ..io import check_scan

        check_scan(t2, t2.get_filename() or "T2w")
        if t1 is not None:
            check_scan(t1, t1.get_filename() or "T1w")
        o = opts or SegmentOptions()
        cascade = self.resolve_cascade(o.cascade)
        cord_thr = self.meta[0]["cord"]["threshold"] if o.cord_threshold is None else o.cord_threshold
        # folders written before the inference entry existed were meant for the paper's uniform windows
        inference = {"tta": False, "blend": "uniform", **self.meta[0].get("inference", {})}
        tta = inference["tta"] if o.tta is None else o.tta
        blend = inference["blend"] if o.blend is None else o.blend
        if blend not in BLENDS:
            raise ValueError(f"blend {blend!r}: expected one of {', '.join(BLENDS)}")
        contrasts = self.contrast_provenance(t1 is not None)
        timer = _Timer()
        t1_on_t2, reg = None, None
        if t1 is not None:
            with timer("register"):
                t1_on_t2, reg = self.register_t1(t2, t1, o.register)
        with timer("resample"):
            w2, w1, shape, aff = self.to_working_grid(t2, t1_on_t2)
        cord = None
        if cascade:
            with timer("cord"):
                cord = self.locate_cord(w2, cord_thr)
        fallback = cascade and not cord.any()
        if fallback:
            log.warning("the cord model found no cord: segmenting the whole field of view")
        with timer("tumor"):
            prob, region, box, members = self.segment_tumor(w2, w1, cord if cascade else None, blend, tta)
        if cord is None:  # single step: the cord mask is an extra output, timed apart
            with timer("cord_output", outside=True):
                cord = self.locate_cord(w2, cord_thr) if o.cord_output else np.zeros(shape, bool)
        with timer("postprocess"):
            # as ivadomed (segment_volume, then pred_to_nib): the probabilities go back to the T2w's own
            # grid (linear interpolation), where they are thresholded and postprocessed (holes, small
            # objects in native voxels); thresholding on the working grid first lost boundary voxels
            native_prob = np.stack([to_native(p, aff, t2.shape[:3], t2.affine, "image") for p in prob])
            voxel_mm3 = float(np.prod(nib.affines.voxel_sizes(t2.affine)))
            chosen, other, settings = self.postprocess(native_prob, voxel_mm3, o)
            native = {**chosen, "cord": to_native(cord.astype(np.uint8), aff, t2.shape[:3], t2.affine, "mask")}
        meta = self.meta[0]
        prov = {"cascade": cascade, "cord_found": bool(cord.any()), "cord_fallback_whole_fov": bool(fallback),
                "crop": None if box is None else [[s.start, s.stop] for s in box], "network_input_region": region,
                "working_shape": list(shape), "blend": blend, "tta": tta, "cord_threshold": cord_thr, **settings,
                "tumor_model_input": meta["tumor"].get("input", "cord_crop"),
                "models": [str(f) for f in self.folders], "device": self.device,
                "model_sha256": [m["tumor"]["sha256"] for m in self.meta],
                "registration": None if reg is None else {"method": reg.method, "flagged": reg.flagged,
                                                           "transform_ras": reg.matrix.round(6).tolist(),
                                                           "itk_threads": reg.qc.get("itk_threads")},
                **contrasts, "seconds": timer.rounded(), "seconds_outside_pipeline": timer.rounded(outside=True)}
        soft = {}
        if o.soft:
            from .uncertainty import ensemble_agreement

            classes = meta["tumor"]["classes"]
            soft = {c: native_prob[i] for i, c in enumerate(classes)}
            prov["agreement"] = ensemble_agreement(members, classes, settings["threshold"])
        return Segmentation(native, t2.affine, prov, other, soft)


class _Timer:
    """Seconds per named step; ``outside`` steps are kept apart (not part of the pipeline measured)."""

    def __init__(self):
        self.seconds, self.outside = {}, {}

    @contextmanager
    def __call__(self, name: str, outside: bool = False):
        t0 = time.perf_counter()
        yield
        (self.outside if outside else self.seconds)[name] = time.perf_counter() - t0

    def rounded(self, outside: bool = False) -> dict[str, float]:
        return {k: round(v, 3) for k, v in (self.outside if outside else self.seconds).items()}


def write_segmentation(seg: Segmentation, t2_path, out_dir, base: str | None = None,
                       alternative: bool = False) -> dict[str, Path]:
    """``<base>_label-<class>_mask.nii.gz`` + JSON sidecar each (BIDS-derivatives names; ``base``
    defaults to the T2w file's stem). ``alternative``: the masks of the other class rule."""
    from .. import __version__
    from ..bids import stem
    from ..io import save_nifti, write_json

    out_dir = Path(out_dir)
    base = base or stem(t2_path)
    masks = seg.alternative if alternative else seg.masks
    prov = dict(seg.provenance)
    if alternative:
        prov["exclusive"] = not prov["exclusive"]
    paths = {}
    for name, mask in masks.items():
        p = out_dir / mask_name(base, name)
        save_nifti(mask.astype(np.uint8), seg.affine, p, dtype=np.uint8)
        write_json({"Description": f"{name} mask predicted by imsct", "Sources": [str(t2_path)],
                    "imsct_version": __version__, **prov}, out_dir / mask_name(base, name, ".json"))
        paths[name] = p
    return paths
