from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmrec.datasets import load
from llmrec.errors import DataError
from tests.conftest import SHARED_DATA, write_atomic

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def test_ml100k_is_the_recbole_copy(ml100k):
    assert (ml100k.n_users, ml100k.n_items, len(ml100k.interactions)) == (943, 1682, 100_000)
    assert list(ml100k.interactions.columns[:4]) == ["user_id", "item_id", "rating", "timestamp"]
    assert "recbole" in ml100k.source
    assert ml100k.checksum == load("ml-100k").checksum


def test_ml100k_matches_shared_copy(ml100k):
    shared = load(SHARED_DATA / "ml-100k")
    assert shared.checksum == ml100k.checksum


def test_ml1m_by_name():
    data = load("ml-1m")
    assert (data.n_users, len(data.interactions)) == (6040, 1_000_209)
    assert data.text_columns["genres"] == "genre"
    assert data.users.columns.tolist()[:2] == ["user_id", "age"]


def test_index_maps_and_csr(ml100k):
    idx = ml100k.user_index(["1", "943"])
    assert ml100k.user_ids[idx].tolist() == ["1", "943"]
    matrix = ml100k.user_items()
    assert matrix.shape == (943, 1682) and matrix.nnz == 100_000
    ratings = ml100k.user_items(values="rating")
    row = ml100k.interactions.iloc[0]
    assert ratings[row.user_idx, row.item_idx] == row.rating


def test_unknown_ids_are_named(ml100k):
    with pytest.raises(DataError, match=r"unknown user id.*'nobody'"):
        ml100k.user_index(["1", "nobody"])


def test_unknown_dataset_name():
    with pytest.raises(DataError, match=r"unknown dataset 'no-such-data'.*ml-100k"):
        load("no-such-data")


def test_atomic_folder_and_items_only_in_interactions(tmp_path):
    folder = write_atomic(
        tmp_path,
        "toy",
        INTER + "u1\ti1\t5\t1\nu1\ti2\t3\t2\nu2\ti9\t4\t3\n",
        "item_id:token\ttitle:token_seq\ni1\tAlpha\ni2\tBeta\ni3\tGamma\n",
    )
    data = load(folder)
    assert data.item_ids.tolist() == ["i1", "i2", "i3", "i9"]
    assert data.n_users == 2


def test_duplicate_pairs_keep_the_latest(tmp_path):
    folder = write_atomic(tmp_path, "dup", INTER + "u1\ti1\t2\t10\nu1\ti1\t5\t20\nu1\ti2\t1\t5\n")
    inter = load(folder).interactions
    assert len(inter) == 2
    assert inter.loc[inter.item_id == "i1", "rating"].item() == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user_id\titem_id:token\n1\t2\n", "header column 1 is 'user_id'"),
        ("user_id:token\titem_id:int\n1\t2\n", "unknown type 'int'"),
        (INTER + "1\t2\tfive\t3\n", "'rating' is declared float but line 2 holds 'five'"),
        (INTER + "1\t2\t5\n", "line 2 has 3 tab-separated fields; the header has 4"),
        (INTER + "1\t2\t5\t1\n1\t2\t5\t1\t9\n", "line 3 has 5 tab-separated fields"),
        ("", "empty file"),
    ],
)
def test_malformed_atomic_file(tmp_path, text, message):
    folder = write_atomic(tmp_path, "bad", text)
    with pytest.raises(DataError, match=message) as info:
        load(folder)
    assert "bad.inter" in str(info.value) or "empty" in str(info.value)


def test_missing_id_column(tmp_path):
    folder = write_atomic(tmp_path, "noitem", "user_id:token\trating:float\n1\t5\n")
    with pytest.raises(DataError, match="missing column 'item_id'"):
        load(folder)


def test_empty_interactions(tmp_path):
    folder = write_atomic(tmp_path, "empty", INTER)
    with pytest.raises(DataError, match="interactions table is empty"):
        load(folder)


def test_raw_movielens_100k_folder(tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t4\t100\n2\t10\t3\t200\n1\t20\t5\t300\n")
    genres = ["0"] * 19
    genres[1] = genres[5] = "1"
    (tmp_path / "u.item").write_text(
        "10|Heat (1995)|01-Jan-1995||http://x|" + "|".join(genres) + "\n"
        "20|Fargo (1996)|01-Jan-1996||http://y|" + "|".join(["0"] * 18 + ["1"]) + "\n"
    )
    data = load(tmp_path)
    assert data.n_users == 2 and data.n_items == 2
    heat = data.items.set_index("item_id").loc["10"]
    assert (heat.title, heat.release_year, heat.genres) == ("Heat", "1995", "Action Comedy")


def test_raw_movielens_1m_folder(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::7::5::978300760\n2::7::3::978300761\n")
    (tmp_path / "movies.dat").write_text("7::Sabrina (1995)::Comedy|Romance\n")
    data = load(tmp_path)
    assert data.items.loc[0, "genres"] == "Comedy Romance"
    assert data.items.loc[0, "title"] == "Sabrina"


def test_csv_and_parquet_tables(tmp_path):
    frame = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 6, 5], "timestamp": [1, 2, 3]})
    frame.to_csv(tmp_path / "r.csv", index=False)
    frame.to_parquet(tmp_path / "r.parquet")
    for path in (tmp_path / "r.csv", tmp_path / "r.parquet"):
        data = load(path)
        assert data.n_users == 2 and np.all(data.interactions["rating"] == 1.0)


