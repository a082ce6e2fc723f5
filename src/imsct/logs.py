"""Logging set-up shared by the CLI and the workflow scripts."""

from __future__ import annotations

import logging
import sys


def setup(log_file: str | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send the package's logging (and warnings) to ``log_file`` (a Snakemake rule's log) or stderr."""
    handler: logging.Handler = (logging.FileHandler(log_file, mode="w") if log_file
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    return logging.getLogger("imsct")


def snakemake_log(smk) -> logging.Logger:
    """Set up logging for a workflow script from its ``snakemake`` object."""
    return setup(smk.log[0] if smk.log else None)
