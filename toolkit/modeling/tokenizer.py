"""The tokenizer saved next to a fine-tuned model: it cleans text and truncates like training did.

A model trained on cleaned text (``toolkit.cleaning.Cleaner``: traditional -> simplified Chinese, full -> half
width, links and @mentions removed, ...) and truncated at a training ``max_length`` must see the same at inference.
``ToolkitTokenizer`` is a fast tokenizer over any ``tokenizer.json`` (BERT WordPiece, MPNet, SentencePiece/BPE
conversions, ...) that keeps the cleaning options in ``tokenizer_config.json`` (``"cleaning"``) and
``model_max_length`` = the training ``max_length``. It cleans every text it encodes (a str, a batch, text pairs,
pre-split words) and truncates to ``model_max_length`` unless the caller passes ``truncation`` itself, so that

    import toolkit.modeling.tokenizer  # registers ToolkitTokenizer with AutoTokenizer
    AutoTokenizer.from_pretrained(model_dir)(text)
    pipeline("text-classification", model=model_dir)(text)

need no extra arguments and no ``trust_remote_code``. ``wrap_tokenizer`` builds one from any loaded fast tokenizer.

How ``AutoTokenizer`` finds it (transformers 5.x): ``tokenizer_config.json`` names ``"tokenizer_class":
"ToolkitTokenizer"``, which ``tokenizer_class_from_name`` resolves through the classes registered with
``AutoTokenizer.register``; that API needs a config class, so importing this module registers the class under a
placeholder config (``register_tokenizer()``), and the model module may register it for its own config class too.
Without the import, ``AutoTokenizer`` silently falls back to a plain ``TokenizersBackend`` (no cleaning, no
default truncation). Whatever ``tokenizer_class`` says, model types that ``TOKENIZER_MAPPING_NAMES`` maps to
``TokenizersBackend`` (``modernbert``, ``nystromformer``, ``xlm-roberta-xl``, ...) get the plain backend, and those
in ``MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS`` (``qwen2``, ...) their own class; BERT, MPNet, XLM-R, DeBERTa-v2
and model types unknown to transformers get ``ToolkitTokenizer``.
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Callable
from typing import Any

from tokenizers import Tokenizer
from transformers import AutoTokenizer, PreTrainedConfig, TokenizersBackend

__all__ = ["ToolkitTokenizer", "wrap_tokenizer", "register_tokenizer"]


def _position(method: Callable, name: str) -> int:
    """Index of parameter ``name`` among the positional arguments after ``self``."""
    return list(inspect.signature(method).parameters).index(name) - 1


_CALL_TRUNCATION = _position(TokenizersBackend.__call__, "truncation")
_ENCODE_TRUNCATION = _position(TokenizersBackend.encode, "truncation")


def _default_truncation(args: tuple, kwargs: dict[str, Any], position: int) -> None:
    """Set ``truncation=True`` unless the caller chose (positionally, by keyword, or in ``tokenizer_kwargs``)."""
    if len(args) > position or kwargs.get("truncation") is not None:
        return
    if (kwargs.get("tokenizer_kwargs") or {}).get("truncation") is not None:
        return
    kwargs["truncation"] = True


def _clean_nested(clean_batch: Callable[[list[str]], list[str]], *inputs: Any) -> list[Any]:
    """Clean every str inside ``inputs`` (str, lists/tuples of str, of pairs, of words) in one batch call."""
    texts: list[str] = []

    def collect(obj: Any) -> None:
        if isinstance(obj, str):
            texts.append(obj)
        elif isinstance(obj, (list, tuple)):
            for item in obj:
                collect(item)

    for obj in inputs:
        collect(obj)
    if not texts:
        return list(inputs)
    cleaned = iter(clean_batch(texts))

    def rebuild(obj: Any) -> Any:
        if isinstance(obj, str):
            return next(cleaned)
        if isinstance(obj, (list, tuple)):
            items = [rebuild(item) for item in obj]
            return tuple(items) if isinstance(obj, tuple) else items
        return obj

    return [rebuild(obj) for obj in inputs]


class ToolkitTokenizer(TokenizersBackend):
    """A fast tokenizer that cleans its text inputs with ``cleaning`` and truncates to ``model_max_length``.

    ``cleaning`` is ``Cleaner.to_dict()`` output or None (no cleaning; ``toolkit.cleaning`` is then never
    imported). The ``Cleaner`` is built on the first text (OpenCC is slow to start) and kept. Truncation defaults to
    ``True`` (to ``model_max_length``) when the caller passes no ``truncation`` (or ``None``); ``truncation=False``
    switches it off. Empty texts, also those that cleaning empties, still tokenize (to the special tokens only).
    """

    def __init__(self, *args: Any, cleaning: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if cleaning is not None and not isinstance(cleaning, dict):
            raise TypeError(f"ToolkitTokenizer(cleaning=...) expects Cleaner.to_dict() output or None, "
                            f"got {type(cleaning).__name__}.")
        self._cleaning = copy.deepcopy(cleaning)
        self._cleaner = None
        super().__init__(*args, cleaning=self._cleaning, **kwargs)

    @classmethod
    def convert_to_native_format(cls, trust_remote_code: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Load ``tokenizer.json`` as it is (the base class rebuilds a BPE model for classes with an ``__init__``)."""
        tokenizer_file = kwargs.get("tokenizer_file")
        if tokenizer_file is not None and os.path.isfile(tokenizer_file):
            return kwargs
        return super().convert_to_native_format(trust_remote_code=trust_remote_code, **kwargs)

    @property
    def cleaning(self) -> dict[str, Any] | None:
        """The cleaning options (``Cleaner.to_dict()``), or None; saved in ``tokenizer_config.json``."""
        return self._cleaning

    @cleaning.setter
    def cleaning(self, value: dict[str, Any] | None) -> None:
        if value is not None and not isinstance(value, dict):
            raise TypeError(f"cleaning expects Cleaner.to_dict() output or None, got {type(value).__name__}.")
        self._cleaning = copy.deepcopy(value)
        self._cleaner = None
        self.init_kwargs["cleaning"] = copy.deepcopy(value)

    def _get_cleaner(self) -> Any:
        """The ``Cleaner`` for ``cleaning`` (built once, on first use), or None."""
        if self._cleaning is None:
            return None
        if self._cleaner is None:
            from ..cleaning import Cleaner

            self._cleaner = Cleaner.from_dict(self._cleaning)
        return self._cleaner

    def clean(self, texts: str | list[str]) -> str | list[str]:
        """Clean one text or a list as encoding does (unchanged when ``cleaning`` is None)."""
        cleaner = self._get_cleaner()
        if cleaner is None:
            return texts
        return cleaner(texts) if isinstance(texts, str) else cleaner.clean_batch(texts)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Tokenize like ``TokenizersBackend.__call__``, with ``truncation=True`` unless the caller chose."""
        _default_truncation(args, kwargs, _CALL_TRUNCATION)
        return super().__call__(*args, **kwargs)

    def encode(self, *args: Any, **kwargs: Any) -> list[int]:
        """Encode like ``TokenizersBackend.encode``, with ``truncation=True`` unless the caller chose."""
        _default_truncation(args, kwargs, _ENCODE_TRUNCATION)
        return super().encode(*args, **kwargs)

    def _encode_plus(self, text: Any, text_pair: Any = None, *args: Any, **kwargs: Any) -> Any:
        # every encoding path (__call__, encode, tokenize) ends here: clean the texts first
        cleaner = self._get_cleaner()
        if cleaner is not None and not kwargs.get("sanitize_control_tokens"):  # (not chat-template renderings)
            text, text_pair = _clean_nested(cleaner.clean_batch, text, text_pair)
        return super()._encode_plus(text, text_pair, *args, **kwargs)


def wrap_tokenizer(tokenizer: TokenizersBackend, cleaning: dict[str, Any] | None, max_length: int) -> ToolkitTokenizer:
    """A ``ToolkitTokenizer`` with the vocabulary, normalizer, special tokens and padding side of ``tokenizer``.

    ``cleaning`` (``Cleaner.to_dict()`` or None) is checked here, so a bad option set fails at training time
    rather than when the saved model is loaded; ``max_length`` becomes ``model_max_length``.
    """
    if not isinstance(tokenizer, TokenizersBackend):
        raise TypeError(f"wrap_tokenizer needs a fast tokenizer (TokenizersBackend), got {type(tokenizer).__name__}.")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise ValueError(f"wrap_tokenizer(max_length={max_length!r}): expected a positive integer.")
    if cleaning is not None and not isinstance(cleaning, dict):
        raise TypeError(f"wrap_tokenizer(cleaning=...) expects Cleaner.to_dict() output or None, "
                        f"got {type(cleaning).__name__}.")
    cleaner = None
    if cleaning is not None:
        from ..cleaning import Cleaner

        cleaner = Cleaner.from_dict(cleaning)
        cleaning = cleaner.to_dict()  # complete and normalised: every option, with the format version
    # a copy of the backend without the truncation/padding state that the last call left on it
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    kwargs: dict[str, Any] = {name: value for name, value in tokenizer.special_tokens_map.items()
                              if name in TokenizersBackend.SPECIAL_TOKENS_ATTRIBUTES and value is not None}
    if tokenizer.extra_special_tokens:
        kwargs["extra_special_tokens"] = list(tokenizer.extra_special_tokens)
    wrapped = ToolkitTokenizer(
        tokenizer_object=backend,
        cleaning=cleaning,
        model_max_length=max_length,
        padding_side=tokenizer.padding_side,
        truncation_side=tokenizer.truncation_side,
        model_input_names=list(tokenizer.model_input_names),  # e.g. BERT's token_type_ids, absent for MPNet
        clean_up_tokenization_spaces=tokenizer.clean_up_tokenization_spaces,
        split_special_tokens=tokenizer.split_special_tokens,
        **kwargs,
    )
    wrapped._cleaner = cleaner
    return wrapped


class _ToolkitTokenizerConfig(PreTrainedConfig):
    """Placeholder config: ``AutoTokenizer.register`` needs one to make ``ToolkitTokenizer`` resolvable by name."""

    model_type = "toolkit_tokenizer"


def register_tokenizer(config_class: type[PreTrainedConfig] | None = None) -> None:
    """Register ``ToolkitTokenizer`` with ``AutoTokenizer`` (for ``config_class``, else a placeholder config).

    Either way ``"tokenizer_class": "ToolkitTokenizer"`` in ``tokenizer_config.json`` then resolves to it, for any
    model type; registering the toolkit's own config class also maps that config to it when the tokenizer config
    names no class. A transformers config class (``BertConfig``, ...) is refused by ``AutoTokenizer.register``.
    Calling it again is harmless.
    """
    AutoTokenizer.register(config_class or _ToolkitTokenizerConfig, tokenizer_class=ToolkitTokenizer)


register_tokenizer()
