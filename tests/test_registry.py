"""Every name listed in the entry points resolves, and points at what is registered."""
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from spacy.util import registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# Entry-point group -> registry. Layers and optimizers live in thinc's registries.
REGISTRIES = {
    "spacy_architectures": "architectures",
    "thinc_layers": "layers",
    "spacy_readers": "readers",
    "spacy_batchers": "batchers",
    "spacy_scorers": "scorers",
    "spacy_misc": "misc",
    "spacy_callbacks": "callbacks",
    "spacy_loggers": "loggers",
    "thinc_optimizers": "optimizers",
}


def _listed(group: str):
    return sorted(tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"].get(group, {}).items())


def _cases():
    cases = [("spacy_factories", name, target) for name, target in _listed("spacy_factories")]
    for group in REGISTRIES:
        cases.extend((group, name, target) for name, target in _listed(group))
    return cases


@pytest.mark.parametrize("group,name,target", _cases())
def test_entry_point_resolves(group, name, target):
    import spacy_bert_tasks  # noqa: F401  (registers everything)

    installed = {ep.name: ep.value for ep in entry_points(group=group)}
    assert installed.get(name) == target, f"reinstall the package: {group}:{name} is not installed as {target}"
    loaded = next(ep for ep in entry_points(group=group) if ep.name == name).load()
    if group == "spacy_factories":
        from spacy.language import Language

        assert Language.has_factory(name)
    else:
        reg = getattr(registry, REGISTRIES[group])
        assert reg.entry_point_namespace == group
        assert reg.get(name) is loaded
        assert name.startswith("spacy_bert_tasks.") and name.rsplit(".", 1)[-1].startswith("v")


def test_every_registered_name_is_listed():
    import spacy_bert_tasks  # noqa: F401

    listed = {name for group in REGISTRIES for name, _ in _listed(group)}
    for group, attr in REGISTRIES.items():
        ours = {name for name in getattr(registry, attr).get_all() if name.startswith("spacy_bert_tasks.")}
        missing = ours - listed
        assert not missing, f"registered but not in pyproject's [{group}] entry points: {sorted(missing)}"
