"""Load ``evaluate`` metric modules: the toolkit's bundled ones by name, a user's own by path, or a hub name.

The bundled modules (``metric_modules/<name>/<name>.py``) compute with scikit-learn and SciPy and need no
network. ``evaluate.load(path)`` never writes next to the script: it copies it into the modules cache
(``$HF_MODULES_CACHE``, default ``~/.cache/huggingface/modules/evaluate_modules/metrics/<name>/<hash>/``, with its
file lock there) and imports the copy, so a read-only install works. The metric itself gets
``keep_in_memory=True`` (no Arrow or lock files for single-process use) and a ``cache_dir`` under
``$TOOLKIT_CACHE/evaluate`` (default ``~/.cache/toolkit/evaluate``), where it only creates an empty folder.

Timings (this machine; ``import evaluate`` alone takes 6-7 s): the first ``evaluate.load`` of a bundled module
takes ~0.2 s (mostly importing scikit-learn; the next modules ~0.01 s), with a fresh or a warm modules cache alike;
a repeated ``evaluate.load`` in the same process still takes 3-7 ms (it re-hashes the script, re-checks its imports
and builds a new instance); a repeated ``load_metric`` takes ~7 us (a dict lookup). A hub name offline fails
after ~1.5 s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import evaluate

BUNDLED = {"classification", "regression", "rating"}
_MODULES = Path(__file__).resolve().parent / "metric_modules"
_CACHE: dict[tuple[str, str], evaluate.EvaluationModule] = {}


def bundled_path(name: str) -> Path:
    """The folder of the bundled evaluate module ``name`` (one of ``BUNDLED``)."""
    if name not in BUNDLED:
        raise ValueError(f"{name!r} is not a bundled metric; bundled: {', '.join(sorted(BUNDLED))}.")
    return _MODULES / name


def _cache_dir() -> str:
    """``$TOOLKIT_CACHE/evaluate`` (default ``~/.cache/toolkit/evaluate``): kept out of the package folder."""
    return str(Path(os.environ.get("TOOLKIT_CACHE", Path.home() / ".cache" / "toolkit")).expanduser() / "evaluate")


def _hub_error(name: str, error: Exception) -> ValueError:
    return ValueError(
        f"cannot load metric {name!r}: it is neither a bundled metric nor an existing local path, and the Hugging "
        f"Face Hub is unreachable (offline?) or has no such module ({type(error).__name__}); use a bundled metric "
        f"({', '.join(sorted(BUNDLED))}) or a local evaluate module path."
    )


def load_metric(name_or_path: str, **kwargs: Any) -> evaluate.EvaluationModule:
    """An evaluate module from a bundled name, a local script or folder, or else the hub (``evaluate.load``).

    ``kwargs`` go to ``evaluate.load`` (defaults: ``keep_in_memory=True`` and a cache_dir under $TOOLKIT_CACHE).
    Modules are cached per (target, kwargs), since ``evaluate.load`` re-hashes and re-imports on every call; a
    local script edited in the same process is therefore not reloaded.
    """
    name_or_path = str(name_or_path)
    local = Path(name_or_path).expanduser()
    if name_or_path in BUNDLED:
        target, hub = str(bundled_path(name_or_path)), False
    elif local.exists():
        target, hub = str(local.resolve()), False  # absolute, so evaluate never falls back to the hub
    else:
        target, hub = name_or_path, True
    key = (target, repr(sorted(kwargs.items())))
    if key not in _CACHE:
        options = {"keep_in_memory": True, "cache_dir": _cache_dir(), **kwargs}
        if not hub:
            _CACHE[key] = evaluate.load(target, **options)
        else:
            try:
                _CACHE[key] = evaluate.load(target, **options)
            except Exception as error:  # offline, unknown name, or a broken hub script: one clear line
                raise _hub_error(name_or_path, error) from error
    return _CACHE[key]


def compute(
    metric: evaluate.EvaluationModule, predictions: Sequence, references: Sequence, **kwargs: Any
) -> dict[str, float]:
    """``metric.compute`` with plain Python floats, ready for JSON and ``Trainer`` logs.

    ``kwargs`` are the module's compute options (``labels``, ``values``, ``points``, ...). Returns ``{}`` on a
    non-main process of a distributed metric, where evaluate returns None.
    """
    result = metric.compute(predictions=predictions, references=references, **kwargs)
    if result is None:
        return {}
    try:
        return {key: float(value) for key, value in result.items()}
    except (TypeError, ValueError) as error:
        raise TypeError(f"metric {metric.name!r} returned a non-scalar value in {result}: {error}") from error
