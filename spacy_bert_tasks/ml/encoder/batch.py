"""The encoder's output: spacy-transformers' ``FullTransformerBatch``, split fast per doc."""
from typing import Any, Dict, List

import torch
from spacy_transformers.data_classes import FullTransformerBatch, TransformerData
from thinc.api import torch2xp
from transformers.modeling_outputs import ModelOutput


class EncoderBatch(FullTransformerBatch):
    """``FullTransformerBatch`` with a fast split per doc.

    Each doc's alignment rows are contiguous and its windows consecutive, so
    the split needs only the docs' lengths, not spacy-transformers' lookup of
    every token (which costs more than a tiny encoder's forward pass).
    """

    def split_by_doc(self) -> List[TransformerData]:
        outputs: Dict[str, Any] = {}
        for key, value in self.model_output.items():
            if isinstance(value, torch.Tensor):
                outputs[key] = torch2xp(value)
        seq_len = self.wordpieces.input_ids.shape[1] if len(self.wordpieces.lengths) else 0
        doc_data = []
        window = row = 0
        for doc_spans in self.spans:
            if not doc_spans:
                doc_data.append(TransformerData.empty())
                continue
            n_windows, n_tokens = len(doc_spans), len(doc_spans[0].doc)
            align = self.align[row : row + n_tokens]
            align.data = align.data - window * seq_len
            model_output = ModelOutput()
            for key, value in outputs.items():
                model_output[key] = value[window : window + n_windows]
            doc_data.append(
                TransformerData(wordpieces=self.wordpieces[window : window + n_windows], model_output=model_output, align=align)
            )
            window += n_windows
            row += n_tokens
        return doc_data

