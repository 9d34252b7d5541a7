from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from llmrec.errors import ConfigError, DataError
from llmrec.pmg.card import (
    ELLIPSIS,
    MAX_TITLE_LINES,
    CardGenerator,
    _font,
    because_sentence,
    card_looks,
    footer_text,
    layout_card,
    printable,
    render_card,
)
from llmrec.pmg.palette import genre_of, look_of, word_style
from llmrec.pmg.spec import ItemInfo, Keyword, ThumbnailSpec

ALIEN = ItemInfo(182, "183", "Alien", "1979", ("Action", "Horror", "Sci-Fi", "Thriller"))
SCREAM = ItemInfo(287, "288", "Scream", "1996", ("Horror", "Thriller"))
COMEDY_FAN = (
    Keyword("comedy", 0.9, (0, 1)),
    Keyword("romance", 0.7, (2,)),
    Keyword("feel-good", 0.4, (1,)),
)
NOIR_FAN = (Keyword("film noir", 0.8, (0,)), Keyword("detective", 0.6, (1,)))
TARGET = (Keyword("slasher", 0.9), Keyword("masks", 0.5))


def spec(
    item=SCREAM, prefs=COMEDY_FAN, alpha=0.5, because=("Forrest Gump",), seed=0, targets=TARGET
):
    return ThumbnailSpec(item, targets, prefs, alpha, because, seed)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def distance(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(pixels(a) - pixels(b)).mean())


def test_same_spec_gives_a_byte_identical_png_and_the_seed_matters():
    first, again = render_card(spec(), 256), render_card(spec(), 256)
    assert png(first) == png(again)
    assert first.mode == "RGB" and first.size == (256, 256)
    assert distance(first, render_card(spec(seed=1), 256)) > 1.0


def test_alpha_moves_the_card_from_the_item_look_to_the_user_look():
    cards = {a: render_card(spec(alpha=a), 192) for a in (0.0, 0.25, 0.5, 0.75, 1.0)}
    away = {a: distance(cards[0.0], card) for a, card in cards.items()}
    assert away[1.0] > 40  # mean per channel, on 0-255: Horror's dark red against Comedy's yellow
    assert away[0.25] < away[0.5] < away[0.75] <= away[1.0] * 1.05
    toward = {a: distance(cards[1.0], card) for a, card in cards.items()}
    assert toward[0.0] > toward[0.25] > toward[0.5] > toward[0.75]
    # alpha=1 shows the user's palette: the comedy look's yellow, not the horror look's red
    top_left = pixels(cards[1.0])[:8, :8].mean(axis=(0, 1))
    assert top_left[1] > 120 and top_left[0] > 180  # yellow-orange
    red = pixels(cards[0.0])[:8, :8].mean(axis=(0, 1))
    assert red[0] > 2 * red[1]


def test_alpha_zero_is_the_same_card_for_every_user():
    comedy = render_card(spec(prefs=COMEDY_FAN, alpha=0.0, because=("Forrest Gump",)), 192)
    noir = render_card(spec(prefs=NOIR_FAN, alpha=0.0, because=("Fargo", "Vertigo")), 192)
    nobody = render_card(spec(prefs=(), alpha=0.0, because=()), 192)
    assert png(comedy) == png(noir) == png(nobody)
    personal = [render_card(spec(prefs=p, alpha=0.6), 192) for p in (COMEDY_FAN, NOIR_FAN)]
    assert distance(*personal) > 10


def test_no_preference_keywords_leaves_the_item_look():
    item, you = card_looks(spec(prefs=()))
    assert you is item
    plain = render_card(spec(prefs=(), alpha=0.0, because=()), 128)
    leaning = render_card(spec(prefs=(), alpha=1.0, because=()), 128)
    assert png(plain) == png(leaning)


