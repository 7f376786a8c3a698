"""Helpers shared by the benchmarks: load a recipe script as a module, and name the hardware."""

import importlib.util
import platform
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def load_recipe(name: str):
    """``recipes/<name>.py`` as a module, so a bench calls its ``main(argv)`` in-process."""
    spec = importlib.util.spec_from_file_location(f"{name}_recipe", ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hardware() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), no GPU"
