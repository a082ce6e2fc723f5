"""BIDS naming and discovery.

Discovery is a direct scan of ``sub-*/[ses-*/]anat/`` with BIDS filename parsing: it gives the same
answer as pybids (``BIDSLayout(validate=False, index_metadata=False).get(...)``, checked in the tests)
in a fraction of the time (a 1,000-subject dataset in well under a second, against minutes for a
pybids index), which matters because Snakemake evaluates it whenever it parses the workflow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from .io import write_text, write_tsv

log = logging.getLogger(__name__)

LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")  # BIDS label syntax: alphanumeric only
ENTITY_RE = re.compile(r"^([a-z]+)-([A-Za-z0-9]+)$")
SUBJECT_SESSION_RE = re.compile(r"^sub-[A-Za-z0-9]+(?:_ses-[A-Za-z0-9]+)?(?=[_.]|$)")
IMAGE_KEYS = ("t2w", "t1w")


@dataclass
class ImageSpec:
    suffix: str
    # Entities that must be present with this value; a value of None means "must be absent".
    entities: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Naming:
    """Where the inputs are and what they are called (all configurable; see the config schema)."""

    t2w: ImageSpec = field(default_factory=lambda: ImageSpec("T2w"))
    t1w: ImageSpec = field(default_factory=lambda: ImageSpec("T1w", {"ce": "gad"}))
    extension: str = ".nii.gz"
    labels_dir: str = "derivatives/labels"
    labels: dict[str, str] = field(
        default_factory=lambda: {
            "tumor": "{t2w_stem}_label-tumor_mask.nii.gz",
            "edema": "{t2w_stem}_label-edema_mask.nii.gz",
            "cavity": "{t2w_stem}_label-cavity_mask.nii.gz",
            "centerline": "{t2w_stem}_label-centerline_mask.nii.gz",
            "discs": "{t2w_stem}_label-discs_dseg.nii.gz",
            "t1w_discs": "{t1w_stem}_label-discs_dseg.nii.gz",
        }
    )
    required: tuple[str, ...] = ("t2w", "t1w", "tumor", "edema", "cavity", "centerline")

    @classmethod
    def from_config(cls, cfg: dict) -> Naming:
        n = cls()
        if not cfg:
            return n
        for key in IMAGE_KEYS:
            if key in cfg:
                setattr(n, key, ImageSpec(cfg[key]["suffix"], dict(cfg[key].get("entities") or {})))
        n.extension = cfg.get("extension", n.extension)
        n.labels_dir = cfg.get("labels_dir", n.labels_dir)
        if "labels" in cfg:
            n.labels = dict(cfg["labels"])
        if "required" in cfg:
            n.required = tuple(cfg["required"])
        return n

    @classmethod
    def ivadomed(cls) -> Naming:
        """The naming of the original IMSCT dataset (ivadomed target suffixes)."""
        return cls(
            t1w=ImageSpec("T1w", {"ce": None}),
            labels={
                "tumor": "{t2w_stem}_seg-tumor.nii.gz",
                "edema": "{t2w_stem}_seg-edema.nii.gz",
                "cavity": "{t2w_stem}_seg-cavity.nii.gz",
                "centerline": "{t2w_stem}_centerline.nii.gz",
                "discs": "{t2w_stem}_labels-disc.nii.gz",
                "t1w_discs": "{t1w_stem}_labels-disc.nii.gz",
            },
        )

    def image_name(self, key: str, subject: str, session: str | None = None) -> str:
        """File name of a raw image written by the phantom (entities in the given order)."""
        spec: ImageSpec = getattr(self, key)
        parts = [f"sub-{subject}"] + ([f"ses-{session}"] if session else [])
        parts += [f"{k}-{v}" for k, v in spec.entities.items() if v is not None]
        return "_".join(parts + [spec.suffix]) + self.extension

    def label_path(self, root: Path, key: str, subject: str, session: str | None, stems: dict) -> Path:
        rel = Path(self.labels_dir, f"sub-{subject}", *([f"ses-{session}"] if session else []), "anat")
        return Path(root) / rel / self.labels[key].format(**stems)


def stem(path: str | os.PathLike) -> str:
    name = Path(path).name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return Path(name).stem


def subject_session(path: str | os.PathLike) -> str | None:
    """The subject and session a BIDS file or folder name starts with, the label of one scan in tables:
    ``sub-01_ses-02_T2w.nii.gz`` -> ``sub-01_ses-02``, ``sub-01_res-1x1x2_grid.json`` -> ``sub-01``;
    None for a name that does not start with ``sub-<label>``."""
    m = SUBJECT_SESSION_RE.match(Path(path).name)
    return m.group(0) if m else None


def scan_key(subject: str, session: str | None) -> str:
    """The key of one scan in the workflow (a wildcard value): ``01``, or ``01_ses-02`` for a session."""
    return f"{subject}_ses-{session}" if isinstance(session, str) and session else subject


def scan_dir(key: str) -> str:
    """The BIDS folder of a scan key, relative to a dataset root: ``01_ses-02`` -> ``sub-01/ses-02``."""
    subject, _, session = key.partition("_ses-")
    return f"sub-{subject}/ses-{session}" if session else f"sub-{subject}"


def parse_bids_name(name: str, extension: str) -> tuple[dict[str, str], str] | None:
    """``sub-01_ses-a_ce-gad_T1w.nii.gz`` -> ({'sub': '01', 'ses': 'a', 'ce': 'gad'}, 'T1w')."""
    if not name.endswith(extension):
        return None
    parts = name[: -len(extension)].split("_")
    ents = {}
    for p in parts[:-1]:
        m = ENTITY_RE.match(p)
        if not m:
            return None
        ents[m.group(1)] = m.group(2)
    return ents, parts[-1]


def _matches(ents: dict, suffix: str, spec: ImageSpec) -> bool:
    if suffix != spec.suffix:
        return False
    for k, v in spec.entities.items():
        if v is None:
            if k in ents:
                return False
        elif ents.get(k) != v:
            return False
    return True


def _scandir_dirs(path: Path, seen: set) -> list[os.DirEntry]:
    """Sub-directories, following symlinks but never into a directory already visited (loops)."""
    out = []
    try:
        entries = list(os.scandir(path))
    except OSError as exc:
        log.warning("cannot list %s: %s", path, exc)
        return out
    for e in entries:
        try:
            if e.is_dir():
                real = os.path.realpath(e.path)
                if real in seen:
                    log.warning("skipping %s: symlink loop or duplicate of %s", e.path, real)
                    continue
                seen.add(real)
                out.append(e)
        except OSError:
            continue
    return out


def read_participants(bids_dir: Path) -> pd.DataFrame | None:
    import pandas as pd

    p = Path(bids_dir) / "participants.tsv"
    if not p.exists():
        return None
    return pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False, na_values=["n/a"])


def discover(bids_dir: str | os.PathLike, naming: Naming | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (cohort, excluded). One cohort row per subject/session with every input path (absolute;
    missing optional labels are empty). Excluded rows give the reason; nothing raises for a bad subject."""
    naming = naming or Naming()
    root = Path(bids_dir).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{bids_dir}: BIDS directory not found")
    rows, excluded = [], []
    seen = {str(root)}
    for sub_entry in sorted(_scandir_dirs(root, seen), key=lambda e: e.name):
        if not sub_entry.name.startswith("sub-"):
            continue
        subject = sub_entry.name[4:]
        if not LABEL_RE.match(subject):
            excluded.append({"participant_id": sub_entry.name, "session_id": None,
                             "reason": "invalid subject label (BIDS labels are alphanumeric)"})
            continue
        sub_dirs = _scandir_dirs(Path(sub_entry.path), seen)
        sessions = sorted(e.name for e in sub_dirs if e.name.startswith("ses-"))
        targets = [(None, Path(sub_entry.path))] if not sessions else [
            (s[4:], Path(sub_entry.path) / s) for s in sessions
        ]
        for session, folder in targets:
            pid = f"sub-{subject}"
            sid = f"ses-{session}" if session else None
            if session is not None and not LABEL_RE.match(session):
                excluded.append({"participant_id": pid, "session_id": sid,
                                 "reason": "invalid session label (BIDS labels are alphanumeric)"})
                continue
            row, reason = _discover_one(root, folder / "anat", subject, session, naming)
            if reason:
                excluded.append({"participant_id": pid, "session_id": sid, "reason": reason})
            else:
                rows.append(row)
    import pandas as pd

    cohort = pd.DataFrame(rows, columns=_columns(naming))
    excl = pd.DataFrame(excluded, columns=["participant_id", "session_id", "reason"])
    part = read_participants(root)
    if part is not None and "participant_id" in part.columns and len(cohort):
        cohort = cohort.merge(part, on="participant_id", how="left")
    for r in excluded:
        log.warning("excluded %s%s: %s", r["participant_id"],
                    f" {r['session_id']}" if r["session_id"] else "", r["reason"])
    return cohort, excl


