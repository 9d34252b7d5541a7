from __future__ import annotations

import sqlite3
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from llmrec.cli import app
from llmrec.datasets import item_text, load, render_item
from llmrec.datasets.enrich import enrich_items, read_table
from llmrec.datasets.knowledge import bokeh_movies, leading_names, split_names
from llmrec.datasets.titles import front_article, match_key, normalize_title, title_variants
from llmrec.errors import ConfigError, DataError
from tests.conftest import SHARED_DATA

NAIVE_ML100K_MATCHES = 1250
"""Items of ml-100k that a plain lowercase title + year join finds in bokeh-movies."""


def _items(*rows: tuple[str, object]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [str(i) for i in range(1, len(rows) + 1)],
            "title": [t for t, _ in rows],
            "year": [y for _, y in rows],
        }
    )


TABLE = pd.DataFrame(
    {
        "Title": [
            "The Shawshank Redemption",
            "Les Misérables",
            "La Haine",
            "Seven",
            "L'Avventura",
            "Star Wars: Episode IV – A New Hope",
            "Police Academy 5: Assignment Miami Beach",
            "Three Colours: Red",
        ],
        "Year": [1994, 1995, 1995, 1995, 1960, 1977, 1988, 1994],
        "Director": [
            "Frank Darabont",
            "Claude Lelouch",
            "Mathieu Kassovitz",
            "David Fincher",
            "Michelangelo Antonioni",
            "George Lucas",
            "Alan Myerson",
            "Krzysztof Kieślowski",
        ],
        "Runtime": [142.0, 175.0, np.nan, 127.0, 143.0, 121.0, 90.0, 99.0],
    }
)
COLUMNS = {"Director": "director", "Runtime": "runtime"}


def _enrich(items: pd.DataFrame, table: pd.DataFrame = TABLE, **kwargs):
    return enrich_items(
        items,
        table,
        columns=COLUMNS,
        table_title="Title",
        table_year="Year",
        source="films",
        **kwargs,
    )


def test_title_normalisation():
    assert front_article("Shawshank Redemption, The") == "The Shawshank Redemption"
    assert front_article("Misérables, Les") == "Les Misérables"
    assert front_article("Avventura, L'") == "L'Avventura"
    assert front_article("Godfather, The: Part II") == "The Godfather: Part II"
    assert front_article("Sex, Lies, and Videotape") == "Sex, Lies, and Videotape"
    assert normalize_title("Misérables, Les") == "les miserables"
    assert normalize_title("Monty Python’s Life of Brian") == "monty pythons life of brian"
    assert match_key("The Karate Kid Part III") == match_key("Karate Kid III, The")
    assert match_key("Twelve Monkeys") == match_key("12 Monkeys")
    assert match_key("8½") == match_key("8 1/2")
    assert match_key("M*A*S*H") == "mash"
    keys, year = title_variants("City of Lost Children, The (Cité des enfants perdus, La) (1995)")
    assert year == 1995
    assert ("city of lost children", 0) in keys and ("la cite des enfants perdus", 1) in keys
    assert title_variants("Faust (2011 film)")[0][0] == ("faust", 0)
    assert ("star wars", 2) in title_variants("Star Wars: Episode IV – A New Hope")[0]


def test_enrich_by_title_and_year():
    items = _items(
        ("Shawshank Redemption, The", 1994),  # trailing article
        ("Misérables, Les", "1995"),  # accents, French article, year as text
        ("Hate (Haine, La)", 1995),  # alternate title in parentheses
        ("Seven (Se7en) (1995)", None),  # year in the title
        ("Avventura, L'", 1961),  # one year off
        ("Star Wars", 1977),  # the table adds a subtitle
        ("Police Academy 4: Citizens on Patrol", 1987),  # a sequel is not a typo
        ("Three Colors: Red", 1994),  # fuzzy
        ("Unknown Film", 1990),
    )
    enriched, report = _enrich(items)
    assert enriched["director"].tolist() == [
        "Frank Darabont",
        "Claude Lelouch",
        "Mathieu Kassovitz",
        "David Fincher",
        "Michelangelo Antonioni",
        "George Lucas",
        "",
        "Krzysztof Kieślowski",
        "",
    ]
    assert str(enriched["runtime"].dtype) == "Int64"
    assert enriched["runtime"].iloc[0] == 142 and enriched["runtime"].isna().sum() == 3
    assert (report.n_items, report.n_matched, report.n_exact, report.n_fuzzy) == (9, 7, 6, 1)
    assert report.match_rate == pytest.approx(7 / 9)
    assert report.unmatched_examples == ["Police Academy 4: Citizens on Patrol", "Unknown Film"]
    assert report.fuzzy_examples == ["Three Colors: Red -> Three Colours: Red (0.96)"]
    assert "7/9 items matched (77.8%; 6 exact, 1 fuzzy" in report.summary()
    assert list(enriched.columns[:3]) == ["item_id", "title", "year"]
    assert enriched.index.equals(items.index)


