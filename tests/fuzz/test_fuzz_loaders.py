"""Random ids and damaged files into the dataset readers and the id normalisation.

Ids: every reader (CSV, TSV, Parquet, atomic) and every lookup gives an id the one normal form
(integral numbers without ``.0``, surrounding whitespace stripped); an empty, blank or missing id
is a DataError naming its row. Files: a truncated, bit-flipped, cut, grown or replaced data file
loads (the rows a truncation kept are rows of the file) or is refused with an llmrec error;
reads run in the worker process, so that a crash in pandas or pyarrow fails the test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrec.datasets import load
from llmrec.datasets.dataset import normalize_ids
from llmrec.errors import DataError, LLMRecError
from tests.conftest import write_atomic
from tests.fuzz.conftest import Pair, budget
from tests.fuzz.faults import Damage, damages

# ---- the reference normal form ------------------------------------------------------------


def reference_id(value: object) -> str | None:
    """The id a value stands for, or None for a missing one (spelled out independently of
    llmrec's implementation, from its documented rules)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).strip() or None


SAFE_TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00\t\n\r")
NA_WORDS = {
    "",
    "#n/a",
    "#n/a n/a",
    "#na",
    "-1.#ind",
    "-1.#qnan",
    "-nan",
    "1.#ind",
    "1.#qnan",
    "<na>",
    "n/a",
    "na",
    "null",
    "nan",
    "none",
    "true",
    "false",
}


def _textual(text: str) -> bool:
    """A text id that no CSV reader takes for a number, a boolean or a missing value."""
    stripped = text.strip()
    if stripped.lower() in NA_WORDS or text.lower() in NA_WORDS:
        return False
    try:
        float(stripped)
    except ValueError:
        return True
    return False


PADDING = st.sampled_from(["", " ", "  ", "\u3000", "\xa0", " \x0b"])
TEXT_IDS = st.builds(
    lambda left, core, right: left + core + right,
    PADDING,
    st.text(SAFE_TEXT, min_size=1, max_size=8),
    PADDING,
).filter(_textual)
BLANK_IDS = st.sampled_from(["", " ", "   ", "\u3000"])
INTS = st.integers(min_value=-(2**53), max_value=2**53)
FLOATS = st.one_of(INTS.map(float), st.integers(-(10**6), 10**6).map(lambda n: n / 8))
"""Float ids as tables hold them: integral, or short fractions (a CSV reader's text-to-float
conversion is exact for these, not for every double)."""

ANY_VALUE = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    INTS.map(float),
    st.floats(),
    st.floats(width=32).map(np.float32),
    INTS.map(np.int64),
    st.text(SAFE_TEXT | st.sampled_from("\t\n\r\x00"), max_size=6),
    TEXT_IDS,
    BLANK_IDS,
    st.binary(max_size=6),
    st.booleans(),
    st.sampled_from([None, np.nan, pd.NA]),
)


@budget(5)
@given(values=st.lists(ANY_VALUE, max_size=12), scalar=st.booleans())
def test_normalize_ids_follows_the_rules(values, scalar):
    scalar = scalar and bool(values)
    if scalar:
        values = values[0]
    expected = [reference_id(v) for v in ([values] if scalar else values)]
    if None in expected:
        row = expected.index(None)
        with pytest.raises(DataError, match=rf"'where': row {row} has an empty or missing id"):
            normalize_ids(values, "'where'")
        return
    out = normalize_ids(values, "'where'")
    assert out.dtype == object and all(type(x) is str for x in out)
    assert list(out) == expected


# ---- ids through every reader -------------------------------------------------------------


@st.composite
def id_columns(draw, fmt: str) -> list[object]:
    """A column of user ids as one reader would meet it: one type per column (text, integers,
    floats), sometimes with a blank or missing cell."""
    kinds = ["text", "int"] if fmt == "atomic" else ["text", "int", "float"]
    kind = draw(st.sampled_from(kinds))
    base = {"text": TEXT_IDS, "int": INTS, "float": FLOATS}[kind]
    values = draw(st.lists(base, min_size=1, max_size=8))
    if draw(st.integers(0, 3)) == 0:  # a missing id somewhere
        missing = BLANK_IDS if kind == "text" or fmt == "atomic" else st.just(None)
        values.insert(draw(st.integers(0, len(values))), draw(missing))
    return values


