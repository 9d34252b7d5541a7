"""Describe every item of the datasets with the shipped SmolLM2 into the default generation
cache; prints one JSON line per dataset (items, wall seconds, tokens/s, kept, dropped).

Usage: .venv/bin/python experiments/llm_text/describe_all.py ml-100k ml-1m
"""

import json
import sys
import time

from llmrec.datasets import item_text, load
from llmrec.llm import load_generator
from llmrec.llm.tasks import describe_items

g = load_generator(num_threads=1)
for name in sys.argv[1:]:
    ds = load(name)
    texts = item_text(ds.items, ds.text_columns).tolist()
    t = time.time()
    r = describe_items(g, texts, batch_size=32, max_new_tokens=64, show_progress_bar=True)
    print(
        json.dumps(
            {
                "dataset": name,
                "items": len(texts),
                "seconds": time.time() - t,
                "tok_s": r.tokens_per_second,
                "kept": r.n_kept,
                "dropped": dict(r.dropped),
                "generated": r.generated,
            }
        ),
        flush=True,
    )