def test_long_titles_are_wrapped_and_fitted():
    size = 256
    title = "The Extraordinary and Entirely Unabridged Adventures of " * 6
    layout = layout_card(spec(item=ItemInfo(1, "1", title, "1999")), size)
    font = _font(layout.title_size)
    assert 1 <= len(layout.title_lines) <= MAX_TITLE_LINES
    assert all(font.getlength(line) <= size * 0.9 for line in layout.title_lines)
    assert layout.title_lines[-1].endswith(ELLIPSIS)
    assert layout.title_size < round(size * 0.1)  # shrunk before it was cut
    short = layout_card(spec(item=ItemInfo(1, "1", "Jaws", "1975")), size)
    assert short.title_lines == ("Jaws",) and short.title_size == round(size * 0.1)
    one_word = layout_card(spec(item=ItemInfo(1, "1", "A" * 300)), size)
    assert all(_font(one_word.title_size).getlength(x) <= size * 0.9 for x in one_word.title_lines)
    render_card(spec(item=ItemInfo(1, "1", title)), size)


def test_text_the_font_lacks_is_simplified_or_left_out():
    assert printable("Amélie — Le Fabuleux Destin") == "Amelie - Le Fabuleux Destin"
    assert printable("七人の侍 (Seven Samurai)\n\t") == "(Seven Samurai)"
    assert printable("\u200b\x00") == ""
    japanese = ItemInfo(5, "1234", "七人の侍", "", ("Drama", "Animé", "🎬"))
    layout = layout_card(spec(item=japanese, because=("ローマの休日",)), 256)
    assert layout.title_lines == ("Item 1234",)  # nothing drawable: named by its id
    assert layout.meta == "Drama · Anime"
    assert layout.footer == ""
    for title in ("🎬🍿", "مرحبا بالعالم", "Zoë’s «Café»", "\x07\x1b[31m", "  "):
        card = render_card(spec(item=ItemInfo(1, "9", title, "2001", ("Комедия",))), 128)
        assert card.size == (128, 128)


def test_empty_keywords_and_missing_year():
    bare = spec(item=ItemInfo(3, "3", "Four Rooms", "", ()), prefs=(), targets=(), because=())
    layout = layout_card(bare, 256)
    assert layout.badges == () and layout.footer == "" and layout.meta == ""
    assert render_card(bare, 256).size == (256, 256)
    no_year = layout_card(spec(item=ItemInfo(3, "3", "Four Rooms", "", ("Thriller",))), 256)
    assert no_year.meta == "Thriller"
    blank = spec(prefs=(Keyword("  ", 1.0),), targets=(Keyword(""),))
    assert render_card(blank, 128).size == (128, 128)


def test_badges_show_the_item_keywords_and_more_preferences_as_alpha_grows():
    def kinds(alpha):
        badges = layout_card(spec(alpha=alpha), 384).badges
        return [b.kind for b in badges], badges

    for alpha, you in ((0.0, 0), (0.3, 1), (0.5, 2), (1.0, 3)):
        found, badges = kinds(alpha)
        assert found == ["item", "item"] + ["you"] * you
        assert all(0 <= b.box[0] < b.box[2] <= 384 and b.box[1] < b.box[3] < 384 for b in badges)
    _, badges = kinds(1.0)
    assert [b.text for b in badges] == ["slasher", "masks", "comedy", "romance", "feel-good"]
    assert badges[2].box[1] > badges[0].box[1]  # the user's badges on their own row


