"""Fine-tuning toolkit for text classification on ``transformers.Trainer``.

Kept free of heavy imports so that ``import toolkit.cleaning`` stays light; import the
submodules you need (``toolkit.modeling``, ``toolkit.data``, ...).
"""

__version__ = "0.1.0"
