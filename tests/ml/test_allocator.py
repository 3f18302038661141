"""Training memory: resident memory levels off instead of climbing step after step.

glibc keeps the pages of each step's freed tensors (see ``ml/allocator.py``);
the encoder gives them back, and its optimizer step no longer leaves a tensor
per parameter behind (``ml/encoder/shim.py``). With thinc's step, this test's
pipeline grew from about 505 MB to 540-570 MB over the measured updates; the
bound is 30 MB. The test is slow (run with --slow).
"""
import random
import statistics
from pathlib import Path

import pytest
import torch
from spacy.training import Example

from spacy_bert_tasks.ml import allocator

WORDS = ["good", "news", "for", "everyone", "in", "Paris", "on", "a", "cold", "morning"]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmRSS")


@pytest.mark.slow  # 200 updates: about 40 s on an idle core, minutes on a busy machine
@pytest.mark.skipif(not Path("/proc/self/status").exists() or allocator._MALLOC_TRIM is None,
                    reason="reads VmRSS from /proc and needs glibc's malloc_trim (Linux)")
def test_training_memory_levels_off(make_nlp):
    """200 updates on fresh docs of every length: after 40, the resident memory stays put."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rng = random.Random(0)
    nlp = make_nlp()
    nlp.add_pipe("bert_ner")

    def example() -> Example:
        filler = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 40)))
        doc = nlp.make_doc(f"Alice Smith visited Globex {filler}.")
        return Example.from_dict(doc, {"entities": [(0, 11, "PER"), (20, 26, "ORG")]})

    try:
        optimizer = nlp.initialize(lambda: [example() for _ in range(4)])
        rss = []
        for _ in range(200):
            nlp.update([example() for _ in range(16)], sgd=optimizer)
            rss.append(_rss_mb())
    finally:
        torch.set_num_threads(threads)
    settled, last = statistics.median(rss[30:50]), statistics.median(rss[-30:])
    assert last - settled < 30, f"RSS grew from {settled:.0f} MB (update 40) to {last:.0f} MB (last 30 updates)"


def test_release_is_rate_limited(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "_MALLOC_TRIM", calls.append)
    monkeypatch.setattr(allocator, "_last_trim", float("-inf"))
    assert allocator.release_freed_memory(min_interval_s=3600)
    assert not allocator.release_freed_memory(min_interval_s=3600)
    assert allocator.release_freed_memory(min_interval_s=0)
    assert calls == [0, 0]


def test_first_training_pass_fixes_the_mmap_threshold_once(make_nlp, monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "_MALLOPT", lambda param, value: calls.append((param, value)) or 1)
    monkeypatch.setattr(allocator, "_threshold_fixed", False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    nlp = make_nlp()
    nlp.add_pipe("bert_ner")
    doc = nlp.make_doc("Alice Smith visited Globex.")
    examples = [Example.from_dict(doc, {"entities": [(0, 11, "PER"), (20, 26, "ORG")]})]
    optimizer = nlp.initialize(lambda: examples)
    list(nlp.pipe(["No training here."]))
    assert calls == []  # inference leaves malloc alone
    nlp.update(examples, sgd=optimizer)
    nlp.update(examples, sgd=optimizer)
    assert calls == [(allocator.M_MMAP_THRESHOLD, 1 << 20)]


def test_mmap_threshold_set_by_the_user_is_kept(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "_MALLOPT", lambda param, value: calls.append((param, value)) or 1)
    monkeypatch.setattr(allocator, "_threshold_fixed", False)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=4194304")
    assert not allocator.fix_mmap_threshold()
    assert calls == []
