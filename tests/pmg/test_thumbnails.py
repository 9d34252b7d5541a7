"""``llmrec thumbnails`` end to end on ml-100k: recommended items, keywords traced to the
history, one JSON per image, the gallery; the diffusers and CLIP paths on tiny saved models."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from llmrec.cli import app
from llmrec.pmg.spec import ItemInfo, Keyword
from llmrec.pmg.thumbnails import ThumbnailConfig, ThumbnailMaker, because, top_items
from tests.pmg.tiny_models import save_tiny_clip, save_tiny_stable_diffusion

runner = CliRunner()


def _user_folder(out, user):
    folder = out / f"user-{user}"
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("[0-9]*.json"))]
    return json.loads((folder / "user.json").read_text()), records


def test_cli_writes_thumbnails_traced_keywords_and_a_gallery(tmp_path, ml100k):
    out = tmp_path / "thumbs"
    result = runner.invoke(
        app, ["thumbnails", "--user", "42", "--top", "3", "--alpha", "0.7", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "index.html").is_file() and "gallery:" in result.output
    user, records = _user_folder(out, "42")
    assert len(records) == 3 and "EASE" in user["note"]
    history_items = {h["item_id"] for h in user["history"]}
    seen = set(ml100k.interactions.loc[ml100k.interactions["user_id"] == "42", "item_id"])
    assert history_items <= seen
    for keyword in user["preference_keywords"]:
        assert keyword["sources"], keyword  # every embedding keyword comes from the history
        for source in keyword["sources"]:
            item = user["history"][source["position"]]
            carried = [item["title"], *item["genres"], item["year"][:3] + "0s"]
            carried += list(item["extra"].values())
            assert any(keyword["text"].casefold() in c.casefold() for c in carried), keyword
    for record in records:
        assert record["item"]["item_id"] not in seen  # recommendations are new to the user
        assert record["alpha"] == 0.7 and "scorer" in record["prompts"]
        assert "text" in record["prompts"]["scorer"]  # no CLIP given: said so
        image = Image.open(out / "user-42" / record["image"]["file"])
        assert image.size == (384, 384)


def test_given_items_and_alpha_zero_is_the_same_for_everyone(tmp_path):
    out = tmp_path / "thumbs"
    args = ["thumbnails", "--users", "1,2", "--items", "50,181", "--alpha", "0", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    one = (out / "user-1" / "01-star-wars.png").read_bytes()
    assert one == (out / "user-2" / "01-star-wars.png").read_bytes()


def test_bad_options_fail_cleanly(tmp_path):
    out = str(tmp_path / "t")
    cases = [
        (["--user", "42", "--alpha", "1.5"], "alpha"),
        (["--user", "nobody"], "unknown user"),
        (["--user", "42", "--items", "999999"], "unknown item"),
        (["--user", "42", "--generator", "diffusers"], "--diffusers DIR"),
        (["--user", "42", "--generator", "diffusers", "--diffusers", out], "no such"),
        (["--user", "42", "--keywords", "magic"], "keywords"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["thumbnails", *args, "--out", out])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_a_user_without_history_gets_popular_keywords(ml100k):
    rows = ml100k.interactions[ml100k.interactions["user_id"] != "42"]
    maker = ThumbnailMaker(ml100k, ThumbnailConfig(), interactions=rows)
    user, images = maker.for_user("42", [0])
    assert user.history == () and "no history" in user.note
    assert user.preference_keywords and len(images) == 1


def test_because_names_the_history_items_behind_shared_keywords():
    history = [ItemInfo(i, str(i), f"Film {i}") for i in range(4)]
    preference = [Keyword("Comedy", 1.0, (0, 1)), Keyword("Drama", 0.9, (2, 3, 1))]
    assert because(preference, [Keyword("Drama")], history) == ("Film 1", "Film 2")
    assert because(preference, [Keyword("Horror")], history) == ("Film 1", "Film 0")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return save_tiny_stable_diffusion(root / "sd"), save_tiny_clip(root / "clip")


def test_diffusers_with_clip_best_of_two(tmp_path, tiny_models, ml100k):
    sd, clip = tiny_models
    chosen, scores, _ = top_items(ml100k, ["42"], 1)
    config = ThumbnailConfig(
        generator="diffusers", diffusers=str(sd), clip=str(clip), candidates=2, size=64, steps=2
    )
    user, images = ThumbnailMaker(ml100k, config).for_user("42", chosen[0], scores[0])
    assert images[0].size == (64, 64)
    record = user.items[0]
    assert record.scores["candidate"] in (0.0, 1.0) and "clip" in record.prompts["scorer"]
    assert 0 < record.scores["s_target"] <= 1 and record.scores["ranker"] == scores[0][0]
