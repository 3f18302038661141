"""The encoder's settings, listed once.

``spacy_bert_tasks.Encoder.v1``, ``Listener.v1``'s replacements
(``StandaloneEncoder.v1``, ``EncoderTok2Vec.v1``) and ``QuantizedEncoder.v1``
all take these keyword settings. ``takes_encoder_settings`` gives a registered
function their parameters (names, types and defaults), so that spaCy's config
validation sees them, and hands them to the function as one ``EncoderSettings``.
"""
import dataclasses
import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict


@dataclass(frozen=True)
class EncoderSettings:
    """How the encoder cuts docs into windows and runs them.

    max_length (int): word pieces per window, specials and question included.
    stride (int): word pieces shared by consecutive windows of a long doc.
    max_question_length (int): longer questions are cut to this many pieces.
    max_pair_length (int): longer ``text_pair`` texts are cut to this many pieces.
    max_batch_tokens (int): padded pieces per forward chunk.
    frozen (bool): never compute gradients for the encoder (feature extraction).
    save_dtype (str): what the network's floating-point weights are written to disk
        as: "float32", or "float16"/"bfloat16" for half the size (they are read
        back as float32; the rounding is the only change).
    tokenizer_config (Dict[str, Any]): keyword arguments for the Hugging Face tokenizer.
    transformer_config (Dict[str, Any]): keyword arguments for the Hugging Face config.
    """

    max_length: int = 512
    stride: int = 128
    max_question_length: int = 64
    max_pair_length: int = 256
    max_batch_tokens: int = 4096
    frozen: bool = False
    save_dtype: str = "float32"
    tokenizer_config: Dict[str, Any] = field(default_factory=lambda: {"use_fast": True})
    transformer_config: Dict[str, Any] = field(default_factory=dict)


SETTING_NAMES = tuple(f.name for f in dataclasses.fields(EncoderSettings))
# The settings an EncoderModel keeps in its attrs (the two HF configs live in its
# wrapper, save_dtype on the wrapper's shim, which writes the weights).
WINDOW_SETTINGS = tuple(name for name in SETTING_NAMES if not name.endswith("_config") and name != "save_dtype")


def _parameters(**defaults: Any) -> list:
    params = []
    for f in dataclasses.fields(EncoderSettings):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        default = defaults.get(f.name, default)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=f.type))
    return params


def takes_encoder_settings(**defaults: Any) -> Callable[[Callable], Callable]:
    """Give ``func(..., settings)`` the encoder settings as keyword parameters.

    The wrapped function is called as ``func(*args, settings=EncoderSettings(...), **rest)``;
    its visible signature lists its own parameters (all but ``settings``) and then
    every field of ``EncoderSettings``, with ``defaults`` overriding theirs.
    """

    def decorate(func: Callable) -> Callable:
        own = [p for p in inspect.signature(func).parameters.values() if p.name != "settings"]
        own = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) if p.kind is p.KEYWORD_ONLY else p for p in own]
        signature = inspect.Signature(own + _parameters(**defaults), return_annotation=inspect.signature(func).return_annotation)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            settings = EncoderSettings(**{name: values.pop(name) for name in SETTING_NAMES})
            return func(settings=settings, **values)

        wrapper.__signature__ = signature  # what inspect (and spaCy's config validation) reads
        return wrapper

    return decorate
