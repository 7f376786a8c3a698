"""Which checkpoint a run resumes from, and the step statistics each checkpoint carries.

transformers 5.x writes a checkpoint in place (no temporary folder renamed at the end), into
``checkpoint-<global_step>``: the weights (model.safetensors, config.json, tokenizer files, training_args.bin), then
optimizer.pt, scheduler.pt, scaler.pt (with a gradient scaler), each process's rng_state[_<rank>].pth, and last,
from the main process, trainer_state.json; only then are older checkpoints rotated out. A run killed while saving
therefore leaves a newest folder without trainer_state.json (or with a truncated one) beside the previous complete
checkpoint. The main process does not wait for the other ranks' RNG files, so with several processes those are
checked too. ``StepStatsMixin`` writes step_stats[_<rank>].json first, so trainer_state.json stays the last file.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
           "adapter_model.safetensors", "adapter_model.bin")
OPTIMIZERS = ("optimizer.pt", "optimizer.bin")
SCHEDULER = "scheduler.pt"
STEP_STATS = "step_stats"
NO_RESUME = ("", "false", "none", "no")  # what the argument parser also reads as no resume
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def _present(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def _weights_missing(folder: Path) -> list[str]:
    for name in WEIGHTS:
        if not _present(folder / name):
            continue
        if not name.endswith(".index.json"):
            return []
        try:  # a sharded save: the index is written after its shards, and names them
            shards = set(json.loads((folder / name).read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return [f"{name} (unreadable)"]
        return sorted(s for s in shards if not _present(folder / s))
    return [WEIGHTS[0]]


def _rng_missing(folder: Path, world_size: int | None) -> list[str]:
    if _present(folder / "rng_state.pth"):  # saved by one process
        return []
    if world_size is not None and world_size > 1:  # one file per process, written side by side
        return [n for n in (f"rng_state_{i}.pth" for i in range(world_size)) if not _present(folder / n)]
    return [] if any(map(_present, folder.glob("rng_state_*.pth"))) else ["rng_state.pth"]


def checkpoint_step(checkpoint_dir: str | os.PathLike) -> int | None:
    """The global step in trainer_state.json, or None when it is missing or unreadable (a half-written file)."""
    try:
        step = json.loads((Path(checkpoint_dir) / TRAINER_STATE).read_text(encoding="utf-8"))["global_step"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return step if isinstance(step, int) else None


def is_complete(checkpoint_dir: str | os.PathLike, world_size: int | None = None) -> tuple[bool, list[str]]:
    """Whether a checkpoint folder holds what resuming needs (weights, optimizer, scheduler, RNG states, and a
    readable trainer_state.json, the file written last), and the missing (or empty, or unreadable) files. With
    ``world_size`` > 1 a several-process save needs every rank's rng_state_<rank>.pth, else one is enough."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return False, [str(folder)]
    missing = _weights_missing(folder)
    if not any(_present(folder / n) for n in OPTIMIZERS) and not any(p.is_dir() for p in folder.glob("optimizer*")):
        missing.append(OPTIMIZERS[0])
    if not _present(folder / SCHEDULER):
        missing.append(SCHEDULER)
    missing += _rng_missing(folder, world_size)
    if not (folder / TRAINER_STATE).is_file():
        missing.append(TRAINER_STATE)
    elif checkpoint_step(folder) is None:
        missing.append(f"{TRAINER_STATE} (truncated)")
    return not missing, missing


