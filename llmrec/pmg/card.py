"""The embedded thumbnail generator: a poster-like card drawn with Pillow, no model weights.

The card's background and geometric motif come from the item's genres and keywords at
``alpha`` = 0 and from the user's preference keywords at ``alpha`` = 1; in between the colours
are interpolated and the item's motif fades out as the user's fades in. Over it: keyword badges
(the item's, light; the user's, dark with an accent ring, more of them as alpha grows), the
title fitted to at most three lines, year and genres, and a "Because you liked X and Y" footer.
The user's badges and footer are personal, so an alpha = 0 card is the same for every user.

Text uses only Pillow's bundled font (``ImageFont.load_default``): characters it lacks are
replaced by their unaccented form (é -> e) or left out. The same spec and size give the same
pixels, hence a byte-identical PNG.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFont

from llmrec.errors import ConfigError, DataError
from llmrec.pmg.palette import Look, blend, draw_motif, gradient, item_words, look_of, scrim
from llmrec.pmg.spec import ThumbnailSpec

CARD_VERSION = 1
"""Bumped whenever the drawing changes, so outputs can tell cards of different versions apart."""
MIN_SIZE = 64
ELLIPSIS = "…"
MAX_PREFERENCE_BADGES = 3
MAX_TITLE_LINES = 3
SUPERSAMPLE = 2
"""Shapes are drawn this many times larger and reduced: smooth edges; 1 is about twice as fast."""
_FontT = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=max(6, size))
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise ConfigError("the card needs Pillow with FreeType support (a scalable font)")
    return font


@lru_cache(maxsize=1)
def _missing_glyph() -> tuple[tuple[int, int], bytes]:
    mask = _font(20).getmask("\ue000")  # a private-use character: the font's "missing" box
    return mask.size, bytes(mask)


@lru_cache(maxsize=4096)
def _has_glyph(char: str) -> bool:
    mask = _font(20).getmask(char)
    return (mask.size, bytes(mask)) != _missing_glyph()


_REPLACE = {"—": "-", "–": "-", "‐": "-", "‑": "-", "•": "·", "«": '"', "»": '"'}


def printable(text: str) -> str:
    """``text`` with what the bundled font cannot draw replaced (dashes, accents stripped) or
    left out, whitespace collapsed."""
    out = []
    for char in text:
        if char.isspace():
            out.append(" ")
        elif char.isprintable() and _has_glyph(char):
            out.append(char)
        elif char in _REPLACE:
            out.append(_REPLACE[char])
        else:
            plain = unicodedata.normalize("NFKD", char)
            out += [c for c in plain if not unicodedata.combining(c) and c.isprintable()
                    and not c.isspace() and _has_glyph(c)]  # fmt: skip
    return " ".join("".join(out).split())


def ellipsize(text: str, font: _FontT, width: float) -> str:
    """``text``, cut and ended with an ellipsis if it is wider than ``width``."""
    if font.getlength(text) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid].rstrip() + ELLIPSIS) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + ELLIPSIS


def wrap(text: str, font: _FontT, width: float) -> list[str]:
    """Greedy word wrap to ``width`` pixels; a word wider than a line is split."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        while font.getlength(word) > width and len(word) > 1:  # split an over-long word
            cut = max(1, len(ellipsize(word, font, width)) - 1)
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
        else:
            lines.append(line)
            line = word
    return [*lines, line] if line else lines


def because_sentence(titles: Sequence[str]) -> str:
    """ "Because you liked X", "... X and Y", "... X, Y and Z"; empty without titles."""
    names = [t for t in (printable(t) for t in titles) if t]
    if not names:
        return ""
    joined = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"Because you liked {joined}"


def footer_text(titles: Sequence[str], font: _FontT, width: float) -> str:
    """The footer line that fits ``width``: as many titles as fit ("X, Y and 3 more"), the
    longest shortened first (each keeps 12 characters), else the first title cut with an
    ellipsis. Empty without titles."""
    names = [t for t in (printable(t) for t in titles) if t]
    if not names:
        return ""
    for count in range(len(names), 0, -1):
        more = [f"{len(names) - count} more"] if count < len(names) else []
        fitted = _shorten([*names[:count], *more], count, font, width)
        if fitted:
            return fitted
    return ellipsize(because_sentence(names[:1]), font, width)


def _shorten(names: list[str], count: int, font: _FontT, width: float) -> str:
    """The sentence of ``names`` with the longest of the first ``count`` shortened until it fits
    ``width``; empty when it cannot fit."""
    while font.getlength(text := because_sentence(names)) > width:
        longest = max(range(count), key=lambda i: len(names[i]))
        if len(names[longest]) <= 12:
            return ""
        names[longest] = names[longest].removesuffix(ELLIPSIS)[:-1].rstrip() + ELLIPSIS
    return text


def check_size(size: int) -> int:
    """``size`` if it is an integer >= :data:`MIN_SIZE`, else ConfigError."""
    if isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIZE:
        raise ConfigError(f"card size must be an integer >= {MIN_SIZE} pixels, got {size!r}")
    return size


