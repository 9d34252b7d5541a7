"""The look of a card: colours and a geometric motif chosen from genres and keywords.

A :class:`Look` is drawn from weighted words. Genre names (and common synonyms: "space" is
Sci-Fi, "love" is Romance) map to a hand-made palette and motif; any other word hashes to a hue
and a motif, so every keyword gets a stable look. :func:`blend` mixes two looks' colours for the
card's ``alpha``; :func:`draw_motif` draws one look's motif with an opacity, so the card shows the
item's motif fading out as the user's fades in.
"""

from __future__ import annotations

import colorsys
import math
import random
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Look:
    """Background gradient (``top`` to ``bottom``), two accents and the motifs (kind, weight)."""

    top: RGB
    bottom: RGB
    accent: RGB
    accent2: RGB
    motifs: tuple[tuple[str, float], ...]


_GENRES: dict[str, tuple[RGB, RGB, RGB, str]] = {
    # genre: (gradient top, gradient bottom, accent, motif)
    "sci-fi": ((0, 190, 225), (5, 20, 80), (150, 255, 245), "orbits"),
    "horror": ((125, 0, 5), (8, 0, 0), (235, 35, 35), "shards"),
    "film-noir": ((125, 125, 125), (10, 10, 10), (235, 235, 235), "blinds"),
    "western": ((225, 160, 60), (115, 55, 20), (255, 225, 160), "sun"),
    "animation": ((255, 120, 200), (80, 175, 255), (255, 240, 80), "confetti"),
    "documentary": ((205, 200, 190), (115, 110, 100), (55, 55, 55), "grid"),
    "war": ((115, 115, 60), (40, 45, 25), (205, 185, 120), "chevrons"),
    "musical": ((230, 60, 125), (60, 20, 95), (255, 210, 100), "waves"),
    "fantasy": ((125, 80, 205), (20, 20, 80), (255, 220, 120), "stars"),
    "children's": ((255, 205, 70), (80, 195, 120), (255, 85, 85), "bubbles"),
    "mystery": ((40, 60, 115), (10, 15, 35), (165, 200, 255), "rings"),
    "romance": ((255, 150, 185), (175, 45, 100), (255, 235, 240), "hearts"),
    "crime": ((65, 65, 75), (15, 15, 20), (225, 185, 40), "stripes"),
    "thriller": ((40, 85, 95), (5, 15, 20), (245, 95, 40), "shards"),
    "comedy": ((255, 220, 70), (245, 135, 35), (225, 55, 90), "dots"),
    "adventure": ((30, 125, 110), (20, 50, 40), (240, 200, 90), "peaks"),
    "action": ((205, 60, 20), (40, 10, 10), (255, 190, 60), "rays"),
    "drama": ((110, 60, 140), (30, 20, 60), (240, 200, 160), "circles"),
}
"""Genres from the most to the least telling: an item's first genre in this order sets its
background (Star Wars is Sci-Fi before it is Action)."""

_SYNONYMS = {
    "scifi": "sci-fi", "science": "sci-fi", "space": "sci-fi", "alien": "sci-fi",
    "aliens": "sci-fi", "robot": "sci-fi", "robots": "sci-fi", "future": "sci-fi",
    "futuristic": "sci-fi", "cyberpunk": "sci-fi", "scary": "horror", "ghost": "horror",
    "monster": "horror", "monsters": "horror", "zombie": "horror", "vampire": "horror",
    "gore": "horror", "noir": "film-noir", "filmnoir": "film-noir", "cowboy": "western",
    "cowboys": "western", "frontier": "western", "animated": "animation", "cartoon": "animation",
    "anime": "animation", "pixar": "animation", "disney": "animation",
    "documentaries": "documentary",
    "military": "war", "battle": "war", "soldiers": "war", "music": "musical", "songs": "musical",
    "dance": "musical", "magic": "fantasy", "fairy": "fantasy", "dragons": "fantasy",
    "myth": "fantasy", "children": "children's", "childrens": "children's", "kids": "children's",
    "family": "children's", "detective": "mystery", "whodunit": "mystery", "love": "romance",
    "romantic": "romance", "gangster": "crime", "heist": "crime", "mafia": "crime",
    "suspense": "thriller", "psychological": "thriller", "funny": "comedy", "humor": "comedy",
    "humour": "comedy", "comedies": "comedy", "comic": "comedy", "quest": "adventure",
    "journey": "adventure", "explosions": "action", "fight": "action", "martial": "action",
    "dramatic": "drama", "dramas": "drama",
}  # fmt: skip