def _columns(naming: Naming) -> list[str]:
    return ["participant_id", "session_id", "subject", "session", *IMAGE_KEYS, *naming.labels]


def _discover_one(root, anat: Path, subject, session, naming: Naming):
    try:
        names = sorted(e.name for e in os.scandir(anat) if e.is_file())
    except OSError:
        names = []
    found: dict[str, str | None] = {}
    for key in IMAGE_KEYS:
        spec = getattr(naming, key)
        hits = []
        for name in names:
            parsed = parse_bids_name(name, naming.extension)
            if parsed and parsed[0].get("sub") == subject and parsed[0].get("ses") == session \
                    and _matches(parsed[0], parsed[1], spec):
                hits.append(name)
        if len(hits) > 1:
            return None, f"{len(hits)} files match {key} ({', '.join(hits)}); constrain its entities in the config"
        found[key] = str(anat / hits[0]) if hits else None
    stems = {f"{k}_stem": stem(found[k]) if found[k] else "" for k in IMAGE_KEYS}
    for key in naming.labels:
        needs = "t1w" if "{t1w_stem}" in naming.labels[key] else "t2w"
        if not found[needs]:
            found[key] = None
            continue
        p = naming.label_path(root, key, subject, session, stems)
        found[key] = str(p) if p.is_file() else None
    missing = [k for k in naming.required if not found.get(k)]
    if missing:
        return None, "missing " + ", ".join(missing)
    row = {"participant_id": f"sub-{subject}", "session_id": f"ses-{session}" if session else None,
           "subject": subject, "session": session, **found}
    return row, None


