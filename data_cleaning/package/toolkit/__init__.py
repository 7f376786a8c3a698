"""toolkit, cleaning only: ``toolkit.cleaning`` and the ``clean-weibo`` CLI, without torch or transformers.

This is the ``toolkit-cleaning`` distribution (``pip install ./data_cleaning/package``). The full ``toolkit``
distribution holds the same modules; install one or the other, not both (they share the ``toolkit`` package).
"""

__version__ = "0.1.0"
