"""PMG speed on ml-100k (issue 16), in one run: preference keywords for every user with the
embedding backend, and for a sample with the llm backend (SmolLM2-135M, the rate extrapolated
to all users and labelled so); card thumbnails per second; the tiny random diffusers pipeline
per image (64 px, 2 steps: the cost of the code path, not of a real model).

Usage: .venv/bin/python experiments/pmg/speed.py [--llm-users 32] [--cards 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from llmrec.datasets import load
from llmrec.io import library_versions, write_json
from llmrec.llm import load_generator
from llmrec.pmg.card import CardGenerator
from llmrec.pmg.diffusion import DiffusionGenerator
from llmrec.pmg.history import catalogue, user_history
from llmrec.pmg.keywords import EmbeddingKeywords
from llmrec.pmg.keywords_llm import LLMKeywords
from llmrec.pmg.spec import ThumbnailSpec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/pmg/tiny_models builds the tiny pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm-users", type=int, default=32)
    parser.add_argument("--cards", type=int, default=300)
    parser.add_argument("--out", type=Path, default=HERE / "speed.json")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (2 shared cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load("ml-100k")
    infos = catalogue(data)
    histories = [user_history(data, u, infos, min_rating=4, limit=30) for u in data.user_ids]
    embedding = EmbeddingKeywords.from_dataset(data)
    embedding.preferences(histories[:8])  # warm the encoder and the catalogue's candidates
    t = time.perf_counter()
    results = embedding.preferences(histories)
    embedding_seconds = time.perf_counter() - t
    llm = LLMKeywords(load_generator(cache=False), embedding)
    t = time.perf_counter()
    llm_results = llm.preferences(histories[: args.llm_users])
    llm_seconds = time.perf_counter() - t
    fell_back = sum(r.backend_used != "llm" for r in llm_results)
    specs = [
        ThumbnailSpec(infos[i], embedding.target(infos[i]).keywords, results[u].keywords, 0.5)
        for u, i in zip(range(args.cards), range(args.cards), strict=True)
    ]
    cards = CardGenerator(size=384)
    t = time.perf_counter()
    cards.generate(specs)
    card_seconds = time.perf_counter() - t
    from tests.pmg.tiny_models import save_tiny_stable_diffusion

    with tempfile.TemporaryDirectory() as tmp:
        pipe = DiffusionGenerator(save_tiny_stable_diffusion(Path(tmp) / "sd"), steps=2, size=64)
        pipe.generate(specs[:1])
        t = time.perf_counter()
        pipe.generate(specs[:8])
        diffusion_seconds = (time.perf_counter() - t) / 8
    report = {
        "command": f"python experiments/pmg/speed.py --llm-users {args.llm_users} "
        f"--cards {args.cards}",
        "load_average": os.getloadavg(),
        "threads": args.threads,
        "keywords_embedding": {
            "users": len(histories),
            "seconds": round(embedding_seconds, 2),
            "users_per_second": round(len(histories) / embedding_seconds, 1),
        },
        "keywords_llm": {
            "users": args.llm_users,
            "seconds": round(llm_seconds, 1),
            "seconds_per_user": round(llm_seconds / args.llm_users, 2),
            "all_users_extrapolated_seconds": round(llm_seconds / args.llm_users * len(histories)),
            "fell_back_to_embedding": fell_back,
        },
        "cards": {
            "count": args.cards,
            "size": 384,
            "per_second": round(args.cards / card_seconds, 1),
        },
        "tiny_diffusers": {
            "size": 64,
            "steps": 2,
            "seconds_per_image": round(diffusion_seconds, 3),
        },
        "versions": library_versions(),
    }
    write_json(args.out, report)
    for key in ("keywords_embedding", "keywords_llm", "cards", "tiny_diffusers"):
        print(key, report[key])


if __name__ == "__main__":
    main()
