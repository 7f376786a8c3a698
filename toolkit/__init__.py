"""Fine-tuning toolkit for text classification on ``transformers.Trainer``.

``import toolkit`` stays light (``import toolkit.cleaning`` loads no torch), yet saved models load through
transformers' Auto classes and ``pipeline()`` afterwards: the model, config and tokenizer classes register with
transformers as soon as transformers itself is imported (at once, if it already is).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

__version__ = "0.1.0"


def register_with_transformers() -> None:
    """Register ``TaskModelConfig`` with AutoConfig, ``TaskModel`` with AutoModel and
    AutoModelForSequenceClassification, and ``ToolkitTokenizer`` with AutoTokenizer (importing does it)."""
    import toolkit.modeling.model  # noqa: F401
    import toolkit.modeling.tokenizer  # noqa: F401


class _RegisterAfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs ``register_with_transformers`` right after ``transformers`` finishes importing."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "transformers":
            return None
        sys.meta_path.remove(self)  # find the real module once; never wrap twice
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        register_with_transformers()


if "transformers" in sys.modules:
    register_with_transformers()
elif not any(isinstance(f, _RegisterAfterImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterImport())
