"""Where a tokenizer puts its special tokens around one or two segments."""
from typing import Any, List, Optional, Tuple


class SpecialLayout:
    """Where a tokenizer puts its special tokens around one or two segments.

    Read from the tokenizer's own post-processor (the template its ``__call__``
    applies), by encoding one-word placeholder segments and reading which
    positions belong to no segment. A fast tokenizer's class may not know its
    template (a generic ``PreTrainedTokenizerFast``'s ``build_inputs_with_special_tokens``
    adds nothing), its ``tokenizer.json`` does. A layout with no special token
    before the text, or none between two segments, is refused: the [CLS] pooling
    and QA's null answer read the first piece, and a pair needs a separator.
    """

    def __init__(self, tokenizer: Any, pair: bool):
        encoding = tokenizer.backend_tokenizer.encode("a", "a" if pair else None, add_special_tokens=True)
        real = [i for i, mask in enumerate(encoding.attention_mask) if mask]  # no padding, if the backend pads
        ids = [encoding.ids[i] for i in real]
        types = [encoding.type_ids[i] for i in real]
        segment = [encoding.sequence_ids[i] for i in real]
        a_pos = [i for i, s in enumerate(segment) if s == 0]
        b_pos = [i for i, s in enumerate(segment) if s == 1] if pair else [len(ids)]
        if not a_pos or not b_pos or any(s is None for s in segment[a_pos[0] : a_pos[-1] + 1]):
            raise ValueError(
                f"Could not read the special-token layout of the tokenizer of {tokenizer_name(tokenizer)}: "
                f"encoding 'a'{' + a' if pair else ''} gave {encoding.tokens}. Check its tokenizer.json."
            )
        i, j = a_pos[0], b_pos[0]
        self.prefix, self.middle = ids[:i], ids[a_pos[-1] + 1 : j]
        self.suffix = ids[b_pos[-1] + 1 :] if pair else []
        self.prefix_types, self.middle_types = types[:i], types[a_pos[-1] + 1 : j]
        self.suffix_types = types[b_pos[-1] + 1 :] if pair else []
        self.a_type, self.b_type = types[i], types[j] if pair else 0
        self.n_special = len(self.prefix) + len(self.middle) + len(self.suffix)
        if not self.prefix or (pair and not self.middle):
            where = "before the text" if not self.prefix else "between the two texts of a pair"
            raise ValueError(
                f"The tokenizer of {tokenizer_name(tokenizer)} adds no special token {where} "
                f"(its template gives {tokenizer.convert_ids_to_tokens(ids)} for 'a'{' + a' if pair else ''}). "
                "The encoder needs the layout the model was pre-trained with, e.g. [CLS] a [SEP] b [SEP]: "
                "give the tokenizer.json a post-processor (tokenizers' TemplateProcessing) that adds it."
            )

    def build(self, a: List[int], b: Optional[List[int]]) -> Tuple[List[int], List[int], int]:
        """The ids and segment ids of ``[specials] a [specials] b [specials]``, and where b starts."""
        b = b or []
        ids = self.prefix + a + self.middle + b + self.suffix
        types = (
            self.prefix_types + [self.a_type] * len(a) + self.middle_types + [self.b_type] * len(b) + self.suffix_types
        )
        return ids, types, len(self.prefix) + len(a) + len(self.middle)


def tokenizer_name(tokenizer: Any) -> str:
    return f"'{tokenizer.name_or_path}'" if getattr(tokenizer, "name_or_path", "") else "this encoder"


