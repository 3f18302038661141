"""Write the project's sample data: small, original, in the public datasets' formats.

Every sentence here is made up by the templates below (fictional people, firms,
towns and findings), so the samples can be shipped and changed freely. The files
use the same folder layout and formats as the public datasets, so the workflow
runs unchanged on either with only ``vars.data_dir`` switched:

    conll2003/train.txt, valid.txt       CoNLL-2003 columns (WORD POS CHUNK NER, IOB2), -DOCSTART- lines
    sst2/train.tsv, dev.tsv              GLUE SST-2: "sentence<TAB>label", lower-cased, trailing space
    mrpc/train.tsv, dev.tsv              GLUE MRPC: UTF-8 BOM, Quality, #1 ID, #2 ID, #1 String, #2 String
    squad_v1.1/dev-v1.1.articles00-42.json   SQuAD v1.1 JSON (named like the public slice; 20 articles)
    craft_biomed/craft_paragraphs.txt    domain text: one paragraph per line, blank line between articles

Run it from anywhere: ``python assets/make_samples.py``. The output is the same
on every run (fixed seeds, no set iteration), so the committed files can be
checked against it.
"""
import json
import random
from pathlib import Path
from typing import Dict, List, Tuple

HERE = Path(__file__).resolve().parent
SQUAD_FILE = "dev-v1.1.articles00-42.json"

FIRST = ["Ana", "Boris", "Carla", "Dmitri", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas",
         "Kemal", "Lena", "Marek", "Nadia", "Oskar", "Priya", "Rafael", "Sanna", "Tomas", "Ursula"]
LAST = ["Albrecht", "Brandvold", "Castellan", "Dunmore", "Esterhaz", "Falkner", "Grimaldo",
        "Halloran", "Ivanova", "Jaspers", "Kowalczyk", "Lindqvist", "Moravec", "Nakashima", "Okonkwo"]
ORGS = [["Norvik", "Shipping"], ["Caldera", "Mining"], ["Bluefen", "Bank"], ["Tessaro", "Motors"],
        ["Harrow", "United"], ["Velmar", "Telecom"], ["Ostrand", "Rovers"], ["Pellham", "Foods"],
        ["Quarry", "Athletic"], ["Sundial", "Airways"], ["Krona", "Insurance"], ["Marlowe", "Press"]]
PLACES = [["Varnholm"], ["Estoril", "Bay"], ["Kettering", "Falls"], ["Drumlin"], ["Port", "Aubrey"],
          ["Salcombe"], ["Mirefield"], ["Tarvos"], ["Lowenmark"], ["New", "Carrick"], ["Brisa"], ["Okhta"]]
NATIONS = ["Norwegian", "Brazilian", "Danish", "Chilean", "Austrian", "Kenyan", "Portuguese", "Finnish"]
EVENTS = [["Harbour", "Cup"], ["Northern", "Open"], ["Coastal", "Rally"], ["Autumn", "Marathon"],
          ["Lantern", "Festival"], ["River", "Games"]]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

POS = {
    ",": ",", ".": ".", "the": "DT", "a": "DT", "said": "VBD", "would": "MD", "open": "VB", "on": "IN",
    "in": "IN", "of": "IN", "to": "TO", "that": "IN", "an": "DT", "office": "NN", "beat": "VBD",
    "won": "VBD", "visit": "VB", "next": "JJ", "week": "NN", "government": "NN", "chief": "JJ",
    "executive": "NN", "company": "NN", "its": "PRP$", "shares": "NNS", "rose": "VBD", "percent": "NN",
    "after": "IN", "team": "NN", "signed": "VBD", "from": "IN", "for": "IN", "season": "NN",
    "minister": "NN", "met": "VBD", "and": "CC", "talks": "NNS", "trade": "NN", "held": "VBD",
    "coach": "NN", "was": "VBD", "born": "VBN", "moved": "VBD", "fans": "NNS", "cheered": "VBD",
    "as": "IN", "at": "IN", "plans": "NNS", "new": "JJ", "factory": "NN", "near": "IN", "bought": "VBD",
    "stake": "NN", "with": "IN", "drew": "VBD", "announced": "VBD", "result": "NN", "by": "IN",
}