MOTIF_KINDS = (
    "orbits", "shards", "blinds", "sun", "confetti", "grid", "chevrons", "waves", "stars",
    "bubbles", "rings", "hearts", "stripes", "dots", "peaks", "rays", "circles",
)  # fmt: skip


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _hsv(hue: float, sat: float, val: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, sat, val)
    return (round(r * 255), round(g * 255), round(b * 255))


def genre_of(word: str) -> str | None:
    """The genre a keyword or genre name stands for (``"Sci-Fi"``, ``"space opera"`` ->
    ``"sci-fi"``), or None."""
    text = word.strip().lower()
    if text in _GENRES:
        return text
    squashed = re.sub(r"[^a-z']", "", text)
    for genre in _GENRES:
        if squashed == re.sub(r"[^a-z']", "", genre):
            return genre
    for token in re.findall(r"[a-z']+", text):
        found = _SYNONYMS.get(token) or (token if token in _GENRES else None)
        if found:
            return found
    return None


def word_style(word: str) -> tuple[RGB, RGB, RGB, str]:
    """(top, bottom, accent, motif) for one word: its genre's, or one hashed from the word."""
    genre = genre_of(word)
    if genre is not None:
        return _GENRES[genre]
    code = _crc(word.strip().lower())
    hue = (code % 360) / 360.0
    motif = MOTIF_KINDS[(code >> 9) % len(MOTIF_KINDS)]
    return (_hsv(hue, 0.6, 0.85), _hsv(hue + 0.07, 0.75, 0.28), _hsv(hue + 0.5, 0.45, 1.0), motif)


def _rank(word: str) -> int:
    genre = genre_of(word)
    return list(_GENRES).index(genre) if genre else len(_GENRES)


def item_words(genres: Iterable[str], keywords: Iterable[tuple[str, float]]) -> list[str]:
    """An item's words, most telling first: its genres in :data:`_GENRES` order, then its
    keywords by score."""
    ordered = sorted((g for g in genres if g.strip()), key=_rank)
    ranked = sorted(((w, s) for w, s in keywords if w.strip()), key=lambda ws: -ws[1])
    return ordered + [w for w, _ in ranked]


def look_of(words: list[str], weights: list[float] | None = None) -> Look:
    """The look of weighted words (the first the heaviest): the first word's gradient, the
    second word's accent as the second accent, and the motifs of the three heaviest distinct
    words. No words gives a neutral grey look."""
    if not words:
        return Look((92, 96, 110), (28, 30, 38), (200, 205, 220), (150, 155, 170), (("grid", 1.0),))
    weights = weights or [1.0 / (i + 1) for i in range(len(words))]
    styles = [word_style(w) for w in words]
    top, bottom, accent, _ = styles[0]
    accent2 = styles[1][2] if len(styles) > 1 and styles[1][2] != accent else styles[0][0]
    motifs: dict[str, float] = {}
    for (_, _, _, motif), weight in zip(styles, weights, strict=True):
        if motif in motifs or len(motifs) < 3:
            motifs[motif] = motifs.get(motif, 0.0) + (weight if 0 < weight < math.inf else 0.0)
    total = sum(motifs.values()) or 1.0
    return Look(top, bottom, accent, accent2, tuple((k, v / total) for k, v in motifs.items()))


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """``a`` at t=0, ``b`` at t=1, linear in between."""
    red, green, blue = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return (red, green, blue)


