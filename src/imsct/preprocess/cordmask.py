"""The cord-localisation training target (paper section 2.1): a 30 mm-diameter tube around the
manually placed centerline, measured in mm on the centerline's own (possibly anisotropic) grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import distance_transform_edt

from ..io import ImageError


def centerline_from_csv(csv_path, reference: nib.Nifti1Image, orientation: str = "LAS") -> np.ndarray:
    """A centerline mask on ``reference``'s grid from a CSV of voxel coordinates (x,y,z rows; a header
    line is allowed). SCT writes them as voxel indices of the image reoriented to its "RPI" (nibabel
    axis codes LAS), whatever the
    file's own orientation, so they are mapped through that reorientation (checked on the real
    ``t2_centerline-manual`` pair)."""
    rows = []
    for line in Path(csv_path).read_text().splitlines():
        parts = [p.strip() for p in line.replace(";", ",").split(",") if p.strip()]
        if len(parts) < 3:
            continue
        try:
            rows.append([float(v) for v in parts[:3]])
        except ValueError:
            continue  # header
    if not rows:
        raise ImageError(f"{csv_path}: no x,y,z rows found")
    shape = np.asarray(reference.shape[:3])
    ornt = nib.orientations.ornt_transform(nib.io_orientation(reference.affine),
                                           nib.orientations.axcodes2ornt(tuple(orientation)))
    # voxel of the reoriented image -> voxel of the file, through world coordinates
    reo_aff = reference.affine @ nib.orientations.inv_ornt_aff(ornt, shape)
    vox = np.linalg.solve(reference.affine, reo_aff) @ np.c_[np.asarray(rows), np.ones(len(rows))].T
    ijk = np.rint(vox[:3].T).astype(int)
    inside = np.all((ijk >= 0) & (ijk < shape), axis=1)
    if not inside.any():
        raise ImageError(f"{csv_path}: every centerline point lies outside the reference image {shape.tolist()}")
    mask = np.zeros(reference.shape[:3], np.uint8)
    mask[tuple(ijk[inside].T)] = 1
    return mask


def tube_mask(centerline: np.ndarray, affine: np.ndarray, diameter_mm: float = 30.0,
              source: str = "centerline") -> np.ndarray:
    """Every voxel whose centre is within ``diameter_mm / 2`` of a centerline voxel centre, with
    distances in mm (exact Euclidean distance transform with the voxel sizes as sampling)."""
    cl = np.asarray(centerline) > 0
    if not cl.any():
        raise ImageError(f"{source}: empty centerline")
    spacing = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    dist = distance_transform_edt(~cl, sampling=spacing)
    return (dist <= diameter_mm / 2).astype(np.uint8)
