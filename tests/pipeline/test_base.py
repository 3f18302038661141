"""What the heads share on the spaCy side (spacy_bert_tasks/pipeline/base.py): which doc
inputs a shared encoder reads (``link_doc_inputs``), and the listener's upstream check.

Pipelines here are initialised, not trained: the checks compare what the
encoder reads, which does not depend on the weights.
"""
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from spacy_bert_tasks.pipeline.base import link_doc_inputs

from ..conftest import encoder_config

CONTEXT = "Alice Smith visited Paris on a cold morning."
QUESTION = "Who visited Paris?"
PAIR = "It was good news."


def _examples(nlp: Language, with_cats: bool) -> list:
    ner = Example.from_dict(nlp.make_doc(CONTEXT), {"entities": [(0, 11, "PER"), (20, 25, "LOC")]})
    qa_doc = nlp.make_doc(CONTEXT)
    qa_doc._.question = QUESTION
    qa = Example.from_dict(qa_doc, {"spans": {"answers": [(0, 11, "ANSWER")]}})
    qa.reference._.question = QUESTION
    examples = [ner, qa]
    if with_cats:
        for cats in ({"SAME": 1.0, "DIFF": 0.0}, {"SAME": 0.0, "DIFF": 1.0}):
            doc = nlp.make_doc(CONTEXT)
            doc._.text_pair = PAIR
            eg = Example.from_dict(doc, {"cats": cats})
            eg.reference._.text_pair = PAIR
            examples.append(eg)
    return examples


def _pipeline(tiny_encoder, heads) -> Language:
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=encoder_config(tiny_encoder))
    for head in heads:
        nlp.add_pipe(head)
    examples = _examples(nlp, with_cats="bert_textcat" in heads)  # the cats come with pairs
    nlp.initialize(lambda: examples)
    return nlp


def _doc(nlp: Language, **inputs) -> Doc:
    doc = nlp.make_doc(CONTEXT)
    for name, value in inputs.items():
        setattr(doc._, name, value)
    return doc


def test_shared_encoder_reads_what_its_heads_read(tiny_encoder):
    nlp = _pipeline(tiny_encoder, ["bert_ner", "bert_qa"])
    assert link_doc_inputs(nlp) == {"transformer": ["question"]}
    # One pass per doc: the question is read (for bert_qa), a text pair is not (no head reads it).
    with_pair = nlp(_doc(nlp, text_pair=PAIR))
    assert with_pair._.trf_data.wordpieces.strings == nlp(CONTEXT)._.trf_data.wordpieces.strings
    asked = nlp(_doc(nlp, question=QUESTION))
    assert "who" in [piece.lower() for piece in asked._.trf_data.wordpieces.strings[0]]


def test_pair_textcat_beside_ner_reads_pairs_in_the_shared_pass(tiny_encoder):
    """The documented choice: one pass per doc, so bert_ner sees the pair that bert_textcat needs."""
    nlp = _pipeline(tiny_encoder, ["bert_textcat", "bert_ner"])
    assert nlp.get_pipe("bert_textcat").cfg["pairs"]
    assert nlp.get_pipe("transformer").model.attrs["doc_inputs"] == ["text_pair"]
    doc = nlp(_doc(nlp, text_pair=PAIR))
    assert set(doc._.trf_data.wordpieces.token_type_ids[0].tolist()) == {0, 1}


def test_replace_listeners_gives_a_head_an_encoder_that_reads_what_it_reads(tiny_encoder, tmp_path):
    nlp = _pipeline(tiny_encoder, ["bert_ner", "bert_qa"])
    plain = [(ent.text, ent.label_) for ent in nlp(CONTEXT).ents]
    nlp.replace_listeners("transformer", "bert_ner", ["model.tok2vec"])
    own = [node for node in nlp.get_pipe("bert_ner").model.walk() if "doc_inputs" in node.attrs
           and hasattr(node, "transformer")]
    assert len(own) == 1 and own[0].attrs["doc_inputs"] == []
    assert nlp.get_pipe("transformer").model.attrs["doc_inputs"] == ["question"]
    for pipeline in (nlp, _reload(nlp, tmp_path)):
        asked = pipeline(_doc(pipeline, question=QUESTION))
        assert [(ent.text, ent.label_) for ent in asked.ents] == plain
        assert asked._.trf_data.wordpieces.strings[0][1].lower() == "who"  # bert_qa still reads it


def test_replacing_the_pair_head_stops_the_shared_encoder_reading_pairs(tiny_encoder):
    nlp = _pipeline(tiny_encoder, ["bert_textcat", "bert_ner"])
    nlp.replace_listeners("transformer", "bert_textcat", ["model.tok2vec"])
    assert nlp.get_pipe("transformer").model.attrs["doc_inputs"] == []
    doc = nlp(_doc(nlp, text_pair=PAIR))
    alone = nlp.get_pipe("transformer")(nlp.make_doc(CONTEXT))
    assert doc._.trf_data.wordpieces.strings == alone._.trf_data.wordpieces.strings
    assert set(doc.cats) == {"SAME", "DIFF"}  # the textcat's own encoder reads the pair


def _reload(nlp: Language, tmp_path) -> Language:
    nlp.to_disk(tmp_path / "pipeline")
    return spacy.load(tmp_path / "pipeline")


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