def blend(item: Look, preference: Look, alpha: float) -> tuple[RGB, RGB, RGB, RGB]:
    """The card's (top, bottom, accent, accent2): the item's colours at alpha=0, the
    preference look's at alpha=1."""
    return (
        mix(item.top, preference.top, alpha),
        mix(item.bottom, preference.bottom, alpha),
        mix(item.accent, preference.accent, alpha),
        mix(item.accent2, preference.accent2, alpha),
    )


@lru_cache(maxsize=8)
def _diagonal(size: int) -> Image.Image:
    """An L ramp from 0 at the top-left corner to 255 at the bottom-right, steeper downwards."""
    ramp = np.add.outer(np.arange(size) * 2.0, np.arange(size) * 1.0) / (3.0 * max(1, size - 1))
    return Image.fromarray(np.round(ramp * 255).astype(np.uint8))


@lru_cache(maxsize=64)
def scrim(size: int, top: int) -> Image.Image:
    """An RGB multiplier darkening from row ``top`` down to the bottom, so white text reads on
    any background."""
    t = np.clip((np.arange(size, dtype=float) - top) / max(1, size - top), 0.0, 1.0)
    column = np.round(255 - 235 * t**0.6).astype(np.uint8)
    return Image.fromarray(np.repeat(np.repeat(column[:, None, None], size, axis=1), 3, axis=2))


def gradient(top: RGB, bottom: RGB, size: int) -> Image.Image:
    """The diagonal gradient from ``top`` (top-left) to ``bottom`` (bottom-right)."""
    ramp = _diagonal(size)
    channels = [
        ramp.point([round(a + (b - a) * v / 255) for v in range(256)])
        for a, b in zip(top, bottom, strict=True)
    ]
    return Image.merge("RGB", channels)


# --- motifs: each draws with an RGBA ImageDraw on an RGB image, opacity scaling every fill ---

Paint = Callable[[RGB, float], tuple[int, int, int, int]]
Motif = Callable[[ImageDraw.ImageDraw, random.Random, int, tuple[RGB, RGB], Paint], None]


