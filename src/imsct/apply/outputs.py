"""File-level entry points of the workflow's apply rules: the tables with the growth plots, and the
derivatives dataset's description."""

from __future__ import annotations

from pathlib import Path

from ..io import write_json, write_tsv


def write_tables(records: list[str], discs: dict, sessions: list[str], threshold: float, volumes_out, followup_out,
                 growth_dir, participants: list[str]) -> None:
    """``volumes.tsv``, ``followup.tsv`` and ``<growth_dir>/<participant>_growth.png`` for each of
    ``participants`` (those with several sessions)."""
    from ..viz import save_figure
    from .followup import followup_table, growth_figure, read_sessions
    from .volumetry import volumes_table

    vol = volumes_table(records, discs, threshold)
    ses = read_sessions(sessions)
    write_tsv(vol, volumes_out)
    write_tsv(followup_table(vol, ses), followup_out)
    Path(growth_dir).mkdir(parents=True, exist_ok=True)
    for pid in participants:
        save_figure(growth_figure(vol, ses, pid), Path(growth_dir) / f"{pid}_growth.png")


def write_dataset_description(models: list[str], out) -> Path:
    """The derivatives' ``dataset_description.json``, naming the ensemble's model folders."""
    import json

    from .. import __version__

    members = []
    for m in models:
        meta = json.loads(Path(m).read_text())
        members.append({"folder": str(Path(m).parent), "split": meta.get("split"),
                        "tumor_sha256": meta.get("tumor", {}).get("sha256"),
                        "cord_sha256": meta.get("cord", {}).get("sha256")})
    return write_json({"Name": "imsct segmentations of intramedullary spinal cord tumors", "BIDSVersion": "1.9.0",
                       "DatasetType": "derivative",
                       "GeneratedBy": [{"Name": "imsct", "Version": __version__,
                                        "Description": "cascaded cord/tumor U-Nets (Lemay et al. 2021), mean of "
                                                       f"{len(members)} model(s)"}],
                       "imsct_models": members}, out)
