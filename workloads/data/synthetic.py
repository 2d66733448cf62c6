"""A small deterministic corpus, for tests and the ``debug_tiny`` recipe (no dataset can be
downloaded here). Sentences follow a few French and English templates over short word lists, so a
tiny model has real structure to learn and its loss falls within a few dozen steps."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Iterator

_FR = {
    "sujet": ["le chat", "la souris", "le train", "la rivière", "le boulanger", "la cheffe", "le vent", "la lune"],
    "verbe": ["regarde", "traverse", "attend", "suit", "dessine", "écoute", "quitte", "rejoint"],
    "objet": ["la ville", "le pont", "la forêt", "le marché", "la gare", "le jardin", "la montagne", "le port"],
    "quand": ["ce matin", "chaque soir", "en hiver", "sous la pluie", "avant midi", "depuis hier"],
}
_EN = {
    "subject": ["the cat", "a mouse", "the train", "a river", "the baker", "the chef", "the wind", "the moon"],
    "verb": ["watches", "crosses", "waits for", "follows", "draws", "hears", "leaves", "joins"],
    "object": ["the city", "the bridge", "the forest", "the market", "the station", "the garden", "a mountain"],
    "when": ["this morning", "every evening", "in winter", "in the rain", "before noon", "since yesterday"],
}


def _sentence(rng: random.Random) -> str:
    if rng.random() < 0.5:
        w = {k: rng.choice(v) for k, v in _FR.items()}
        s = f"{w['sujet']} {w['verbe']} {w['objet']} {w['quand']}."
    else:
        w = {k: rng.choice(v) for k, v in _EN.items()}
        s = f"{w['subject']} {w['verb']} {w['object']} {w['when']}."
    return s[0].upper() + s[1:]


def documents(count: int, seed: int = 0) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(count):
        yield " ".join(_sentence(rng) for _ in range(rng.randint(2, 8)))


def write_jsonl(path: str | Path, count: int, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for i, text in enumerate(documents(count, seed)):
            fh.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")
    return path


def record(path: str | Path, count: int, seed: int) -> dict:
    """The dataset record of a corpus written here: generated text, dedicated to the public domain."""
    return {"match": str(path), "license": "CC0-1.0", "category": "synthetic",
            "origin": f"workloads.data.synthetic (seed {seed}, {count} documents)", "retrieved": None,
            "tdm_optout": "not applicable: generated from word lists, no third-party content",
            "unlicensed_reason": None}


def write_records(path: str | Path, count: int, seed: int) -> Path:
    """``<corpus>.records.yaml`` beside the corpus, for ``workloads.data prepare --records``."""
    import yaml

    out = Path(f"{path}.records.yaml")
    rec = record(Path(path).name, count, seed)
    out.write_text(yaml.safe_dump({"sources": [{k: v for k, v in rec.items() if v is not None}]}, sort_keys=False),
                   encoding="utf-8")
    return out