def _write(folder: Path, fmt: str, users: list[object]) -> Path:
    items = [f"i{n}" for n in range(len(users))]
    frame = pd.DataFrame({"user_id": users, "item_id": items, "rating": 1.0})
    if fmt == "atomic":
        header = "user_id:token\titem_id:token\trating:float\n"
        lines = "".join(f"{u}\t{i}\t1\n" for u, i in zip(users, items, strict=True))
        return write_atomic(folder, "toy", header + lines)
    path = folder / f"ratings.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, sep="\t" if fmt == "tsv" else ",")
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "atomic"])
@budget(1)
@given(data=st.data())
def test_every_reader_normalises_ids_alike(scratch, fmt, data):
    _check_reader(scratch, fmt, data.draw(id_columns(fmt), label="user ids"))


FOUND = [
    ("csv", [9007199254740991.0]),  # read back as 9007199254740990
    ("csv", [9007199254740991, 9007199254740991.0]),
]
"""Ids the fuzzer found mishandled, replayed on every run."""


@pytest.mark.parametrize(("fmt", "users"), FOUND)
def test_ids_found_by_fuzzing(scratch, fmt, users):
    _check_reader(scratch, fmt, users)


def _check_reader(scratch, fmt: str, users: list[object]) -> None:
    expected = [reference_id(u) for u in users]
    with scratch() as root:
        path = _write(root, fmt, users)
        if None in expected:
            row = expected.index(None)
            with pytest.raises(DataError, match=rf"'user_id': row {row} has an empty or missing"):
                load(path)
            return
        found = load(path)
    assert list(found.user_ids) == list(dict.fromkeys(expected))
    assert list(found.interactions["user_id"]) == expected
    # Any spelling of a known id finds it: the number, the padded text, the float.
    for value, canonical in zip(users, expected, strict=True):
        spellings = [value, f" {canonical} ", canonical]
        if isinstance(value, int | float) and float(value).is_integer():
            spellings += [float(value), np.int64(int(value))]
        position = found.user_index([canonical])[0]
        assert list(found.user_index(spellings)) == [position] * len(spellings)


# ---- damaged data files -------------------------------------------------------------------

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
ROWS = [("1", "10", 4.0, 100.0), ("1", "20", 5.0, 101.0), ("2", "10", 3.0, 102.0)]
ROWS += [("2", "30", 1.0, 103.0), ("3", "20", 2.0, 104.0), ("14", "30", 5.0, 105.0)]
GENRES = "|".join(["0"] * 19)


def _sources(root: Path) -> dict[str, tuple[Path, str]]:
    """One small valid dataset per reader: ``{name: (what to load, the file to damage)}``."""
    body = "".join(f"{u}\t{i}\t{int(r)}\t{int(t)}\n" for u, i, r, t in ROWS)
    atomic = write_atomic(
        root,
        "toy",
        INTER + body,
        "item_id:token\ttitle:token_seq\n10\tHeat\n20\tFargo\n30\tAlien\n",
    )
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "rating", "timestamp"])
    frame.to_csv(root / "r.csv", index=False)
    frame.to_csv(root / "r.tsv", index=False, sep="\t")
    frame.astype({"user_id": int, "item_id": int}).to_parquet(root / "r.parquet", index=False)
    ml100k = root / "ml100k"
    ml100k.mkdir()
    (ml100k / "u.data").write_text(body)
    (ml100k / "u.item").write_bytes(
        b"10|Heat (1995)|01-Jan-1995||http://x|" + GENRES.encode() + b"\n"
        b"20|Fargo (1996)|01-Jan-1996||http://y|" + GENRES.encode() + b"\n"
        b"30|Alien (1979)|01-Jan-1979||http://z|" + GENRES.encode() + b"\n"
    )
    ml1m = root / "ml1m"
    ml1m.mkdir()
    (ml1m / "ratings.dat").write_text(
        "".join(f"{u}::{i}::{int(r)}::{int(t)}\n" for u, i, r, t in ROWS)
    )
    (ml1m / "movies.dat").write_bytes(
        b"10::Heat (1995)::Action|Crime\n20::Fargo (1996)::Crime\n30::Alien (1979)::Horror\n"
    )
    return {
        "atomic-inter": (atomic, atomic / "toy.inter"),
        "atomic-item": (atomic, atomic / "toy.item"),
        "csv": (root / "r.csv", root / "r.csv"),
        "tsv": (root / "r.tsv", root / "r.tsv"),
        "parquet": (root / "r.parquet", root / "r.parquet"),
        "ml100k-data": (ml100k, ml100k / "u.data"),
        "ml100k-item": (ml100k, ml100k / "u.item"),
        "ml1m-ratings": (ml1m, ml1m / "ratings.dat"),
        "ml1m-movies": (ml1m, ml1m / "movies.dat"),
    }


