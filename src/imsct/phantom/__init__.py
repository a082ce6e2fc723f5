"""Procedural synthetic IMSCT cohort (the project's embedded default data)."""

# Loaded on first use: importing the package (e.g. for the numpy-only .plan the workflow reads when it
# parses) does not import the renderer and scipy.
_LAZY = {"generate_subject": ".cohort", "write_dataset_files": ".cohort", "plan_cohort": ".plan"}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