def _check_supersample(factor: int) -> int:
    if isinstance(factor, bool) or factor not in (1, 2, 3, 4):
        raise ConfigError(f"supersample must be 1, 2, 3 or 4, got {factor!r}")
    return factor


@dataclass(frozen=True)
class Badge:
    """A keyword badge: ``kind`` is "item" (the target's keyword) or "you" (a preference)."""

    text: str
    kind: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class CardLayout:
    """Where the text of a card goes, decided before drawing (sizes in pixels)."""

    size: int
    title_lines: tuple[str, ...]
    title_size: int
    title_top: int
    meta: str
    meta_size: int
    badges: tuple[Badge, ...]
    badge_size: int
    footer: str
    footer_size: int


def _fit_title(title: str, width: float, largest: int, smallest: int) -> tuple[list[str], int]:
    size = largest
    while True:
        font = _font(size)
        lines = wrap(title, font, width)
        if len(lines) <= MAX_TITLE_LINES or size <= smallest:
            break
        size = max(smallest, size - max(1, size // 12))
    if len(lines) > MAX_TITLE_LINES:
        rest = " ".join(lines[MAX_TITLE_LINES - 1 :])
        lines = [*lines[: MAX_TITLE_LINES - 1], ellipsize(rest, font, width)]
    return lines, size


def _badge_row(
    words: Sequence[str], kind: str, y: int, font_size: int, size: int, limit: int
) -> list[Badge]:
    """Badges for ``words`` left to right from the padding, as many as fit on one row."""
    font, height, pad = _font(font_size), round(font_size * 1.6), round(size / 20)
    inner = round(font_size * 0.6)
    marker = round(font_size * 0.8) if kind == "you" else 0
    x, row = pad, list[Badge]()
    for word in words[:limit]:
        text = ellipsize(printable(word), font, size * 0.55)
        gap = round(font_size * 0.5) if row else 0
        w = inner + marker + round(font.getlength(text)) + inner
        if not text or x + gap + w > size - pad:
            continue
        x += gap
        row.append(Badge(text, kind, (x, y, x + w, y + height)))
        x += w
    return row


def layout_card(spec: ThumbnailSpec, size: int = 384) -> CardLayout:
    """Decide the card's text: fitted title lines, meta line, badges and footer."""
    check_size(size)
    pad, width = size / 20, size * 0.9
    badge_size, meta_size, footer_size = (
        round(size * 0.04),
        round(size * 0.043),
        round(size * 0.037),
    )
    title = printable(spec.item.title) or f"Item {printable(spec.item.item_id)}".strip()
    lines, title_size = _fit_title(title, width, round(size * 0.1), round(size * 0.058))
    genres = item_words(spec.item.genres, [])[:3]
    meta = " · ".join(p for p in (printable(spec.item.year), *map(printable, genres)) if p)
    meta = ellipsize(meta, _font(meta_size), width)
    footer = footer_text(spec.because, _font(footer_size), width) if spec.alpha > 0 else ""
    bottom = size - pad - (footer_size * 1.5 if footer else 0)
    title_top = bottom - meta_size * 1.35 - len(lines) * title_size * 1.12
    targets = [k.text for k in sorted(spec.target_keywords, key=lambda k: -k.score)]
    preferences = [k.text for k in sorted(spec.preference_keywords, key=lambda k: -k.score)]
    shown = math.ceil(spec.alpha * MAX_PREFERENCE_BADGES - 1e-9)
    row_gap = round(badge_size * 2.0)
    badges = _badge_row(targets, "item", round(pad), badge_size, size, 4)
    y = round(pad) + (row_gap if badges else 0)
    badges += _badge_row(preferences, "you", y, badge_size, size, shown)
    return CardLayout(
        size, tuple(lines), title_size, round(title_top), meta, meta_size, tuple(badges),
        badge_size, footer, footer_size,
    )  # fmt: skip


def card_looks(spec: ThumbnailSpec) -> tuple[Look, Look]:
    """(the item's look, the user's look): the item's from its genres then target keywords,
    the user's from the preference keywords by score (the item's when there are none)."""
    targets = [(k.text, k.score) for k in spec.target_keywords]
    item = look_of(item_words(spec.item.genres, targets))
    preferences = sorted(
        (k for k in spec.preference_keywords if k.text.strip()), key=lambda k: -k.score
    )
    if not preferences:
        return item, item
    return item, look_of([k.text for k in preferences], [max(k.score, 1e-6) for k in preferences])


def _backdrop(
    spec: ThumbnailSpec, layout: CardLayout, item: Look, you: Look, scale: int
) -> Image.Image:
    """The background: gradient, both motifs at their opacities and the badge shapes drawn at
    twice the size and reduced (smooth edges), then the scrim under the title."""
    alpha = spec.alpha
    big = layout.size * scale
    top, bottom, _, _ = blend(item, you, alpha)
    img = gradient(top, bottom, layout.size).resize((big, big), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img, "RGBA")
    layers = (
        [(item, 1.0 - alpha, "item"), (you, alpha, "you")]
        if you is not item
        else [(item, 1.0, "item")]
    )
    for look, weight, tag in layers:
        if weight * 255 < 0.5:
            continue
        for kind, share in reversed(look.motifs):  # the heaviest motif on top
            rng = random.Random(f"{tag}|{spec.item.item_id}|{spec.seed}|{kind}")
            opacity = weight * min(1.0, share * 1.6)
            draw_motif(draw, kind, rng, big, (look.accent, look.accent2), opacity)
    for badge in layout.badges:
        box = tuple(v * scale for v in badge.box)
        radius = (box[3] - box[1]) // 2
        if badge.kind == "item":
            draw.rounded_rectangle(box, radius, fill=(255, 255, 255, 230))
        else:
            draw.rounded_rectangle(
                box, radius, fill=(12, 12, 16, 185), outline=(*you.accent, 255), width=2 * scale
            )
            cx, cy = box[0] + round(layout.badge_size * 0.95) * scale, (box[1] + box[3]) / 2
            r = layout.badge_size * 0.28 * scale
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*you.accent, 255))
    shade_from = max(0, layout.title_top - round(layout.size * 0.16))
    return ImageChops.multiply(img.reduce(scale), scrim(layout.size, shade_from))


