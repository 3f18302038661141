"""What the student reads: the teacher's training corpora, and plain text.

Corpora are ``.spacy`` files read with ``spacy_bert_tasks.Corpus.v1`` (the
questions and text pairs kept), so their gold adds the heads' own losses.
Plain text (one doc a line) has no gold: the NER and textcat heads learn from
the teacher alone there, so domain text can be used too. QA needs questions,
so it learns only from corpora.
"""
from pathlib import Path
from typing import List, Optional, Sequence, Union

from spacy.language import Language
from spacy.training import Example

from ..corpus.readers import TaskCorpus


def teacher_corpora(teacher: Language, base: Optional[Path] = None) -> List[Path]:
    """The training corpora named in the teacher's config (``paths.train``), where they exist.

    base (Optional[Path]): the folder relative paths are read from (default: the working folder).
    """
    value = teacher.config.get("paths", {}).get("train")
    if not value:
        return []
    paths = [Path(p.strip()) for p in str(value).split(",") if p.strip()]
    paths = [p if p.is_absolute() or base is None else base / p for p in paths]
    return [p for p in paths if p.exists()]


def read_examples(
    nlp: Language, corpora: Sequence[Union[str, Path]], texts: Sequence[Union[str, Path]] = (), *, limit: int = 0
) -> List[Example]:
    """Examples from ``.spacy`` corpora and from plain-text files (unlabelled, blank lines skipped).

    limit (int): at most this many docs from each file; 0 for all.
    """
    examples: List[Example] = []
    for path in corpora:
        if not Path(path).exists():
            raise FileNotFoundError(f"Corpus {path} does not exist. Pass .spacy files made by `spacy-bert-tasks convert`.")
        examples.extend(TaskCorpus([path], limit=limit)(nlp))
    for path in texts:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"Text file {path} does not exist. Pass plain text, one doc a line.")
        with path.open(encoding="utf8") as file:
            n = 0
            for line in file:
                if not line.strip():
                    continue
                doc = nlp.make_doc(line.strip())
                examples.append(Example(doc, doc.copy()))
                n += 1
                if limit and n >= limit:
                    break
    if not examples:
        raise ValueError(
            "No data to distil on: the teacher's config names no training corpus that exists here, and no "
            "--corpus or --text was given. Pass the teacher's .spacy corpora or plain text."
        )
    return examples