def _entity(rng: random.Random, kind: str) -> Tuple[List[str], str]:
    if kind == "PER":
        return [rng.choice(FIRST), rng.choice(LAST)], "PER"
    if kind == "ORG":
        return list(rng.choice(ORGS)), "ORG"
    if kind == "LOC":
        return list(rng.choice(PLACES)), "LOC"
    if kind == "NAT":
        return [rng.choice(NATIONS)], "MISC"
    return list(rng.choice(EVENTS)), "MISC"


NER_TEMPLATES = [
    "{PER} , the chief executive of {ORG} , said on {DAY} that the company would open an office in {LOC} .",
    "{ORG} beat {ORG} {SCORE} in {LOC} on {DAY} .",
    "{PER} won the {EVENT} in {LOC} on {DAY} .",
    "The {NAT} government said {PER} would visit {LOC} next week .",
    "Shares of {ORG} rose {NUM} percent after its {NAT} rival bought a stake in {ORG} .",
    "{ORG} signed {PER} from {ORG} for the {NUM} season .",
    "{NAT} minister {PER} met {PER} in {LOC} and held talks on trade .",
    "{PER} was born in {LOC} and moved to {LOC} .",
    "Fans cheered as {PER} won the {EVENT} .",
    "{ORG} announced plans for a new factory near {LOC} .",
    "{ORG} drew with {ORG} at the {EVENT} .",
    "{LOC} {DAY}",
    "{PER} ( {NAT} ) {SCORE}",
]


def ner_sentence(rng: random.Random) -> List[Tuple[str, str, str, str]]:
    """One CoNLL sentence: (word, pos, chunk, ner) rows."""
    rows: List[Tuple[str, str, str, str]] = []
    for slot in rng.choice(NER_TEMPLATES).split():
        if slot in ("{PER}", "{ORG}", "{LOC}", "{NAT}", "{EVENT}"):
            words, label = _entity(rng, slot[1:-1])
            for i, word in enumerate(words):
                pos = "JJ" if slot == "{NAT}" else "NNP"
                rows.append((word, pos, "B-NP" if i == 0 else "I-NP", ("B-" if i == 0 else "I-") + label))
        elif slot == "{DAY}":
            rows.append((rng.choice(DAYS), "NNP", "B-NP", "O"))
        elif slot == "{SCORE}":
            rows.append((f"{rng.randint(0, 5)}-{rng.randint(0, 5)}", "CD", "B-NP", "O"))
        elif slot == "{NUM}":
            rows.append((str(rng.randint(2, 40)), "CD", "B-NP", "O"))
        else:
            pos = POS.get(slot.lower(), "NN")
            if pos in (",", ".", "(", ")", "CC"):
                chunk = "O"
            elif pos in ("IN", "TO"):
                chunk = "B-PP"
            else:
                chunk = "B-VP" if pos.startswith("V") or pos == "MD" else "B-NP"
            rows.append((slot, pos if slot not in "()" else slot, chunk, "O"))
    return rows