def render_card(
    spec: ThumbnailSpec, size: int = 384, supersample: int = SUPERSAMPLE
) -> Image.Image:
    """Draw the card of ``spec`` as a ``size`` x ``size`` RGB image.

    Args:
        spec: the item, keywords, alpha, "because" titles and seed.
        size: the side in pixels (at least 64).
        supersample: 1 to 4, see :data:`SUPERSAMPLE`.

    Returns:
        The card; the same spec and size give the same pixels.

    Raises:
        ConfigError: size is not an integer >= 64, or a bad supersample.
    """
    layout = layout_card(spec, size)
    item, you = card_looks(spec)
    img = _backdrop(spec, layout, item, you, _check_supersample(supersample))
    draw = ImageDraw.Draw(img)
    _, _, accent, _ = blend(item, you, spec.alpha)
    light = tuple(round(c + (255 - c) * 0.55) for c in accent)
    badge_font = _font(layout.badge_size)
    for badge in layout.badges:
        x = badge.box[0] + round(layout.badge_size * 0.6)
        x += round(layout.badge_size * 0.8) if badge.kind == "you" else 0
        ink = (28, 28, 34) if badge.kind == "item" else (255, 255, 255)
        draw.text(
            (x, (badge.box[1] + badge.box[3]) / 2),
            badge.text,
            fill=ink,
            font=badge_font,
            anchor="lm",
        )
    pad = round(size / 20)
    title_font, step = _font(layout.title_size), layout.title_size * 1.12
    bar_y = layout.title_top - round(size * 0.03)
    draw.rectangle((pad, bar_y, pad + round(size * 0.12), bar_y + max(2, size // 128)), fill=accent)
    for i, line in enumerate(layout.title_lines):
        y = layout.title_top + i * step
        draw.text((pad + 1, y + 1), line, fill=(0, 0, 0), font=title_font)
        draw.text((pad, y), line, fill=(255, 255, 255), font=title_font)
    meta_y = layout.title_top + len(layout.title_lines) * step + layout.meta_size * 0.2
    draw.text((pad, meta_y), layout.meta, fill=light, font=_font(layout.meta_size))
    if layout.footer:
        footer_y = size - pad - layout.footer_size
        draw.text(
            (pad, footer_y), layout.footer, fill=(226, 226, 230), font=_font(layout.footer_size)
        )
    return img


class CardGenerator:
    """The default thumbnail generator: :func:`render_card` for each spec, no model needed.

    Args:
        size: the side of every card in pixels.
        supersample: 1 to 4, see :data:`SUPERSAMPLE`.
    """

    name = "card"

    def __init__(self, size: int = 384, supersample: int = SUPERSAMPLE) -> None:
        self.size, self.supersample = check_size(size), _check_supersample(supersample)

    @property
    def fingerprint(self) -> str:
        """What decides the pixels besides the spec: renderer version and size."""
        return f"card-v{CARD_VERSION}-{self.size}px-x{self.supersample}"

    def generate(
        self,
        specs: Sequence[ThumbnailSpec],
        alpha: float | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[Image.Image]:
        """One card per spec, in order (the same arguments as the diffusion generator's).

        Args:
            specs: the thumbnails to draw.
            alpha: overrides each spec's ``alpha``.
            seeds: one seed per spec, overriding theirs.

        Raises:
            ConfigError: a bad ``alpha``. DataError: an item that is not a ThumbnailSpec, or
                seeds of another length.
        """
        if seeds is not None and len(seeds) != len(specs):
            raise DataError(f"{len(seeds)} seeds for {len(specs)} specs")
        cards = []
        for i, spec in enumerate(specs):
            if not isinstance(spec, ThumbnailSpec):
                raise DataError(f"the card draws ThumbnailSpec items, got {type(spec).__name__}")
            if alpha is not None:
                spec = replace(spec, alpha=alpha)
            if seeds is not None:
                spec = replace(spec, seed=int(seeds[i]))
            cards.append(render_card(spec, self.size, self.supersample))
        return cards