@pytest.fixture(scope="session")
def pristine(tmp_path_factory, worker) -> dict[str, dict]:
    """What the worker reads from each undamaged source."""
    sources = _sources(tmp_path_factory.mktemp("sources"))
    out = {}
    for name, (target, _) in sources.items():
        answer = worker.call("dataset", path=str(target), encoding=None)
        assert answer["ok"], answer
        out[name] = answer["result"]
    return out


REPLACE = st.builds(Damage, how=st.just("replace"), part=st.just("-"), data=st.binary(max_size=64))


@pytest.mark.parametrize(
    "source",
    [
        "atomic-inter",
        "atomic-item",
        "csv",
        "tsv",
        "parquet",
        "ml100k-data",
        "ml100k-item",
        "ml1m-ratings",
        "ml1m-movies",
    ],
)
@budget(1)
@given(damage=st.lists(damages(["-"], swap=False) | REPLACE, min_size=1, max_size=3))
def test_damaged_data_files_load_or_are_refused(worker, scratch, pristine, source, damage):
    with scratch() as root:
        sources = _sources(root)
        target, file = sources[source]
        for one in damage:
            one.apply(file.parent, part=file.name)
        answer = worker.call("dataset", path=str(target), encoding=None)
    if not answer["ok"]:
        assert answer["llmrec"], f"{damage}: {answer['type']}\n{answer['traceback']}"
        return
    result = answer["result"]
    for name in result["users"] + result["items"]:
        assert name and name == name.strip(), f"{damage}: id {name!r} is not normalised"
    assert result["ratings_finite"], f"{damage}: a non-finite rating was loaded"
    if all(d.how == "truncate" for d in damage):
        # A truncated file keeps a prefix of its rows (the last one possibly cut short).
        rows = result["rows"]
        original = pristine[source]["rows"]
        assert len(rows) <= len(original), damage
        assert rows[:-1] == original[: len(rows) - 1], damage


# ---- ids into a fitted model --------------------------------------------------------------


@pytest.fixture(scope="session")
def served(model_pair: Pair):
    from llmrec import Recommender

    return Recommender.load(model_pair.a, check_encoder=False)


KNOWN_USERS = [f"u{n}" for n in range(40)]
KNOWN_ITEMS = [f"i{n}" for n in range(30)]
USER = st.one_of(
    st.sampled_from(KNOWN_USERS),
    st.just("stranger"),
    st.builds(lambda p, u, q: p + u + q, PADDING, st.sampled_from(KNOWN_USERS), PADDING),
    TEXT_IDS,
    INTS,
    BLANK_IDS,
    st.sampled_from([None, np.nan]),
)
K = st.one_of(st.integers(-2, 40), st.sampled_from([5.0, "5", True, None, np.int64(3)]))


@budget(1)
@given(
    users=st.lists(USER, min_size=1, max_size=5),
    history=st.lists(st.sampled_from(KNOWN_ITEMS) | TEXT_IDS | INTS, max_size=4),
    k=K,
)
def test_recommend_with_random_ids(served, users, history, k):
    names = [reference_id(u) for u in users]
    histories = {"stranger": history}
    try:
        ids, scores = served.recommend(users, k=k, histories=histories)
    except LLMRecError as exc:  # every refusal is an llmrec error (tests/test_errors.py)
        if "k must be" in str(exc):
            return
        missing = None in names
        # The history is read only for a user it serves: "stranger", when asked for.
        bad_history = any(reference_id(h) not in KNOWN_ITEMS for h in history)
        assert missing or ("stranger" in names and bad_history), f"{users}, {history}: {exc}"
        return
    valid_k = isinstance(k, int | np.integer) and not isinstance(k, bool) and 1 <= k <= 30
    assert valid_k and None not in names, f"{users}, k={k!r}: accepted"
    assert ids.shape == scores.shape == (len(users), k)
    for name, row, how in zip(names, ids, served.served_by_, strict=True):
        if name in KNOWN_USERS:
            assert how == "model", (name, how)
        else:
            assert how == ("history" if name == "stranger" and history else "cold"), (name, how)
        assert set(row) <= {*KNOWN_ITEMS, None}
    # The same request spelled with the normal ids gets the same answer.
    plain, plain_scores = served.recommend(names, k=k, histories=histories)
    assert (plain == ids).all() and np.array_equal(plain_scores, scores), users
