"""The thumbnails output folder and its static HTML gallery.

Per user, :func:`write_user_thumbnails` writes one artifact folder (kind ``thumbnails``, see
:mod:`llmrec.artifacts`) named ``user-<id>``::

    user-196/
      user.json            who, history (newest first), history text, preference keywords
                           with the history items they came from, keyword backend, note, items
      01-star-wars.png     the thumbnail of the first recommendation
      01-star-wars.json    its record: item, keywords, prompts, alpha, scores, generator, seed
      ...
      index.html           the user's page, rendered from the JSON files above

:func:`write_gallery` rebuilds every user's page and a top-level ``index.html`` from the JSON
files alone, so a gallery can be rebuilt from a folder. Pages are static HTML with inline CSS:
no scripts, no external URLs, every text escaped.
"""

from __future__ import annotations

import html
import json
import logging
import re
import shutil
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from llmrec.artifacts import ARTIFACT_FILE, open_artifact, read_manifest, write_artifact
from llmrec.errors import ConfigError, DataError
from llmrec.io import atomic_write_text
from llmrec.pmg.card import because_sentence
from llmrec.pmg.spec import ItemInfo, Keyword, ThumbnailSpec

log = logging.getLogger(__name__)

KIND = "thumbnails"
USER_FILE = "user.json"
PAGE = "index.html"


@dataclass(frozen=True)
class ItemThumbnail:
    """One recommended item with what the other stages made for it."""

    spec: ThumbnailSpec
    prompts: dict[str, str] = field(default_factory=dict)
    """The generator's text inputs by name (``prompt``, ``negative_prompt``, ...)."""
    scores: dict[str, float] = field(default_factory=dict)
    """Named scores (ranker score, CLIP similarities to the item and to the preferences, ...)."""
    explanation: str = ""
    """Shown under the thumbnail; "Because you liked X and Y" from ``spec.because`` if empty."""


@dataclass(frozen=True)
class UserThumbnails:
    """One user's thumbnails and what they were made from."""

    user_id: str
    history: tuple[ItemInfo, ...]
    """The history items, newest first: :attr:`Keyword.sources` are positions in it."""
    history_text: str
    preference_keywords: tuple[Keyword, ...]
    keyword_backend: str
    generator: str
    items: tuple[ItemThumbnail, ...]
    note: str = ""
    """Why something fell back, e.g. "no history: popular keywords"."""


def slug(text: str, limit: int = 40) -> str:
    """``text`` as a lowercase ASCII file-name fragment ("Café Noir!" -> "cafe-noir")."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:limit].strip("-")


def user_folder_name(user_id: str) -> str:
    """``user-<id>``; an id that is not a plain file name gets a checksum so names stay
    distinct."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", user_id).strip("_")[:60]
    if safe != user_id or not safe:
        safe = f"{safe}-{zlib.crc32(user_id.encode('utf-8')):08x}".lstrip("-")
    return f"user-{safe}"


def _item_json(item: ItemInfo) -> dict[str, Any]:
    return {
        "item_index": item.item_index,
        "item_id": item.item_id,
        "title": item.title,
        "year": item.year,
        "genres": list(item.genres),
        "extra": dict(item.extra),
    }


def _keyword_json(keyword: Keyword, history: Sequence[ItemInfo]) -> dict[str, Any]:
    sources = []
    for position in keyword.sources:
        if not 0 <= position < len(history):
            raise DataError(
                f"keyword {keyword.text!r} names history position {position}, but the history "
                f"has {len(history)} items"
            )
        item = history[position]
        sources.append({"position": position, "item_id": item.item_id, "title": item.title})
    return {"text": keyword.text, "score": keyword.score, "sources": sources}


