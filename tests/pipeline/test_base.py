"""What the heads share on the spaCy side (spacy_bert_tasks/pipeline/base.py)."""
import pytest
import spacy
from spacy.training import Example

from ..conftest import encoder_config


@pytest.mark.parametrize("upstream", ["encoder", "*"])
def test_listener_with_a_wrong_upstream_names_the_transformers(tiny_encoder, upstream):
    nlp = spacy.blank("en")
    if upstream != "*":
        nlp.add_pipe("transformer", config=encoder_config(tiny_encoder))
    nlp.add_pipe("bert_ner", config={"model": {
        "@architectures": "spacy_bert_tasks.NER.v1",
        "tok2vec": {"@architectures": "spacy_bert_tasks.Listener.v1", "upstream": upstream},
    }})
    doc = nlp.make_doc("Alice left")
    examples = [Example.from_dict(doc, {"entities": ["U-PER", "O"]})]
    expected = "no transformer component of that name.*transformer\\b" if upstream != "*" else "none"
    with pytest.raises(ValueError, match=expected) as err:
        nlp.initialize(lambda: examples)
    assert f'upstream = "{upstream}"' in str(err.value) and "bert_ner" in str(err.value)
