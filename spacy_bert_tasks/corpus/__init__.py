"""Corpora: convert raw files (CoNLL/IOB, SQuAD, CSV/TSV/JSONL) to DocBins, and read them in training.

Importing this package registers the readers ``spacy_bert_tasks.Corpus.v1``
and ``spacy_bert_tasks.MergedCorpus.v1``, and the batcher
``spacy_bert_tasks.batch_by_task.v1`` (one task per batch, for multi-task training).
"""
from .batchers import configure_batch_by_task, task_key
from .conll import convert_conll, docs_to_conll
from .convert import convert_file, write_docbin
from .converters import CONVERTERS, FORMATS
from .detect import detect_format
from .entities import convert_entities_jsonl
from .readers import create_corpus_reader, create_merged_corpus_reader
from .report import ConversionError, ConversionReport
from .squad import convert_squad
from .textcat import convert_textcat_jsonl, convert_textcat_table

__all__ = [
    "CONVERTERS",
    "FORMATS",
    "ConversionError",
    "ConversionReport",
    "configure_batch_by_task",
    "convert_conll",
    "convert_entities_jsonl",
    "convert_file",
    "convert_squad",
    "convert_textcat_jsonl",
    "convert_textcat_table",
    "create_corpus_reader",
    "create_merged_corpus_reader",
    "detect_format",
    "docs_to_conll",
    "task_key",
    "write_docbin",
]
