from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from llmrec.artifacts import open_artifact
from llmrec.datasets import Dataset
from llmrec.errors import ArtifactError, ConfigError, DataError
from llmrec.pmg.card import CardGenerator
from llmrec.pmg.gallery import (
    KIND,
    ItemThumbnail,
    UserThumbnails,
    read_user_folder,
    slug,
    user_folder_name,
    user_page,
    write_gallery,
    write_user_thumbnails,
)
from llmrec.pmg.spec import ItemInfo, Keyword, ThumbnailSpec

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "experiments" / "pmg" / "gallery-screenshot.png"
NOTE = "no history: popular keywords <b>&</b>"


def _info(ds: Dataset, item_id: str) -> ItemInfo:
    items = ds.items.reset_index(drop=True)
    row = items.index[items["item_id"] == item_id][0]
    record = items.loc[row]
    genres = tuple(str(record["class"]).split()) if isinstance(record["class"], str) else ()
    year = str(record["release_year"]) if str(record["release_year"]) != "nan" else ""
    return ItemInfo(int(row), item_id, str(record["movie_title"]), year, genres)


def _history(ds: Dataset, user_id: str, n: int = 6) -> tuple[ItemInfo, ...]:
    inter = ds.interactions[ds.interactions["user_id"] == user_id]
    newest = inter.sort_values("timestamp", ascending=False)["item_id"].head(n)
    return tuple(_info(ds, i) for i in newest)


def _user(
    ds: Dataset, user_id: str, recs: list[str], prefs: list[tuple[str, float, tuple[int, ...]]]
) -> UserThumbnails:
    history = _history(ds, user_id) if prefs and prefs[0][2] else ()
    keywords = tuple(Keyword(t, s, src) for t, s, src in prefs)
    items = []
    for rank, (item_id, alpha) in enumerate(zip(recs, (0.3, 0.6, 0.9), strict=False)):
        info = _info(ds, item_id)
        targets = tuple(Keyword(g.lower(), 1.0 - 0.1 * i) for i, g in enumerate(info.genres[:2]))
        because = tuple(dict.fromkeys(history[p].title for p in keywords[0].sources))
        spec = ThumbnailSpec(info, targets, keywords[:3], alpha, because, seed=7)
        items.append(
            ItemThumbnail(
                spec,
                prompts={"prompt": f"a poster of {info.title}, {keywords[0].text}"},
                scores={"ranker": 1.0 / (rank + 1), "clip_target": 0.25},
            )
        )
    text = "; ".join(f"{h.title} ({h.year})" for h in history)
    return UserThumbnails(
        user_id, history, text, keywords, "manual", "card", tuple(items), "" if history else NOTE
    )


@pytest.fixture(scope="module")
def users(ml100k: Dataset) -> list[UserThumbnails]:
    return [
        _user(ml100k, "1", ["50", "183", "100"], [("space", 0.9, (0, 2)), ("crime", 0.6, (1,))]),
        _user(ml100k, "13", ["1", "69", "423"], [("comedy", 0.8, (0,)), ("romance", 0.5, (3, 4))]),
        _user(ml100k, "405", ["313", "286"], [("drama", 0.7, ()), ("war", 0.4, ())]),
    ]


