"""What the speed benches' raw-forward baselines share: padding a batch of piece ids.

Not part of the package; imported by ``bench/ner_speed.py`` and ``bench/qa_speed.py``.
"""
from typing import Dict, List, Sequence

import torch


def pad_rows(ids: List[List[int]], types: List[List[int]], rows: Sequence[int]) -> Dict[str, torch.Tensor]:
    """The encoder inputs for sequences ``rows`` of ``ids``/``types``, right-padded to the longest."""
    width = max(len(ids[i]) for i in rows)
    input_ids = torch.zeros((len(rows), width), dtype=torch.long)
    token_type_ids = torch.zeros_like(input_ids)
    attention_mask = torch.zeros_like(input_ids)
    for r, i in enumerate(rows):
        input_ids[r, : len(ids[i])] = torch.tensor(ids[i])
        token_type_ids[r, : len(ids[i])] = torch.tensor(types[i])
        attention_mask[r, : len(ids[i])] = 1
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}