def _orbits(d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint) -> None:
    cx, cy, rad = s * r.uniform(0.55, 0.8), s * r.uniform(0.3, 0.5), s * r.uniform(0.14, 0.2)
    d.ellipse((cx - rad, cy - rad, cx + rad, cy + rad), fill=p(c[0], 0.75))
    for k in (1.6, 2.1, 2.7):
        w, h = rad * k, rad * k * 0.28
        d.ellipse((cx - w, cy - h, cx + w, cy + h), outline=p(c[1], 0.6), width=max(2, s // 160))
    for _ in range(28):
        x, y, rr = r.uniform(0, s), r.uniform(0, s * 0.7), r.uniform(1, s / 160)
        d.ellipse((x - rr, y - rr, x + rr, y + rr), fill=p((255, 255, 255), r.uniform(0.4, 0.9)))


def _shards(d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint) -> None:
    for i in range(7):
        x0, y0 = r.choice((0, s)), r.uniform(0, s)
        tip = (r.uniform(0.25, 0.75) * s, r.uniform(0.1, 0.7) * s)
        spread = r.uniform(0.05, 0.16) * s
        d.polygon([(x0, y0 - spread), (x0, y0 + spread), tip], fill=p(c[i % 2], 0.55))


def _blinds(d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint) -> None:
    step, slant = s / 9, r.uniform(0.25, 0.5) * s
    for i in range(-2, 12):
        y = i * step + r.uniform(-2, 2)
        band = [(0, y), (s, y - slant), (s, y - slant + step * 0.45), (0, y + step * 0.45)]
        d.polygon(band, fill=p(c[0], 0.35))


def _sun(d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint) -> None:
    cx, cy, rad = s * r.uniform(0.3, 0.7), s * 0.52, s * r.uniform(0.16, 0.24)
    d.ellipse((cx - rad, cy - rad, cx + rad, cy + rad), fill=p(c[0], 0.85))
    for i in range(5):
        y = s * 0.56 + i * s * 0.06
        d.rectangle((0, y, s, y + s * 0.03), fill=p(c[1], 0.5 - i * 0.06))


def _confetti(
    d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint
) -> None:
    colours = [c[0], c[1], (255, 255, 255), (40, 220, 200)]
    for _ in range(44):
        x, y, w = r.uniform(0, s), r.uniform(0, s), r.uniform(0.012, 0.03) * s
        a = r.uniform(0, math.pi)
        dx, dy = math.cos(a) * w, math.sin(a) * w
        pts = [(x - dx, y - dy), (x + dy * 0.5, y - dx * 0.5), (x + dx, y + dy)]
        d.polygon(pts, fill=p(r.choice(colours), 0.85))


def _grid(d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint) -> None:
    n = r.choice((6, 8, 10))
    step = s / n
    for i in range(n):
        for j in range(n):
            if r.random() < 0.12:
                d.rectangle((i * step, j * step, (i + 1) * step, (j + 1) * step), fill=p(c[1], 0.3))
    for i in range(1, n):
        d.line((i * step, 0, i * step, s), fill=p(c[0], 0.45), width=max(1, s // 300))
        d.line((0, i * step, s, i * step), fill=p(c[0], 0.45), width=max(1, s // 300))


def _chevrons(
    d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint
) -> None:
    cx, h = s * r.uniform(0.35, 0.65), s * 0.08
    for i in range(6):
        y = s * 0.12 + i * h * 1.25
        pts = [(cx - s * 0.3, y), (cx, y + h), (cx + s * 0.3, y), (cx + s * 0.3, y + h * 0.6)]
        pts += [(cx, y + h * 1.6), (cx - s * 0.3, y + h * 0.6)]
        d.polygon(pts, fill=p(c[i % 2], 0.5 - i * 0.05))


def _waves(d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint) -> None:
    thick = max(3, s // 50)
    for i in range(6):
        base, amp = s * (0.15 + i * 0.11), s * r.uniform(0.03, 0.07)
        freq, phase = r.uniform(1.5, 3.0), r.uniform(0, 2 * math.pi)
        xs = [s * k / 48 for k in range(49)]
        top = [(x, base + amp * math.sin(phase + freq * 2 * math.pi * x / s)) for x in xs]
        d.polygon(top + [(x, y + thick) for x, y in reversed(top)], fill=p(c[i % 2], 0.6))


def _star(d: ImageDraw.ImageDraw, x: float, y: float, rad: float, fill: tuple[int, ...]) -> None:
    pts = []
    for k in range(8):
        rr = rad if k % 2 == 0 else rad * 0.3
        a = k * math.pi / 4
        pts.append((x + rr * math.cos(a), y + rr * math.sin(a)))
    d.polygon(pts, fill=fill)


def _stars(d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint) -> None:
    for i in range(26):
        big = i < 3
        rad = s * (r.uniform(0.05, 0.09) if big else r.uniform(0.008, 0.022))
        _star(d, r.uniform(0, s), r.uniform(0, s * 0.8), rad, p(c[i % 2], 0.9 if big else 0.7))


def _bubbles(
    d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint
) -> None:
    for i in range(14):
        x, y, rad = r.uniform(0, s), r.uniform(0, s), s * r.uniform(0.03, 0.12)
        box = (x - rad, y - rad, x + rad, y + rad)
        d.ellipse(
            box, fill=p(c[i % 2], 0.35), outline=p((255, 255, 255), 0.6), width=max(1, s // 200)
        )


def _rings(d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint) -> None:
    cx, cy = s * r.uniform(0.3, 0.7), s * r.uniform(0.3, 0.55)
    for i in range(1, 9):
        rad = i * s * 0.06
        d.ellipse(
            (cx - rad, cy - rad, cx + rad, cy + rad),
            outline=p(c[i % 2], 0.65 - i * 0.05),
            width=max(2, s // 120),
        )


def _hearts(d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint) -> None:
    for i in range(7):
        x, y, w = r.uniform(0.05, 0.95) * s, r.uniform(0.05, 0.7) * s, s * r.uniform(0.03, 0.09)
        fill = p(c[i % 2], 0.6)
        d.ellipse((x - w, y - w / 2, x, y + w / 2), fill=fill)
        d.ellipse((x, y - w / 2, x + w, y + w / 2), fill=fill)
        d.polygon(
            [(x - w * 0.97, y + w * 0.12), (x + w * 0.97, y + w * 0.12), (x, y + w * 1.2)],
            fill=fill,
        )


def _stripes(
    d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint
) -> None:
    off, w = r.uniform(0, s * 0.2), s * 0.07
    for i in range(-6, 10, 2):
        x = off + i * w * 1.6
        d.polygon([(x, 0), (x + w, 0), (x + w + s, s), (x + s, s)], fill=p(c[(i // 2) % 2], 0.35))


def _dots(d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint) -> None:
    step = s / r.choice((9, 11, 13))
    corner = r.choice(((0, 0), (s, 0), (0, s), (s, s)))
    for i in range(int(s / step) + 1):
        for j in range(int(s / step) + 1):
            x, y = (i + 0.5) * step, (j + 0.5) * step
            rad = step * 0.42 * (1 - math.dist((x, y), corner) / (s * 1.45))
            if rad > 0.8:
                d.ellipse((x - rad, y - rad, x + rad, y + rad), fill=p(c[(i + j) % 2], 0.55))


def _peaks(d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint) -> None:
    for i in range(3):
        base = s * (0.55 + i * 0.12)
        pts = [(0.0, float(s)), (0.0, base)]
        x = 0.0
        while x < s:
            x += s * r.uniform(0.12, 0.25)
            pts.append((x, base - s * r.uniform(0.06, 0.22)))
            x += s * r.uniform(0.08, 0.16)
            pts.append((x, base))
        pts.append((float(s), float(s)))
        d.polygon(pts, fill=p(c[i % 2], 0.45 + i * 0.1))


def _rays(d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint) -> None:
    cx, cy, n = s * r.uniform(0.3, 0.7), s * r.uniform(0.25, 0.45), 14
    start = r.uniform(0, math.pi)
    for k in range(n):
        a0, a1 = start + 2 * math.pi * k / n, start + 2 * math.pi * (k + 0.45) / n
        pts = [(cx, cy), (cx + 2 * s * math.cos(a0), cy + 2 * s * math.sin(a0))]
        pts.append((cx + 2 * s * math.cos(a1), cy + 2 * s * math.sin(a1)))
        d.polygon(pts, fill=p(c[k % 2], 0.3))


def _circles(
    d: ImageDraw.ImageDraw, r: random.Random, s: int, c: tuple[RGB, RGB], p: Paint
) -> None:
    for i in range(4):
        x, y, rad = r.uniform(0.1, 0.9) * s, r.uniform(0.1, 0.7) * s, s * r.uniform(0.15, 0.3)
        d.ellipse((x - rad, y - rad, x + rad, y + rad), fill=p(c[i % 2], 0.3))


MOTIFS: dict[str, Motif] = {
    "orbits": _orbits, "shards": _shards, "blinds": _blinds, "sun": _sun,
    "confetti": _confetti, "grid": _grid, "chevrons": _chevrons, "waves": _waves,
    "stars": _stars, "bubbles": _bubbles, "rings": _rings, "hearts": _hearts,
    "stripes": _stripes, "dots": _dots, "peaks": _peaks, "rays": _rays, "circles": _circles,
}  # fmt: skip


def draw_motif(
    draw: ImageDraw.ImageDraw,
    kind: str,
    rng: random.Random,
    size: int,
    colours: tuple[RGB, RGB],
    opacity: float,
) -> None:
    """Draw motif ``kind`` over a ``size``-pixel square with every fill's opacity scaled by
    ``opacity`` (the shapes depend only on ``rng``, so the motif fades without moving)."""

    def paint(colour: RGB, strength: float) -> tuple[int, int, int, int]:
        return (*colour, round(255 * max(0.0, min(1.0, strength * opacity))))

    MOTIFS[kind](draw, rng, size, colours, paint)