@pytest.fixture(scope="module")
def gallery(users, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("thumbnails")
    generator = CardGenerator(256)
    for user in users:
        write_user_thumbnails(root, user, generator.generate([i.spec for i in user.items]))
    write_gallery(root)
    return root


def test_user_folder_holds_the_thumbnails_and_their_records(gallery, users):
    user = users[0]
    folder = gallery / "user-1"
    assert open_artifact(folder, KIND)["user_id"] == "1"
    names = sorted(p.name for p in folder.iterdir())
    stems = ["01-star-wars", "02-alien", "03-fargo"]
    files = [f"{stem}.{ext}" for stem in stems for ext in ("png", "json")]
    assert names == sorted(["artifact.json", "index.html", "user.json", *files])
    summary, records = read_user_folder(folder)
    assert [h["title"] for h in summary["history"]] == [h.title for h in user.history]
    assert summary["note"] == "" and summary["keyword_backend"] == "manual"
    space = summary["preference_keywords"][0]
    assert space["text"] == "space" and [s["title"] for s in space["sources"]] == [
        user.history[0].title,
        user.history[2].title,
    ]
    first = records[0]
    assert first["item"]["title"] == "Star Wars" and first["item"]["item_id"] == "50"
    assert first["user_id"] == "1" and first["history_text"] == user.history_text
    assert first["target_keywords"][0] == {"text": "action", "score": 1.0}
    assert first["preference_keywords"][0]["sources"] == space["sources"]
    assert first["prompts"] == {"prompt": "a poster of Star Wars, space"}
    assert first["alpha"] == 0.3 and first["seed"] == 7 and first["generator"] == "card"
    assert first["scores"] == {"ranker": 1.0, "clip_target": 0.25}
    assert first["explanation"].startswith(f"Because you liked {user.history[0].title}")
    with Image.open(folder / first["image"]["file"]) as image:
        assert image.size == (256, 256) == (first["image"]["width"], first["image"]["height"])
    empty, _ = read_user_folder(gallery / "user-405")
    assert empty["history"] == [] and empty["note"] == NOTE
    assert empty["preference_keywords"][0]["sources"] == []


def test_writing_again_replaces_only_our_own_folder(tmp_path, users):
    user = users[1]
    images = CardGenerator(64).generate([i.spec for i in user.items])
    folder = write_user_thumbnails(tmp_path, user, images)
    assert write_user_thumbnails(tmp_path, user, images) == folder
    (folder / "mine.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match="did not write"):
        write_user_thumbnails(tmp_path, user, images)
    write_user_thumbnails(tmp_path, user, images, overwrite=True)
    assert not (folder / "mine.txt").exists()
    with pytest.raises(ConfigError, match="3 items but 2 images"):
        write_user_thumbnails(tmp_path, user, images[:2])
    bad = UserThumbnails("x", (), "", (Keyword("k", 1.0, (4,)),), "manual", "card", ())
    with pytest.raises(DataError, match="history position 4"):
        write_user_thumbnails(tmp_path, bad, [])


def test_names_are_safe():
    assert slug("Amélie (2001): Le Fabuleux Destin!") == "amelie-2001-le-fabuleux-destin"
    assert slug("七人の侍") == ""
    assert user_folder_name("196") == "user-196"
    odd = user_folder_name("../a b")
    assert odd.startswith("user-a_b-") and "/" not in odd
    assert user_folder_name("a/b") != user_folder_name("a?b")


def test_gallery_pages_escape_text_and_stay_offline(gallery, users):
    index = (gallery / "index.html").read_text(encoding="utf-8")
    assert re.findall(r'<a class="user" href="([^"]+)"', index) == [
        "user-1/index.html",
        "user-13/index.html",
        "user-405/index.html",
    ]
    page = (gallery / "user-405" / "index.html").read_text(encoding="utf-8")
    assert "no history: popular keywords &lt;b&gt;&amp;&lt;/b&gt;" in page and "<b>&" not in page
    for html in [index, *(p.read_text() for p in gallery.glob("user-*/index.html"))]:
        assert "<script" not in html and "http:" not in html and "https:" not in html
    page = (gallery / "user-1" / "index.html").read_text(encoding="utf-8")
    sources = "; ".join([users[0].history[0].title, users[0].history[2].title])
    assert f'title="From: {sources}' in page.replace("&#x27;", "'")


def test_pages_show_what_the_records_say_and_nothing_else():
    record = {
        "rank": 1,
        "item": {"title": 'Evil <img src="x"> "Title"', "year": "1999"},
        "image": {"file": "../../elsewhere/<b>.png", "width": 64, "height": 64},
        "target_keywords": [{"text": "<i>", "score": 1.0}, "not a keyword"],
        "scores": {"ranker": 0.5, "note": "text is left out"},
        "prompts": {"prompt": "</dd><script>"},
        "explanation": "Because you liked <Jaws>",
    }
    page = user_page({"user_id": "<u>", "history": [{"title": "Jaws & co"}]}, [record])
    assert 'src="&lt;b&gt;.png"' in page and "elsewhere" not in page
    assert "Evil &lt;img src=&quot;x&quot;&gt; &quot;Title&quot;" in page
    assert "&lt;/dd&gt;&lt;script&gt;" in page and "<script" not in page
    assert "User &lt;u&gt;" in page and "Jaws &amp; co" in page and "text is left out" not in page
    assert "<th>ranker</th><td>0.5</td>" in page


def test_gallery_rebuilds_from_the_json_files_alone(gallery, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(gallery, copy)
    (copy / "index.html").unlink()
    (copy / "notes").mkdir()  # not a thumbnails folder: left out
    record = copy / "user-13" / "01-toy-story.json"
    data = json.loads(record.read_text())
    data["item"]["title"] = "Toy Story (edited)"
    record.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=r"01-toy-story\.json does not match"):
        write_gallery(copy)
    shutil.rmtree(copy / "user-13")
    shutil.copytree(gallery / "user-13", copy / "user-13")
    page = copy / "user-1" / "index.html"
    page_before = page.read_text()
    write_gallery(copy)
    assert (copy / "index.html").read_text() == (gallery / "index.html").read_text()
    assert page.read_text() == page_before and open_artifact(copy / "user-1", KIND)
    with pytest.raises(DataError, match="no thumbnails folder"):
        write_gallery(tmp_path / "missing")


class _Server:
    """The gallery over HTTP on a free localhost port, recording (path, status) per request."""

    def __init__(self, root: Path) -> None:
        self.requests: list[tuple[str, int]] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                server.requests.append((self.path, int(code)))

        handler = functools.partial(Handler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _chromium(profile: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--window-size=1280,1600", *args, url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is not installed (apt-get install chromium); CI runs this test",
)
def test_gallery_in_a_headless_browser(gallery, tmp_path):
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: .ci/run installs it"
    with _Server(gallery) as server:
        pages = ["/index.html", "/user-1/index.html", "/user-13/index.html", "/user-405/index.html"]
        for n, page in enumerate(pages):
            dom = _chromium(tmp_path / f"profile-{n}", server.url + page, "--dump-dom").stdout
            assert "</main>" in dom and "<script" not in dom
            folder = (gallery / page.lstrip("/")).parent
            images = re.findall(r'<img src="([^"]+)"', dom)
            assert len(images) == (8 if page == "/index.html" else 3 - (page == pages[3]))
            for src in images:
                assert (folder / src).is_file(), src
                served = (f"/{folder.relative_to(gallery) / src}").replace("/./", "/")
                assert (served, 200) in server.requests, (served, server.requests)
        shot = tmp_path / "user-13.png"
        _chromium(tmp_path / "profile-shot", server.url + pages[2], f"--screenshot={shot}")
    assert not [r for r in server.requests if r[1] != 200]
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[:2] == (1600, 1280)
    assert pixels.std() > 20  # not a blank page
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 500  # thumbnails, not flat CSS
    if os.environ.get("LLMREC_SAVE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