def checkpoints_newest_first(output_dir: str | os.PathLike) -> list[Path]:
    """The checkpoint-<step> folders of a run, highest step first."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def latest_complete_checkpoint(output_dir: str | os.PathLike, world_size: int | None = None
                               ) -> tuple[str | None, list[tuple[str, list[str]]]]:
    """The newest complete checkpoint in ``output_dir`` (None if there is none) and the newer, incomplete ones
    skipped on the way, each with its missing files."""
    skipped = []
    for path in checkpoints_newest_first(output_dir):
        complete, missing = is_complete(path, world_size)
        if complete:
            return str(path), skipped
        skipped.append((str(path), missing))
    return None, skipped


def _skipped_note(skipped: list[tuple[str, list[str]]]) -> str:
    return "; ".join(f"{Path(p).name} lacks {', '.join(m)}" for p, m in skipped)


def resolve_resume(output_dir: str | os.PathLike, requested: str | bool | None,
                   world_size: int | None = None) -> str | None:
    """The checkpoint to resume from for ``--resume_from_checkpoint``: None/"false"/"none"/"no" (no resume),
    "true"/"latest" (the newest complete checkpoint in ``output_dir``, skipping half-saved ones with a warning), or
    a checkpoint path (as given, else under ``output_dir``), which must be complete. Raises ValueError when there is
    nothing to resume."""
    if requested is None or requested is False or (isinstance(requested, str) and requested.lower() in NO_RESUME):
        return None
    if requested is True or (isinstance(requested, str) and requested.lower() in ("true", "latest")):
        path, skipped = latest_complete_checkpoint(output_dir, world_size)
        for skipped_path, missing in skipped:
            logger.warning("Skipping %s: an incomplete checkpoint (missing %s), probably killed while saving.",
                           skipped_path, ", ".join(missing))
        if path is None:
            found = f" ({_skipped_note(skipped)})" if skipped else ""
            raise ValueError(f"Nothing to resume in {output_dir}: no complete checkpoint-* folder{found}; drop "
                             "--resume_from_checkpoint or use --overwrite_output_dir to start over.")
        logger.info("Resuming from %s (step %s).", path, checkpoint_step(path))
        return path
    path = Path(requested)
    if not path.exists() and not path.is_absolute() and (Path(output_dir) / path).exists():
        path = Path(output_dir) / path
    if not path.is_dir():
        raise ValueError(f"--resume_from_checkpoint {requested}: no such checkpoint folder; pass "
                         "--resume_from_checkpoint true to resume from the latest complete one.")
    complete, missing = is_complete(path, world_size)
    if not complete:
        raise ValueError(f"--resume_from_checkpoint {requested}: an incomplete checkpoint (missing "
                         f"{', '.join(missing)}), probably killed while saving; pass --resume_from_checkpoint true "
                         "to resume from the latest complete one.")
    return str(path)


# ---- step statistics ---------------------------------------------------------------------------------------------
STAT_COLUMNS = ("losses", "steps", "real_tokens", "padded_tokens")  # one entry per micro-batch (training_step call)


def step_stats_path(checkpoint_dir: str | os.PathLike, world_size: int = 1, process_index: int = 0) -> Path:
    """step_stats.json, or step_stats_<rank>.json with several processes (each records its own batches)."""
    name = STEP_STATS if world_size <= 1 else f"{STEP_STATS}_{process_index}"
    return Path(checkpoint_dir) / f"{name}.json"


def write_step_stats(checkpoint_dir: str | os.PathLike, stats: dict, world_size: int = 1,
                     process_index: int = 0) -> Path:
    """Write one process's step statistics into a checkpoint folder (atomically)."""
    path = step_stats_path(checkpoint_dir, world_size, process_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(stats), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_step_stats(checkpoint_dir: str | os.PathLike, world_size: int = 1, process_index: int = 0) -> dict | None:
    """One process's step statistics of a checkpoint, cut to the batches of its first global_step optimizer steps
    (trainer_state.json's); None, with a warning, when the checkpoint has none (saved without them)."""
    path = step_stats_path(checkpoint_dir, world_size, process_index)
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
        columns = {k: list(stats[k]) for k in STAT_COLUMNS}
        if len({len(v) for v in columns.values()}) != 1:
            raise ValueError("columns of different lengths")
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("%s has no readable %s (%s): the loss curve, token counts and train seconds will cover the "
                       "resumed steps only.", checkpoint_dir, path.name, type(error).__name__)
        return None
    global_step = checkpoint_step(checkpoint_dir)
    if global_step is None:
        global_step = stats.get("global_step", 0)
    keep = [i for i, step in enumerate(columns["steps"]) if step < global_step]
    return {**{k: [v[i] for i in keep] for k, v in columns.items()}, "global_step": global_step,
            "train_seconds": float(stats.get("train_seconds", 0.0))}