def _records(user: UserThumbnails, images: Sequence[Image.Image]) -> list[dict[str, Any]]:
    width = max(2, len(str(len(user.items))))
    records = []
    for rank, (entry, image) in enumerate(zip(user.items, images, strict=True), start=1):
        spec = entry.spec
        stem = f"{rank:0{width}d}-{slug(spec.item.title) or 'item-' + slug(spec.item.item_id)}"
        records.append(
            {
                "user_id": user.user_id,
                "rank": rank,
                "item": _item_json(spec.item),
                "image": {"file": f"{stem}.png", "width": image.width, "height": image.height},
                "history_text": user.history_text,
                "preference_keywords": [
                    _keyword_json(k, user.history) for k in spec.preference_keywords
                ],
                "target_keywords": [
                    {"text": k.text, "score": k.score} for k in spec.target_keywords
                ],
                "prompts": {str(k): str(v) for k, v in entry.prompts.items()},
                "alpha": spec.alpha,
                "because": list(spec.because),
                "explanation": entry.explanation or because_sentence(spec.because),
                "scores": {str(k): float(v) for k, v in entry.scores.items()},
                "generator": user.generator,
                "seed": spec.seed,
            }
        )
    return records


def write_user_thumbnails(
    out: Path, user: UserThumbnails, images: list[Image.Image], overwrite: bool = False
) -> Path:
    """Write one user's thumbnails, records and page into ``out/user-<id>``.

    Args:
        out: the thumbnails folder (one subfolder per user).
        user: the user's history, keywords and items.
        images: one image per item of ``user.items``, in order.
        overwrite: replace a folder there that is not a thumbnails folder llmrec wrote.

    Returns:
        The user's folder.

    Raises:
        ConfigError: not one image per item.
        DataError: a keyword names a history position the history does not have.
        ArtifactError: the folder holds files llmrec did not write (without ``overwrite``).
    """
    if len(images) != len(user.items):
        raise ConfigError(f"{len(user.items)} items but {len(images)} images for {user.user_id}")
    records = _records(user, images)
    summary = {
        "user_id": user.user_id,
        "history": [{"position": i, **_item_json(h)} for i, h in enumerate(user.history)],
        "history_text": user.history_text,
        "preference_keywords": [_keyword_json(k, user.history) for k in user.preference_keywords],
        "keyword_backend": user.keyword_backend,
        "generator": user.generator,
        "note": user.note,
        "items": [
            {"rank": r["rank"], "item_id": r["item"]["item_id"], "title": r["item"]["title"],
             "record": r["image"]["file"].removesuffix(".png") + ".json", "image": r["image"]}
            for r in records
        ],
    }  # fmt: skip

    def write(folder: Path) -> None:
        for record, image in zip(records, images, strict=True):
            image.save(folder / record["image"]["file"], format="PNG")
            _dump(folder / summary["items"][record["rank"] - 1]["record"], record)
        _dump(folder / USER_FILE, summary)
        (folder / PAGE).write_text(user_page(*read_user_folder(folder)), encoding="utf-8")

    meta = {"user_id": user.user_id, "generator": user.generator, "items": len(records)}
    return write_artifact(
        Path(out) / user_folder_name(user.user_id), KIND, write, overwrite=overwrite, meta=meta
    )