def listing_signature(bids_dir: str | os.PathLike) -> str:
    """Hash of the relative paths of every file under the dataset (names only: fast to list, and a
    changed listing is what invalidates discovery)."""
    root = Path(bids_dir).resolve()
    h = hashlib.sha1()
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for f in sorted(filenames):
            h.update(f"{rel}/{f}\n".encode())
    return h.hexdigest()


def discover_cached(bids_dir, naming: Naming, cache_dir, trust_cache: bool = False):
    """Discovery with a cache keyed on the dataset listing and the naming. With ``trust_cache`` (a
    Snakemake job re-parsing the workflow on a cluster node) an existing cache is used without listing
    the dataset at all."""
    cache_dir = Path(cache_dir)
    key_naming = hashlib.sha1(json.dumps(naming.__dict__, default=lambda o: o.__dict__,
                                         sort_keys=True).encode()).hexdigest()[:12]
    cohort_p, excl_p, meta_p = (cache_dir / f"cohort-{key_naming}.tsv",
                                cache_dir / f"excluded-{key_naming}.tsv", cache_dir / f"cohort-{key_naming}.json")
    if trust_cache and cohort_p.exists() and excl_p.exists():
        return _read_tsv(cohort_p), _read_tsv(excl_p)
    sig = listing_signature(bids_dir)
    if meta_p.exists() and cohort_p.exists() and excl_p.exists():
        try:
            if json.loads(meta_p.read_text()).get("listing") == sig:
                return _read_tsv(cohort_p), _read_tsv(excl_p)
        except (OSError, ValueError):
            pass
    cohort, excl = discover(bids_dir, naming)
    write_tsv(cohort, cohort_p)
    write_tsv(excl, excl_p)
    write_text(json.dumps({"listing": sig, "bids_dir": str(Path(bids_dir).resolve())}), meta_p)
    return _read_tsv(cohort_p), _read_tsv(excl_p)  # same types whether cached or not


def _read_tsv(p) -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False, na_values=["n/a"])
