"""PMG's trade-off on ml-100k (issue 16): personalization vs accuracy as alpha moves from the
item alone (0, PMG's non-personalized baseline) to the user's taste alone (1).

For each of N seeded-random users: preference keywords (embedding backend) from the liked
history (rated >= 4, newest 30), the top EASE item they have not seen, and at each alpha the
composed prompt and the rendered card. Two measures, each a cosine similarity:
- text: the conditioning prompt's MiniLM embedding vs the pooled embedding of the history items'
  texts (personalization) and vs the target item's text (accuracy);
- image: the card's colour histogram (8 bins per RGB channel) vs the history items' own cards
  (alpha 0: each item as everyone sees it; personalization, as DiFashion/Pigeon compare to
  history images) and vs the target's own card (accuracy).
Paired t-tests over users against alpha 0.

Usage: .venv/bin/python experiments/pmg/sweep.py [--users 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import stats

from llmrec.datasets import load
from llmrec.encoders.base import normalize_rows
from llmrec.io import library_versions, write_json
from llmrec.pmg.card import render_card
from llmrec.pmg.history import item_description
from llmrec.pmg.prompts import compose
from llmrec.pmg.spec import ThumbnailSpec
from llmrec.pmg.thumbnails import ThumbnailConfig, ThumbnailMaker, because, top_items

HERE = Path(__file__).resolve().parent
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
SIZE = 128  # cards are compared by colour; a small render measures the same palette


def colour_histogram(image) -> np.ndarray:
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3) // 32
    codes = pixels[:, 0] * 64 + pixels[:, 1] * 8 + pixels[:, 2]
    hist = np.bincount(codes, minlength=512).astype(np.float64)
    return hist / np.linalg.norm(hist)


def summarise(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "sweep.json")
    args = parser.parse_args()
    start = time.perf_counter()
    data = load("ml-100k")
    rng = np.random.default_rng(args.seed)
    users = [str(u) for u in rng.choice(data.user_ids, size=args.users, replace=False)]
    maker = ThumbnailMaker(data, ThumbnailConfig(size=SIZE))
    encoder = maker.keywords.encoder  # type: ignore[attr-defined]
    chosen, _, source = top_items(data, users, 1)
    rows = {m: np.zeros((len(users), len(ALPHAS))) for m in ("pt", "at", "pi", "ai")}
    for u, (user, items) in enumerate(zip(users, chosen, strict=True)):
        history, _ = maker.history(user)
        preference = maker.keywords.preference(history, 8)
        info = maker.infos[items[0]]
        target = maker.keywords.target(info, 5)
        own = [ThumbnailSpec(h, maker.keywords.target(h, 5).keywords, (), 0.0) for h in history]
        history_hists = np.stack([colour_histogram(render_card(s, SIZE)) for s in own[:10]])
        texts = [item_description(h) for h in history] + [item_description(info)]
        embedded = encoder.encode(texts, normalize_embeddings=True)
        profile = normalize_rows(embedded[:-1].mean(axis=0, keepdims=True))[0]
        item_vector = embedded[-1]
        specs = [
            ThumbnailSpec(
                info,
                target.keywords,
                preference.keywords,
                a,
                because(preference.keywords, target.keywords, history),
            )
            for a in ALPHAS
        ]
        prompts = encoder.encode([compose(s).positive for s in specs], normalize_embeddings=True)
        rows["pt"][u] = prompts @ profile
        rows["at"][u] = prompts @ item_vector
        hists = np.stack([colour_histogram(render_card(s, SIZE)) for s in specs])
        rows["pi"][u] = (hists @ history_hists.T).mean(axis=1)
        rows["ai"][u] = hists @ hists[0]  # the target's own card is the alpha = 0 card
    names = {
        "pt": "personalization_text",
        "at": "accuracy_text",
        "pi": "personalization_image",
        "ai": "accuracy_image",
    }
    table = []
    for j, alpha in enumerate(ALPHAS):
        row: dict[str, object] = {"alpha": alpha}
        for key, name in names.items():
            row[name] = summarise(rows[key][:, j])
            if j:
                gain = rows[key][:, j].mean() / rows[key][:, 0].mean() - 1
                p = stats.ttest_rel(rows[key][:, j], rows[key][:, 0]).pvalue
                row[name]["vs_alpha0"] = {"relative": float(gain), "p_value": float(p)}
        table.append(row)
        print(
            f"alpha {alpha:4.2f}  text: pers {rows['pt'][:, j].mean():.3f} acc "
            f"{rows['at'][:, j].mean():.3f}   image: pers {rows['pi'][:, j].mean():.3f} acc "
            f"{rows['ai'][:, j].mean():.3f}"
        )
    plot(rows, HERE / "sweep.png")
    write_json(
        args.out,
        {
            "study": "PMG alpha sweep (issue 16)",
            "command": f"python experiments/pmg/sweep.py --users {args.users} --seed {args.seed}",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "dataset": {"name": data.name, "checksum": data.checksum},
            "users": users,
            "recommended_by": source,
            "keywords": "embedding",
            "card_size": SIZE,
            "table": table,
            "seconds": round(time.perf_counter() - start, 1),
            "versions": library_versions(),
        },
    )


def plot(rows: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, (p, a, title) in zip(
        axes,
        [("pt", "at", "conditioning text (MiniLM)"), ("pi", "ai", "card image (colour)")],
        strict=True,
    ):
        x, y = rows[a].mean(axis=0), rows[p].mean(axis=0)
        ax.plot(x, y, "o-", color="#c0392b")
        for alpha, xi, yi in zip(ALPHAS, x, y, strict=True):
            label = f"α={alpha:g}" + (" (non-personalized)" if alpha == 0 else "")
            ax.annotate(label, (xi, yi), textcoords="offset points", xytext=(6, 4), fontsize=8)
        ax.set_xlabel("accuracy: similarity to the target item")
        ax.set_ylabel("personalization: similarity to the history")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fig.suptitle("PMG on ml-100k: alpha trades accuracy for personalization")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