def write_conll(path: Path, rng: random.Random, n_docs: int, sents_per_doc: int) -> None:
    lines: List[str] = []
    for _ in range(n_docs):
        lines += ["-DOCSTART- -X- -X- O", ""]
        for _ in range(sents_per_doc):
            lines += [" ".join(row) for row in ner_sentence(rng)] + [""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf8")


POSITIVE = ["charming", "moving", "funny", "gripping", "beautiful", "clever", "warm", "sharp", "delightful"]
NEGATIVE = ["dull", "clumsy", "tedious", "flat", "shallow", "messy", "lifeless", "predictable", "tiresome"]
SUBJECTS = ["the film", "this movie", "the script", "the cast", "the story", "the direction",
            "the ending", "its score", "the dialogue", "the whole thing"]
ADVERBS = ["very", "quite", "genuinely", "often", "remarkably", "surprisingly", "rather"]


def sst_sentence(rng: random.Random) -> Tuple[str, int]:
    """A lower-cased, PTB-tokenised review sentence or phrase and its 0/1 label."""
    label = rng.randint(0, 1)
    good, bad = (POSITIVE, NEGATIVE) if label else (NEGATIVE, POSITIVE)
    form = rng.randint(0, 5)
    if form == 0:
        text = f"{rng.choice(SUBJECTS)} is {rng.choice(ADVERBS)} {rng.choice(good)} ."
    elif form == 1:
        text = f"{rng.choice(SUBJECTS)} is n't {rng.choice(bad)} at all , it 's {rng.choice(good)} ."
    elif form == 2:
        text = f"{rng.choice(ADVERBS)} {rng.choice(good)}"
    elif form == 3:
        text = f"a {rng.choice(good)} and {rng.choice(good)} piece of work"
    elif form == 4:
        text = f"although {rng.choice(SUBJECTS)} is {rng.choice(bad)} , {rng.choice(SUBJECTS)} is {rng.choice(good)} ."
    else:
        text = f"i found {rng.choice(SUBJECTS)} {rng.choice(good)} , and you will too ."
    return text, label


def write_sst(path: Path, rng: random.Random, n: int) -> None:
    rows = ["sentence\tlabel"] + [f"{text} \t{label}" for text, label in (sst_sentence(rng) for _ in range(n))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf8")


def _fact(rng: random.Random) -> Dict[str, str]:
    return {
        "per": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "org": " ".join(rng.choice(ORGS)),
        "loc": " ".join(rng.choice(PLACES)),
        "num": str(rng.randint(2, 90)),
        "day": rng.choice(DAYS),
    }


# Each fact can be said in several ways; two sayings of one fact are a paraphrase.
SAYINGS = [
    ['{org} said on {day} it would cut {num} jobs in {loc} .',
     '{org} will shed {num} jobs at its {loc} site , the company announced {day} .',
     'On {day} , {org} announced plans to cut {num} positions in {loc} .'],
    ['{per} , who has led {org} since {num} , will step down .',
     '{org} chief {per} , in charge since {num} , is leaving the post .',
     '{per} plans to resign as head of {org} , a role held since {num} .'],
    ['Police in {loc} arrested {num} people on {day} after a protest .',
     '{num} protesters were detained by {loc} police on {day} .',
     'On {day} , officers in {loc} took {num} demonstrators into custody .'],
    ['Shares of {org} fell {num} percent on {day} .',
     '{org} stock dropped {num} percent in trading on {day} .',
     'On {day} , {org} lost {num} percent of its market value .'],
    ['" We are pleased with the result , " {per} told reporters in {loc} .',
     '{per} said in {loc} that " the result " had pleased the team .',
     'Speaking in {loc} , {per} described the result as pleasing .'],
]


def mrpc_pair(rng: random.Random) -> Tuple[int, str, str]:
    """(quality, sentence 1, sentence 2): a paraphrase, or a near miss with one fact changed."""
    group = rng.choice(SAYINGS)
    first, second = rng.sample(group, 2)
    fact = _fact(rng)
    if rng.random() < 0.6:
        return 1, first.format(**fact), second.format(**fact)
    other = dict(fact)
    key = rng.choice(["per", "org", "loc", "num"])
    while other[key] == fact[key]:
        other[key] = _fact(rng)[key]
    # A different fact in the same words is not a paraphrase either.
    return 0, first.format(**fact), rng.choice([first, second]).format(**other)


def write_mrpc(path: Path, rng: random.Random, n: int) -> None:
    rows = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    for _ in range(n):
        quality, one, two = mrpc_pair(rng)
        rows.append(f"{quality}\t{rng.randint(100000, 3999999)}\t{rng.randint(100000, 3999999)}\t{one}\t{two}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # GLUE's MRPC files start with a byte-order mark.
    path.write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf8")


TOWN_NAMES = ["Varnholm", "Kettering Falls", "Drumlin", "Port Aubrey", "Salcombe Reach", "Mirefield",
              "Tarvos", "Lowenmark", "New Carrick", "Brisa", "Okhta", "Estoril Bay", "Greywater",
              "Halden Cross", "Ivory Point", "Juniper Hill", "Kells Ferry", "Larkmoor", "Maple Sound", "Nettlebed"]
RIVERS = ["Esk", "Tarrow", "Lune", "Brenna", "Coldbrook", "Vesper", "Ashwater", "Morrow"]
INDUSTRIES = ["shipbuilding", "wool weaving", "salt mining", "glassmaking", "fishing", "timber", "clockmaking", "brewing"]
DISHES = ["smoked eel pie", "barley bread", "plum dumplings", "herring stew", "honey cake", "mushroom broth"]
SPORTS = ["rowing", "curling", "cycling", "fencing", "handball"]


def squad_article(rng: random.Random, title: str) -> Dict:
    """A short made-up encyclopaedia article about a town, with questions on it."""
    founder = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    year = str(rng.randint(1150, 1890))
    river = rng.choice(RIVERS)
    industry = rng.choice(INDUSTRIES)
    population = f"{rng.randint(2, 95)},{rng.randint(100, 999)}"
    dish = rng.choice(DISHES)
    sport = rng.choice(SPORTS)
    mayor = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    festival_month = rng.choice(["March", "May", "July", "September", "November"])
    bridges = str(rng.randint(2, 14))
    paragraphs = [
        (f"{title} is a town on the river {river}. It was founded in {year} by {founder}, "
         f"a merchant who built the first mill beside the ford. The town grew rich from {industry}, "
         f"which remained its main trade for two centuries. Today {title} has a population of about {population}.",
         [(f"Who founded {title}?", founder), (f"In what year was {title} founded?", year),
          (f"On which river does {title} lie?", river), (f"What trade made {title} rich?", industry),
          (f"How many people live in {title}?", population)]),
        (f"The old town is crossed by {bridges} stone bridges, the oldest of which is named after {founder}. "
         f"Every {festival_month} the town holds a lantern festival on the water, and local cooks serve {dish}. "
         f"The festival was first recorded in a letter of {int(year) + rng.randint(20, 90)}.",
         [(f"How many stone bridges cross the old town of {title}?", bridges),
          (f"In which month is the lantern festival of {title} held?", festival_month),
          (f"What dish do cooks in {title} serve at the festival?", dish)]),
        (f"The current mayor, {mayor}, was elected on a promise to restore the harbour. "
         f"The town's club is best known for {sport}, and its team trains on the {river} in the early morning.",
         [(f"Who is the mayor of {title}?", mayor), (f"What sport is the club of {title} known for?", sport)]),
    ]
    out = []
    for p_index, (context, qas) in enumerate(paragraphs):
        items = []
        for q_index, (question, answer) in enumerate(qas):
            start = context.index(answer)
            answers = [{"answer_start": start, "text": answer}]
            # Like SQuAD's dev set: some questions carry a second, longer gold answer.
            longer = context[start:].split(".")[0] if rng.random() < 0.3 else None
            if longer and longer != answer and len(longer) < len(answer) + 40:
                answers.append({"answer_start": start, "text": longer})
            qid = f"{rng.randrange(16 ** 24):024x}"
            items.append({"answers": answers, "question": question, "id": qid})
        out.append({"context": context, "qas": items})
    return {"title": title.replace(" ", "_"), "paragraphs": out}


def write_squad(path: Path, rng: random.Random) -> None:
    data = {"data": [squad_article(rng, title) for title in TOWN_NAMES], "version": "1.1"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf8")


GENES = ["Pax7", "Sox11", "Fgf9", "Lhx2", "Nkx6", "Tbx18", "Wnt7b", "Shh", "Gata4", "Hoxd13", "Msx1", "Otx2"]
TISSUES = ["striatum", "retina", "limb bud", "neural tube", "kidney", "lens", "somite", "cochlea", "palate"]
STAGES = ["E9.5", "E10.5", "E11.5", "E12.5", "E14.5", "P0", "P7", "adult"]
METHODS = ["in situ hybridization", "immunostaining", "quantitative PCR", "western blotting",
           "RNA sequencing", "confocal microscopy", "lineage tracing"]
EFFECTS = ["reduced", "increased", "abolished", "delayed", "expanded", "restricted"]
PROCESSES = ["cell proliferation", "apoptosis", "axon guidance", "neuron number", "cell migration",
             "vascular growth", "differentiation"]


def craft_paragraph(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(3, 7)):
        gene, other = rng.sample(GENES, 2)
        form = rng.randint(0, 4)
        if form == 0:
            sentences.append(f"Expression of {gene} was {rng.choice(EFFECTS)} in the {rng.choice(TISSUES)} of "
                             f"{gene}-/- mice at {rng.choice(STAGES)} (Figure {rng.randint(1, 8)}{rng.choice('ABCD')}).")
        elif form == 1:
            sentences.append(f"Using {rng.choice(METHODS)}, we found that {gene} and {other} are co-expressed "
                             f"in the {rng.choice(TISSUES)} from {rng.choice(STAGES)} onwards [{rng.randint(1, 60)}].")
        elif form == 2:
            sentences.append(f"Loss of {gene} {rng.choice(EFFECTS)} {rng.choice(PROCESSES)} by "
                             f"{rng.randint(10, 80)}% (n = {rng.randint(3, 24)}, P < 0.0{rng.randint(1, 5)}).")
        elif form == 3:
            sentences.append(f"These results suggest that {gene} acts upstream of {other} to control "
                             f"{rng.choice(PROCESSES)} in the developing {rng.choice(TISSUES)}.")
        else:
            sentences.append(f"Sections were analysed by {rng.choice(METHODS)} as described previously "
                             f"[{rng.randint(1, 60)},{rng.randint(1, 60)}].")
    return " ".join(sentences)


def write_craft(path: Path, rng: random.Random, n_articles: int) -> None:
    articles = []
    for _ in range(n_articles):
        gene = rng.choice(GENES)
        lines = [f"{gene} controls {rng.choice(PROCESSES)} in the mouse {rng.choice(TISSUES)}", "Abstract"]
        for heading in ("Background", "Results", "Discussion", "Methods"):
            lines.append(heading)
            lines += [craft_paragraph(rng) for _ in range(rng.randint(2, 4))]
        articles.append("\n".join(lines))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(articles) + "\n", encoding="utf8")


def main(root: Path = HERE) -> None:
    """Write every sample file under ``root``."""
    write_conll(root / "conll2003" / "train.txt", random.Random(1), n_docs=30, sents_per_doc=12)
    write_conll(root / "conll2003" / "valid.txt", random.Random(2), n_docs=8, sents_per_doc=12)
    write_sst(root / "sst2" / "train.tsv", random.Random(3), 500)
    write_sst(root / "sst2" / "dev.tsv", random.Random(4), 100)
    write_mrpc(root / "mrpc" / "train.tsv", random.Random(5), 300)
    write_mrpc(root / "mrpc" / "dev.tsv", random.Random(6), 80)
    write_squad(root / "squad_v1.1" / SQUAD_FILE, random.Random(7))
    write_craft(root / "craft_biomed" / "craft_paragraphs.txt", random.Random(8), n_articles=40)


if __name__ == "__main__":
    main()
