"""Batches of subjects for the workflow's short per-subject steps: one job per batch (a few hundred
SLURM jobs for the paper DAG instead of thousands), outputs and logs still per subject."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from .logs import setup


def make_batches(keys: Iterable[str], size: int, prefix: str = "b") -> dict[str, list[str]]:
    """Consecutive batches (in the given order) of at most ``size`` keys, as even as possible (20 keys
    by 16: two batches of 10), named ``b000``, ``b001``..."""
    keys = list(keys)
    n = -(-len(keys) // max(1, int(size)))  # ceil
    bounds = [round(i * len(keys) / n) for i in range(n + 1)] if n else [0]
    return {f"{prefix}{i:03d}": keys[bounds[i]:bounds[i + 1]] for i in range(n)}


class BatchError(RuntimeError):
    pass


def run_batch(steps: dict[str, Callable[[logging.Logger], object]], logs: dict[str, str] | None = None,
              manifest: str | None = None, outputs: dict | None = None) -> dict:
    """Run every subject's step, each logging to its own file (``logs[key]``); a failing subject does
    not stop the others. Raises :class:`BatchError` naming the failed subjects after the last one (the
    job then fails, and its batch reruns). On success, writes ``manifest`` (JSON: each subject's
    ``outputs``) last, so it is the job's newest file."""
    from .io import write_json  # nibabel: not for the workflow's parsing, which only makes batches

    results, failed = {}, {}
    for key, step in steps.items():
        log = setup((logs or {}).get(key))
        try:
            results[key] = step(log)
        except Exception as exc:  # noqa: BLE001 - reported per subject, raised for the batch below
            log.exception("sub-%s failed", key)
            failed[key] = f"{type(exc).__name__}: {exc}"
    if failed:
        lines = "; ".join(f"sub-{k}: {v}" for k, v in failed.items())
        raise BatchError(f"{len(failed)} of {len(steps)} subject(s) failed: {lines}")
    if manifest:
        write_json({"subjects": {k: (outputs or {}).get(k) for k in steps}}, manifest)
    return results