def test_year_window_and_fuzzy_off():
    items = _items(("Avventura, L'", 1962), ("Three Colors: Red", 1994))
    with pytest.raises(DataError, match="no item matched a row of films"):
        _enrich(items, fuzzy=None)
    _, report = _enrich(items, year_tolerance=2, fuzzy=None)
    assert (report.n_exact, report.n_fuzzy) == (1, 0)


def test_duplicates_are_reported():
    table = pd.DataFrame(
        {"Title": ["Rage", "Rage", "Heat"], "Year": [2009, 2009, 1995], "Director": ["A", "B", "C"]}
    )
    items = _items(("Rage", 2009), ("Heat", 1995), ("Heat", 1995))
    enriched, report = enrich_items(
        items, table, columns={"Director": "director"}, table_title="Title", table_year="Year"
    )
    assert enriched["director"].tolist() == ["A", "C", "C"]
    assert (report.n_ambiguous, report.n_shared_rows) == (1, 1)
    assert report.ambiguous_examples == ["Rage -> Rage (+1 tied)"]


def test_exact_key_join():
    items = pd.DataFrame({"item_id": ["1", "2", "3"], "imdb": [10.0, 20.0, np.nan]})
    table = pd.DataFrame({"imdb_id": ["10", "10", "30"], "plot": ["A heist.", "dup", "x"]})
    enriched, report = enrich_items(
        items, table, columns={"plot": "description"}, on=("imdb", "imdb_id")
    )
    assert enriched["description"].tolist() == ["A heist.", "", ""]
    assert (report.n_matched, report.n_exact, report.n_ambiguous) == (1, 1, 1)
    with pytest.raises(DataError, match=r"no item matched.*key 'item_id'"):
        enrich_items(items, table.rename(columns={"imdb_id": "item_id"}), columns={}, on="item_id")