def _dump(path: Path, obj: dict[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _load(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the thumbnails record ({exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{path}: a thumbnails record must be a JSON object")
    return obj


def read_user_folder(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``user.json`` of a user's folder and its items' records, in rank order.

    Raises:
        DataError: a file is missing or not a JSON object.
    """
    user = _load(folder / USER_FILE)
    entries = user.get("items")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DataError(f"{folder / USER_FILE}: 'items' must be a list of objects")
    return user, [_load(folder / Path(str(e.get("record", ""))).name) for e in entries]


# --- HTML ---

_CSS = """
body{margin:0;font:15px/1.45 system-ui,sans-serif;background:#14151a;color:#e8e8ec}
main{max-width:1200px;margin:auto;padding:20px 28px}a{color:#8cc8ff}
h1{margin:.2em 0;font-size:28px}h2{font-size:18px;margin:26px 0 10px;color:#c9cbd6}
small,.muted{color:#9a9caa}.note{background:#3a2f12;color:#ffd98a;padding:6px 10px;
border-radius:6px;display:inline-block}ol.history{margin:0;padding-left:22px;columns:2}
.chips{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0}
.chip{padding:2px 10px;border-radius:999px;font-size:13px;cursor:help}
.chip.item{background:#eef0f5;color:#1c1c22}.chip.you{background:#23252e;color:#fff;
border:1px solid #6fd3ff}.chip b{font-weight:400;opacity:.6;margin-left:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:18px}
article,.user{background:#1d1f27;border-radius:12px;padding:12px;text-decoration:none;
color:inherit;display:block}article img{width:100%;height:auto;border-radius:8px;display:block}
h3{margin:10px 0 4px;font-size:17px}.why{font-style:italic;color:#d5d7e2;margin:6px 0}
table{border-collapse:collapse;font-size:13px}td,th{padding:1px 10px 1px 0;text-align:left;
font-weight:400}th{color:#9a9caa}pre{white-space:pre-wrap;background:#0e0f13;padding:10px;
border-radius:6px;font-size:13px}.previews{display:grid;grid-template-columns:repeat(3,1fr);
gap:6px}.previews img{width:100%;height:auto;aspect-ratio:1;border-radius:6px;display:block}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<title>{_e(title)}</title><link rel="icon" href="data:,"><style>{_CSS}</style>'
        "</head>\n"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


def _file(image: Any) -> str:
    """The image's file name, kept inside its folder whatever the record says."""
    return Path(str(image.get("file", ""))).name if isinstance(image, dict) else ""


def _chip(keyword: Any, kind: str) -> str:
    if not isinstance(keyword, dict):
        return ""
    sources = [s.get("title", "") for s in keyword.get("sources") or [] if isinstance(s, dict)]
    tip = ("From: " + "; ".join(map(str, sources))) if sources else "From the item itself"
    score = keyword.get("score")
    shown = f"<b>{score:.2f}</b>" if isinstance(score, int | float) else ""
    return (
        f'<span class="chip {kind}" title="{_e(tip)}">{_e(keyword.get("text", ""))}{shown}</span>'
    )


def _chips(keywords: Any, kind: str) -> str:
    chips = "".join(_chip(k, kind) for k in keywords or [])
    return f'<div class="chips">{chips}</div>' if chips else '<p class="muted">none</p>'


def _item_card(record: dict[str, Any]) -> str:
    item, image = record.get("item") or {}, record.get("image") or {}
    year = f" <small>{_e(item.get('year'))}</small>" if item.get("year") else ""
    scores = "".join(
        f"<tr><th>{_e(k)}</th><td>{v:.4g}</td></tr>" if isinstance(v, int | float) else ""
        for k, v in (record.get("scores") or {}).items()
    )
    prompts = "".join(
        f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in (record.get("prompts") or {}).items()
    )
    why = record.get("explanation") or ""
    return (
        f'<article><img src="{_e(_file(image))}" width="{_e(image.get("width", ""))}" '
        f'height="{_e(image.get("height", ""))}" alt="Thumbnail of {_e(item.get("title", ""))}">'
        f"<h3>{_e(record.get('rank', ''))}. {_e(item.get('title', ''))}{year}</h3>"
        f"{_chips(record.get('target_keywords'), 'item')}"
        f"{_chips(record.get('preference_keywords'), 'you')}"
        + (f'<p class="why">{_e(why)}</p>' if why else "")
        + (f"<table>{scores}</table>" if scores else "")
        + f'<p class="muted">alpha {_e(record.get("alpha"))} · seed {_e(record.get("seed"))} · '
        f"{_e(record.get('generator', ''))}</p>"
        + (f"<details><summary>Prompts</summary><dl>{prompts}</dl></details>" if prompts else "")
        + "</article>"
    )


def user_page(user: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """A user's page: history, preference keywords (each with its sources as a tooltip) and
    the recommended items with their thumbnails."""
    uid = user.get("user_id", "")
    history = "".join(
        f"<li>{_e(h.get('title', ''))} <small>{_e(h.get('year', ''))} "
        f"{_e(' · '.join(map(str, h.get('genres') or [])))}</small></li>"
        for h in user.get("history") or []
        if isinstance(h, dict)
    )
    note = f'<p class="note">{_e(user["note"])}</p>' if user.get("note") else ""
    body = (
        f'<p><a href="../{PAGE}">&larr; all users</a></p><h1>User {_e(uid)}</h1>{note}'
        f'<p class="muted">keywords: {_e(user.get("keyword_backend", ""))} · images: '
        f"{_e(user.get('generator', ''))}</p>"
        f"<h2>History <small>newest first</small></h2>"
        + (f'<ol class="history">{history}</ol>' if history else '<p class="muted">none</p>')
        + (
            f"<details><summary>History text</summary><pre>{_e(user['history_text'])}</pre>"
            "</details>"
            if user.get("history_text")
            else ""
        )
        + f"<h2>Preference keywords</h2>{_chips(user.get('preference_keywords'), 'you')}"
        + f'<h2>Recommended</h2><div class="grid">{"".join(map(_item_card, records))}</div>'
    )
    return _page(f"User {uid}: personalized thumbnails", body)


def index_page(users: list[tuple[str, dict[str, Any], list[dict[str, Any]]]]) -> str:
    """The top-level page: one tile per (folder name, user.json, records) with previews."""
    tiles = []
    for folder, user, records in users:
        previews = "".join(
            f'<img src="{_e(folder)}/{_e(_file(r.get("image")))}" '
            f'alt="{_e((r.get("item") or {}).get("title", ""))}">'
            for r in records[:3]
        )
        words = ", ".join(
            str(k.get("text", "")) for k in (user.get("preference_keywords") or [])[:4]
            if isinstance(k, dict)
        )  # fmt: skip
        tiles.append(
            f'<a class="user" href="{_e(folder)}/{PAGE}"><div class="previews">{previews}</div>'
            f'<h3>User {_e(user.get("user_id", ""))}</h3><p class="muted">{len(records)} items · '
            f"{len(user.get('history') or [])} history items · {_e(words)}</p>"
            + (f'<p class="note">{_e(user["note"])}</p>' if user.get("note") else "")
            + "</a>"
        )
    body = '<h1>Personalized thumbnails</h1><div class="grid">' + "".join(tiles) + "</div>"
    return _page("Personalized thumbnails", body)


def write_gallery(root: Path) -> Path:
    """(Re)write every user's page and ``root/index.html`` from the JSON files under ``root``.

    A user folder is one that :func:`write_user_thumbnails` wrote (a ``thumbnails`` artifact);
    its parts are verified first, and it is rewritten as a whole only when its page changed.

    Returns:
        ``root/index.html``.

    Raises:
        DataError: ``root`` is not a folder, or a user folder is damaged or unreadable.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no thumbnails folder there")
    users = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        manifest = read_manifest(folder)
        if manifest is None or manifest.get("kind") != KIND:
            log.info("%s: not a thumbnails folder, left out of the gallery", folder)
            continue
        open_artifact(folder, KIND)
        user, records = read_user_folder(folder)
        page = user_page(user, records)
        current = folder / PAGE
        if not current.is_file() or current.read_text(encoding="utf-8") != page:
            _rewrite_page(folder, page, manifest)
        users.append((folder.name, user, records))
    users.sort(key=lambda u: _id_order(str(u[1].get("user_id", ""))))
    return atomic_write_text(root / PAGE, index_page(users))


def _rewrite_page(folder: Path, page: str, manifest: dict[str, Any]) -> None:
    def write(tmp: Path) -> None:
        for name in manifest["parts"]:
            if name not in (PAGE, ARTIFACT_FILE):
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(folder / name, tmp / name)
        (tmp / PAGE).write_text(page, encoding="utf-8")

    own = ("kind", "format_version", "llmrec_version", "parts")  # write_artifact sets these
    meta = {k: v for k, v in manifest.items() if k not in own}
    write_artifact(folder, KIND, write, meta=meta)


def _id_order(user_id: str) -> tuple[bool, str]:
    """Numeric ids in number order, then the others."""
    return (not user_id.isdigit(), user_id.zfill(40))