def test_footer_names_the_because_titles_and_fits():
    assert because_sentence(["Fargo"]) == "Because you liked Fargo"
    assert because_sentence(["Fargo", "Alien"]) == "Because you liked Fargo and Alien"
    assert because_sentence(["Fargo", "Alien", "Jaws"]) == "Because you liked Fargo, Alien and Jaws"
    assert because_sentence([]) == ""
    layout = layout_card(spec(because=("Fargo", "Alien")), 384)
    assert layout.footer == "Because you liked Fargo and Alien"
    font = _font(12)
    long = ["Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb", "Fargo"]
    text = footer_text(long, font, 300)
    assert font.getlength(text) <= 300
    assert text.startswith("Because you liked Dr. Strangelove") and text.endswith("and Fargo")
    assert ELLIPSIS in text
    many = footer_text([f"Movie number {i}" for i in range(12)], font, 330)
    assert font.getlength(many) <= 330
    assert many == "Because you liked Movie number 0 and 11 more"
    tiny = footer_text(["Lawrence of Arabia"], font, 80)
    assert font.getlength(tiny) <= 80 and tiny.endswith(ELLIPSIS)
    assert layout_card(spec(because=()), 384).footer == ""
    assert layout_card(spec(because=("Fargo",), alpha=0.0), 384).footer == ""


def test_size_argument_and_bad_inputs():
    for size in (64, 200, 512):
        assert render_card(spec(), size).size == (size, size)
    for bad in (63, 0, True, 256.0, "256"):
        with pytest.raises(ConfigError, match="card size"):
            render_card(spec(), bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="card size"):
            CardGenerator(bad)  # type: ignore[arg-type]
    for alpha in (-0.1, 1.5, float("nan"), True, "0.5"):
        with pytest.raises(ConfigError, match="alpha"):
            spec(alpha=alpha)


def test_generator_renders_each_spec_in_order():
    generator = CardGenerator(128)
    specs = [spec(alpha=0.0), spec(item=ALIEN, alpha=1.0)]
    images = generator.generate(specs)
    assert [png(i) for i in images] == [png(render_card(s, 128)) for s in specs]
    assert generator.name == "card" and generator.fingerprint == "card-v1-128px-x2"
    fast = CardGenerator(128, supersample=1)
    assert fast.fingerprint == "card-v1-128px-x1"
    sharp, smooth = fast.generate(specs[:1])[0], images[0]
    assert 0 < distance(sharp, smooth) < 8  # the same card, edges drawn without smoothing
    for bad in (0, 5, True, 1.5):
        with pytest.raises(ConfigError, match="supersample"):
            CardGenerator(128, supersample=bad)  # type: ignore[arg-type]
    assert generator.generate([]) == []
    leaning = generator.generate(specs, alpha=1.0, seeds=[5, 5])
    assert [png(i) for i in leaning] == [
        png(render_card(spec(alpha=1.0, seed=5), 128)),
        png(render_card(spec(item=ALIEN, alpha=1.0, seed=5), 128)),
    ]
    with pytest.raises(DataError, match="1 seeds for 2 specs"):
        generator.generate(specs, seeds=[1])
    with pytest.raises(ConfigError, match="alpha"):
        generator.generate(specs, alpha=2.0)
    with pytest.raises(DataError, match="ThumbnailSpec"):
        generator.generate(["Alien"])  # type: ignore[list-item]


def test_genres_and_keywords_map_to_stable_looks():
    assert genre_of("Sci-Fi") == genre_of("science fiction") == genre_of("space opera") == "sci-fi"
    assert genre_of("Film-Noir") == genre_of("film noir") == "film-noir"
    assert genre_of("Children's") == "children's" and genre_of("quiet") is None
    horror, noir = word_style("Horror"), word_style("Film-Noir")
    assert horror[1][0] < 30 and horror[0][0] > 3 * horror[0][1]  # dark red into black
    assert len({*noir[0]}) == 1 and len({*noir[1]}) == 1  # greyscale
    assert word_style("melancholy") == word_style("Melancholy ")  # hashed, but stable
    assert word_style("melancholy") != word_style("wanderlust")
    star_wars = look_of(["Sci-Fi", "Action"])
    assert star_wars.top == word_style("Sci-Fi")[0] and star_wars.motifs[0][0] == "orbits"
    assert abs(sum(w for _, w in star_wars.motifs) - 1.0) < 1e-9
