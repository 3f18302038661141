"""The shared, pair-aware encoder: one pass per window feeds every head.

``build_encoder_model`` returns the model of spacy-transformers' ``transformer``
component. It differs from ``spacy-transformers.TransformerModel.v3`` in four ways:

- **Pairs.** A doc with ``doc._.question`` is read as ``[CLS] question [SEP]
  window [SEP]``; a doc with ``doc._.text_pair`` as ``[CLS] window [SEP]
  text_pair [SEP]``, with the segment ids BERT was pre-trained with. The
  encoder reads only the inputs that a head listening to it reads (its
  ``doc_inputs`` attr, set by ``pipeline.base.link_doc_inputs``): a text pair
  for a textcat trained on pairs, the question for QA. A head trained on
  single texts behind its own encoder never sees either; on a shared encoder
  it reads the one pass per doc that its neighbours need.
- **Windows in word pieces.** Each doc is tokenised once; windows of at most
  ``max_length`` pieces (specials and the question included) overlap by
  ``stride`` pieces, as in SQuAD's ``doc_stride``. No text is ever dropped.
- **Length-sorted chunks.** The windows of a batch run through the network in
  chunks of similar length, so little padding is computed.
- **Frozen mode.** With ``frozen = true`` the network runs under
  ``torch.inference_mode`` in training too, and its weights get no gradients.

The output is spacy-transformers' ``FullTransformerBatch``, so its listeners,
``TransformerData`` and ``doc._.trf_data`` work unchanged. The alignment has one
row per doc token, pointing at the token's pieces in every window.

The package, one job per module: ``settings`` (the settings, listed once),
``windows`` and ``layout`` (windows, pairs, special tokens, alignment),
``runner`` (packed and chunked forward calls), ``hf`` (loading the Hugging
Face objects), ``batch`` (the output), ``shim`` (the optimizer step and the
weights' dtype on disk) and ``model`` (the thinc model).
"""
from .batch import EncoderBatch
from .hf import load_hf_encoder
from .layout import SpecialLayout
from .model import EncoderModel, build_encoder_model, init_encoder_model, listened_inputs, set_network
from .runner import max_positions, run_transformer
from .settings import EncoderSettings, takes_encoder_settings
from .windows import WindowBatch, encode_windows, ranges

__all__ = [
    "EncoderBatch", "EncoderModel", "EncoderSettings", "SpecialLayout", "WindowBatch", "build_encoder_model",
    "encode_windows", "init_encoder_model", "listened_inputs", "load_hf_encoder", "max_positions", "ranges",
    "run_transformer", "set_network", "takes_encoder_settings",
]