def test_table_with_bad_rating(tmp_path):
    pd.DataFrame({"user_id": [1], "item_id": [2], "rating": ["x"]}).to_csv(tmp_path / "r.csv")
    with pytest.raises(DataError, match="column 'rating' row 0 is 'x'"):
        load(tmp_path / "r.csv")


def test_preset_yaml(tmp_path):
    folder = write_atomic(
        tmp_path, "toy", INTER + "u1\ti1\t5\t1\n", "item_id:token\tname:token\ni1\tA\n"
    )
    preset = tmp_path / "toy.yaml"
    preset.write_text(f"name: toy\npath: {folder}\ntext_columns: {{title: name}}\n")
    assert load(preset).text_columns == {"title": "name"}
    preset.write_text("name: toy\nbogus: 1\n")
    with pytest.raises(DataError, match="bogus"):
        load(preset)


def test_ids_are_normalised_alike_by_every_reader(tmp_path):
    (tmp_path / "mixed.csv").write_text("user_id,item_id,rating\n196,242,3\n196.0,302,4\n 7 ,5,1\n")
    mixed = load(tmp_path / "mixed.csv")
    assert sorted(mixed.user_ids) == ["196", "7"] and sorted(mixed.item_ids) == ["242", "302", "5"]
    frame = pd.DataFrame({"user_id": [196.0, 7.0], "item_id": [242.0, 5.0], "rating": [3.0, 1.0]})
    frame.to_parquet(tmp_path / "floats.parquet")
    floats = load(tmp_path / "floats.parquet")
    assert list(floats.user_ids) == ["196", "7"] and list(floats.item_ids) == ["242", "5"]
    folder = write_atomic(tmp_path, "spaced", INTER + " 196 \t242\t3\t1\n7\t5\t1\t2\n")
    assert list(load(folder).user_ids) == ["196", "7"]
    assert list(floats.user_index([196, 196.0, " 196", "196"])) == [0, 0, 0, 0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user_id,item_id,rating\n1,2,3\n,5,1\n", "interactions 'user_id': row 1 has an empty"),
        ("user_id,item_id,rating\n1,2,3\n4,5,inf\n", "'rating' row 1 is inf; values must be"),
        ("user_id,item_id,rating\n1,2,-inf\n", "'rating' row 0 is -inf"),
    ],
)
def test_missing_ids_and_infinite_ratings_name_the_row(tmp_path, text, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        load(tmp_path / "bad.csv")


def test_blank_atomic_ids_name_the_row(tmp_path):
    folder = write_atomic(tmp_path, "blank", INTER + "1\t2\t3\t1\n  \t5\t1\t2\n")
    with pytest.raises(DataError, match="'user_id': row 1 has an empty or missing id"):
        load(folder)


def _latin1_atomic(tmp_path):
    folder = write_atomic(tmp_path, "toy", INTER + "u1\ti1\t5\t1\nu2\ti2\t4\t2\n")
    (folder / "toy.item").write_bytes(
        "item_id:token\ttitle:token_seq\ni1\tAmélie\ni2\tBeta\n".encode("latin-1")
    )
    return folder


def test_latin1_atomic_file_is_named_with_line_and_hint(tmp_path):
    folder = _latin1_atomic(tmp_path)
    with pytest.raises(
        DataError, match=r"toy\.item: line 2 is not valid utf-8 \(byte 0xe9.*latin-1"
    ):
        load(folder)
    data = load(folder, encoding="latin-1")
    assert data.items.set_index("item_id").loc["i1", "title"] == "Amélie"


def test_encoding_from_a_preset_and_unknown_encodings(tmp_path):
    folder = _latin1_atomic(tmp_path)
    preset = tmp_path / "toy.yaml"
    preset.write_text(f"name: toy\npath: {folder}\nencoding: latin-1\n")
    assert "Amélie" in load(preset).items["title"].tolist()
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        load(folder, encoding="klingon")


def test_latin1_csv_and_raw_movielens_override(tmp_path):
    (tmp_path / "r.csv").write_bytes("user_id,item_id\nJosé,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"r\.csv: line 2 is not valid utf-8"):
        load(tmp_path / "r.csv")
    assert load(tmp_path / "r.csv", encoding="latin-1").user_ids.tolist() == ["José"]
    ml = tmp_path / "ml"
    ml.mkdir()
    (ml / "ratings.dat").write_text("1::7::5::978300760\n")
    (ml / "movies.dat").write_bytes("7::Amélie (2001)::Comedy\n".encode("latin-1"))
    assert load(ml).items.loc[0, "title"] == "Amélie"  # GroupLens files are Latin-1
    with pytest.raises(DataError, match=r"movies\.dat: line 1 is not valid utf-8"):
        load(ml, encoding="utf-8")
