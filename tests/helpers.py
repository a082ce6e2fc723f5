"""Constants and helpers shared by several test modules."""

# A training configuration small enough for the test suite (2 cores, seconds per epoch).
TINY = {
    "lr": 1e-3, "max_epochs": 6, "patience": 50, "min_delta": 0.001, "seed": 3, "threads": 2, "device": "cpu",
    "max_epoch_seconds": None, "augment": {"rotation_deg": 5.0, "scale": 0.1, "translation": 0.03},
    "cord": {"base_filters": 4, "downsamplings": 2, "dropout": 0.3, "patch": [96, 64, 16], "batch_size": 2},
    "tumor": {"base_filters": 4, "downsamplings": 2, "dropout": 0.3, "patch": [48, 32, 16], "stride": [32, 16, 16],
              "batch_size": 8, "safety_factor": {"si": 1.2, "ap": 1.2, "rl": 1.0}, "crop_from": "prediction"},
}


# The tiny workflow as the tests run it whole (locally and through SLURM): 4 small subjects, one split.
TINY_WORKFLOW_4 = ["--configfile", "config/config.yaml", "tests/tiny-workflow.yaml", "tests/four-subjects.yaml"]


def split_sets(preprocessed: dict) -> tuple[dict, dict]:
    """First 6 subjects for training, the rest for validation."""
    keys = sorted(preprocessed)
    return {k: preprocessed[k] for k in keys[:6]}, {k: preprocessed[k] for k in keys[6:]}