def test_errors_name_tables_and_columns(tmp_path):
    items = _items(("Heat", 1995))
    missing = r"films: no column\(s\) \['Name', 'year'\]; its columns are \['Title', 'Year'"
    with pytest.raises(DataError, match=missing):
        enrich_items(items, TABLE, columns=COLUMNS, table_title="Name", source="films")
    with pytest.raises(DataError, match=r"items table: no column\(s\) \['name'\]"):
        _enrich(items, title_column="name")
    with pytest.raises(DataError, match=r"table: no column\(s\) \['Plot'\]"):
        enrich_items(items, TABLE, columns={"Plot": "plot"}, table_title="Title", table_year="Year")
    with pytest.raises(DataError, match=r"no item matched a row of films \(8 rows\).*'Heat'"):
        _enrich(items)
    with pytest.raises(DataError, match="no such table file"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="is a folder, not a table file"):
        read_table(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported table file"):
        read_table(tmp_path / "notes.txt")
    (tmp_path / "broken.db").write_text("this is not a database, but long enough to look like one")
    with pytest.raises(DataError, match="cannot read SQLite database"):
        read_table(tmp_path / "broken.db", "films")


def test_new_column_clash():
    items = _items(("Heat", 1995)).assign(director="x")
    with pytest.raises(DataError, match=r"item column\(s\) \['director'\] already exist"):
        _enrich(items)


def test_read_table_formats(tmp_path):
    frame = pd.DataFrame({"title": ["Heat", "Ran"], "year": [1995, 1985]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    with sqlite3.connect(tmp_path / "t.db") as db:
        frame.to_sql("films", db, index=False)
        frame.to_sql("other", db, index=False)
    for name, table in (("t.csv", None), ("t.tsv", None), ("t.parquet", None), ("t.db", "films")):
        assert read_table(tmp_path / name, table).equals(frame), name
    with pytest.raises(DataError, match=r"no SQLite table 'movies'; tables: \['films', 'other'\]"):
        read_table(tmp_path / "t.db", "movies")
    with pytest.raises(DataError, match="name the SQLite table"):
        read_table(tmp_path / "t.db")
    with pytest.raises(DataError, match="applies only to SQLite"):
        read_table(tmp_path / "t.csv", "films")


def test_names():
    assert split_names("Sammy Davis, Jr., Dean Martin, ") == ["Sammy Davis, Jr.", "Dean Martin"]
    assert split_names(None) == []
    cast = pd.Series(["Ann, Bob, Cy", "Cy, Dee", "Cy, Bob", None])
    assert leading_names(cast, 2).tolist() == ["Cy, Bob", "Cy, Dee", "Cy, Bob", ""]


def test_render_item_with_knowledge():
    line = render_item(
        "Toy Story",
        1995,
        "Animation Children's Comedy",
        {
            "director": "John Lasseter",
            "cast": ["Tom Hanks", "Tim Allen"],
            "writer": "",
            "country": "United States",
            "language": np.nan,
            "runtime": 81,
            "description": "Toys come to life",
        },
    )
    assert line == (
        "Toy Story (1995). Genres: Animation, Children's, Comedy. Director: John Lasseter. "
        "Cast: Tom Hanks, Tim Allen. Country: United States. Runtime: 81 min. Toys come to life."
    )
    assert render_item("Heat", 1995, None, {"cast": "Sammy Davis, Jr.", "runtime": pd.NA}) == (
        "Heat (1995). Cast: Sammy Davis, Jr."
    )
    assert render_item("Heat", 1995, None, {}) == render_item("Heat", 1995) == "Heat (1995)."


def test_item_text_finds_knowledge_columns():
    items = pd.DataFrame(
        {
            "item_id": ["1", "2"],
            "name": ["Heat", "Ran"],
            "year": [1995, 1985],
            "director": ["Michael Mann", ""],
            "minutes": pd.array([170, None], dtype="Int64"),
            "description": ["", "A warlord divides his realm."],
        }
    )
    text = item_text(items, {"title": "name", "runtime": "minutes"})
    assert text.tolist() == [
        "Heat (1995). Director: Michael Mann. Runtime: 170 min.",
        "Ran (1985). A warlord divides his realm.",
    ]


@pytest.fixture(scope="module")
def ml100k_enriched():
    return load("ml-100k-enriched")


def test_ml100k_with_bokeh_movies(ml100k, ml100k_enriched):
    report = ml100k_enriched.metadata["enrichment"]
    print(f"\nml-100k x bokeh-movies: {report['summary']}")
    assert report["n_items"] == 1682
    assert report["n_matched"] > NAIVE_ML100K_MATCHES + 120  # naive: 1,250 (74%); now ~84%
    assert report["n_exact"] > 1350 and report["n_fuzzy"] > 0
    assert report["table_checksum"] and report["columns"]["Cast"] == "cast"
    items = ml100k_enriched.items.set_index("movie_title")
    assert items.loc["Seven (Se7en)", "director"] == "David Fincher"
    assert items.loc["City of Lost Children, The", "director"] == "Jean-Pierre Jeunet, Marc Caro"
    assert items.loc["Shawshank Redemption, The", "cast"].startswith("Morgan Freeman, Tim Robbins")
    assert items.loc["Shawshank Redemption, The", "runtime"] == 142
    text = item_text(ml100k_enriched.items, ml100k_enriched.text_columns)
    assert text.iloc[0].startswith(
        "Toy Story (1995). Genres: Animation, Children's, Comedy. Director: John Lasseter. "
    )
    assert not text.str.contains(r"\bnan\b|<NA>", regex=True).any()
    assert ml100k_enriched.name == "ml-100k-enriched"
    assert ml100k_enriched.checksum != ml100k.checksum
    assert ml100k_enriched.interactions is not None and ml100k_enriched.n_items == 1682
    # the plain preset is unchanged
    assert "director" not in ml100k.items.columns
    assert item_text(ml100k.items, ml100k.text_columns).iloc[0] == (
        "Toy Story (1995). Genres: Animation, Children's, Comedy."
    )
    assert ml100k_enriched.describe()["enrichment"]["match_rate"] == report["match_rate"]


@pytest.mark.skipif(not (SHARED_DATA / "ml-1m").exists(), reason="ml-1m is not in ../shared/data")
def test_ml1m_with_bokeh_movies():
    data = load("ml-1m-enriched")
    report = data.metadata["enrichment"]
    print(f"\nml-1m x bokeh-movies: {report['summary']}")
    assert report["n_items"] == 3883 and report["match_rate"] > 0.78


def test_load_with_enrich_argument(tmp_path, ml100k):
    table = pd.DataFrame(
        {"name": ["GoldenEye", "Four Rooms"], "year": [1995, 1995], "plot": ["Bond.", "Hotel."]}
    )
    table.to_csv(tmp_path / "plots.csv", index=False)
    spec = {"table": str(tmp_path / "plots.csv"), "table_title": "name", "columns": {"plot": "d"}}
    data = load("ml-100k", enrich=spec)
    assert data.items["d"].tolist()[:4] == ["", "Bond.", "Hotel.", ""]
    assert data.metadata["enrichment"]["n_matched"] == 2
    assert data.checksum not in (
        ml100k.checksum,
        load("ml-100k", enrich={**spec, "fuzzy": 1}).checksum,
    )
    with pytest.raises(ConfigError, match="unknown source 'nope'"):
        load("ml-100k", enrich="nope")
    with pytest.raises(ConfigError, match="name the table columns"):
        load("ml-100k", enrich={"table": str(tmp_path / "plots.csv")})
    with pytest.raises(DataError, match=r"plots.csv: no column\(s\) \['title'\]"):
        load("ml-100k", enrich={"table": str(tmp_path / "plots.csv"), "columns": {"plot": "d"}})


def test_preset_with_enrich_mapping(tmp_path):
    pd.DataFrame({"title": ["GoldenEye"], "year": [1995], "Director": ["Martin Campbell"]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    preset = tmp_path / "mine.yaml"
    preset.write_text(
        f"name: mine\nbase: ml-100k\nenrich: {{table: {tmp_path / 't.csv'}, "
        "columns: {Director: director}}\n"
    )
    data = load(preset)
    assert data.name == "mine" and data.items["director"].iloc[1] == "Martin Campbell"
    preset.write_text("name: mine\nbase: ml-100k\npath: x\n")
    with pytest.raises(DataError, match="give path or base"):
        load(preset)


def test_bokeh_movies_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "bokeh_sampledata.movies_data", None)
    with pytest.raises(ConfigError, match="pip install bokeh-sampledata"):
        bokeh_movies()


def test_bokeh_movies_table():
    table = bokeh_movies()
    assert len(table) == 17_472
    assert {"Title", "Year", "Director", "Cast", "Runtime"} <= set(table.columns)


def test_cli_data_enrich(tmp_path):
    runner = CliRunner()
    table = tmp_path / "films.csv"
    pd.DataFrame(
        {"Name": ["GoldenEye", "Toy Story"], "Released": [1995, 1995], "By": ["Campbell", "J L"]}
    ).to_csv(table, index=False)
    out = tmp_path / "items.parquet"
    args = ["data", "enrich", "--dataset", "ml-100k", "--table", str(table), "--out", str(out)]
    args += ["--title-column", "Name", "--year-column", "Released", "--columns", "By=director"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2/1,682 items matched" in " ".join(result.output.split())
    written = pd.read_parquet(out)
    assert written["director"].tolist()[:3] == ["J L", "Campbell", ""]
    assert written.attrs["llmrec"]["report"]["n_matched"] == 2
    result = runner.invoke(app, args)  # llmrec's own file: replaced
    assert result.exit_code == 0, result.output
    foreign = tmp_path / "thesis.parquet"
    foreign.write_text("years of work")
    bad = [*args[:-8], "--out", str(foreign), *args[-6:]]
    result = runner.invoke(app, bad)
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert foreign.read_text() == "years of work"
    result = runner.invoke(app, [*bad, "--overwrite"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, [*args[:-2], "--columns", "Plot=plot"])
    assert result.exit_code == 2 and "no column(s) ['Plot']" in " ".join(result.output.split())
    result = runner.invoke(app, ["data", "enrich", "--out", str(out)])
    assert result.exit_code == 2 and "give a named source" in result.output


def test_cli_data_enrich_bokeh_movies(tmp_path):
    out = tmp_path / "ml100k.parquet"
    result = CliRunner().invoke(
        app,
        ["data", "enrich", "--dataset", "ml-100k", "--source", "bokeh-movies", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "bokeh-movies: 1,4" in output and "/1,682 items matched" in output
    assert pd.read_parquet(out)["director"].iloc[0] == "John Lasseter"


def test_cli_describe_shows_match_rate():
    result = CliRunner().invoke(app, ["data", "describe", "ml-100k-enriched"])
    assert result.exit_code == 0, result.output
    assert "match_rate" in result.output and "items matched" in result.output
