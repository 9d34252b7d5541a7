"""Family 3, silent wrong results, items 8-12 of the issue: inf and NaN values, float ids,
histories that are not lists, a search --dataset that does not match, out-of-range parameters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cases import Ctx, Fixtures, Run, add
from commands import Args, build_args, encode_args, search_args
from files import atomic_copy, read_atomic
from fixtures import small_train, try_fit
from outputs import DEFAULT, first_recs, recs_diff, recs_of, search_rows, served_model
from processes import cli
from settings import FAMILIES, HANDLED, HISTORY, USERS
from verdicts import Verdict, api_accepted, api_refused, attempt, cli_refused, failed

POOL_USERS = ("--what", "users", "--user-text", "pool")


def _cell(column: str, value: str, row: int = 5) -> Callable[[Any], Any]:
    def edit(frame: Any) -> Any:
        frame.loc[frame.index[row], column] = value
        return frame

    return edit


def case_bad_rating(value: str, column: str = "rating:float", command: str = "pool") -> Run:
    """Issue 8: inf ratings (and NaN, and inf timestamps) are refused where they enter."""

    def run(ctx: Ctx) -> Verdict:
        data = atomic_copy(ctx, "bad-values", _cell(column, value))
        if command == "pool":
            args = encode_args(data, ctx.fx.bert, ctx.work / "emb", *POOL_USERS)
        else:
            args = ["data", "split", data, "--split", "temporal", "--out", ctx.work / "split"]
        return cli_refused(cli(*args), [column.split(":")[0], "bad-values.inter"])

    return run


def case_inf_csv(ctx: Ctx) -> Verdict:
    path = ctx.work / "ratings.csv"
    path.write_text("user_id,item_id,rating\n1,10,4\n1,11,inf\n2,10,3\n")
    return cli_refused(cli("data", "describe", path), ["rating", "ratings.csv"])


def case_fit_inf(ctx: Ctx) -> Verdict:
    train, items = small_train(ctx.fx)
    train.loc[3, "rating"] = float("inf")
    return api_refused(try_fit(ctx.fx, train, items=items), ["rating"])


def case_float_ids_parquet(ctx: Ctx) -> Verdict:
    """Issue 9: float-typed ids become "196", never "196.0"."""
    from llmrec.datasets import load

    train, _ = small_train(ctx.fx)
    numeric = train[train["item_id"].str.isdigit() & train["user_id"].str.isdigit()].copy()
    numeric["user_id"] = numeric["user_id"].astype(float)
    numeric["item_id"] = numeric["item_id"].astype(float)
    path = ctx.work / "float-ids.parquet"
    numeric.to_parquet(path)
    a = attempt(lambda: load(path))

    def check(data: Any) -> str | None:
        bad = [u for u in [*data.user_ids, *data.item_ids] if str(u).endswith(".0")]
        return f"ids like {bad[:3]}" if bad else None

    return api_accepted(a, check)


def case_float_ids_csv(ctx: Ctx) -> Verdict:
    from llmrec.datasets import load

    path = ctx.work / "mixed.csv"
    path.write_text("user_id,item_id,rating\n196,242,3\n196.0,302,3\n22,377,1\n22.0,51,2\n")
    a = attempt(lambda: load(path))
    return api_refused(
        a,
        ["user_id"],
        accepted=lambda d: (
            None if sorted(d.user_ids) == ["196", "22"] else f"users {list(d.user_ids)}"
        ),
    )


def case_typed_user(
    users: Any, histories: Any = DEFAULT, as_numpy: bool = False, k: Any = 10
) -> Run:
    """Issue 9: ids of other types (int, float, numpy) serve the same as the string ids."""

    def run(ctx: Ctx) -> Verdict:
        import numpy as np

        rec = served_model(ctx.fx)
        wanted = np.array(users) if as_numpy else users
        value = np.int64(10) if k == "numpy" else k
        a = attempt(lambda: recs_of(rec, users=wanted, histories=histories, k=value))
        n = len(a.value["ids"]) if a.exc is None else 0
        return api_accepted(a, lambda got: recs_diff(got, first_recs(ctx.fx.ref["recs"], n)))

    return run


def case_histories(histories: Any) -> Run:
    """Issue 10: a history that is not a list of ids is refused."""

    def run(ctx: Ctx) -> Verdict:
        rec = served_model(ctx.fx)
        a = attempt(lambda: recs_of(rec, users=["ghost"], histories=histories))
        return api_refused(a, ["histories", "history"])

    return run


def case_search_dataset(which: str) -> Run:
    """Issue 11: index search --dataset with embeddings made from another dataset."""

    def run(ctx: Ctx) -> Verdict:
        fx = ctx.fx
        if which == "same":
            data = fx.data_a
        elif which == "other users":
            data = fx.data_c
        else:
            data = atomic_copy(ctx, "reordered")
            item_file = data / "reordered.item"
            items = read_atomic(item_file)
            items.iloc[::-1].to_csv(item_file, sep="\t", index=False)
        users = ",".join(USERS[:3])
        p = cli(*search_args(fx.index_flat, fx.emb_users, users, "--dataset", data))

        def check() -> str | None:
            rows = search_rows(p.out)
            for user in USERS[:3]:
                seen = set(fx.ref["seen"][user]) if which != "other users" else set()
                shown = rows.get(user, [])
                if seen & set(shown):
                    both = sorted(seen & set(shown))[:3]
                    return f"user {user} is shown items seen in {data.name}: {both}"
                expected = fx.ref["search_seen" if which != "other users" else "search"][user]
                if shown != expected:
                    return f"user {user}: {shown[:3]}... instead of {expected[:3]}..."
            return None

        verdict = cli_refused(p, [data.name, "dataset", "checksum"], accepted=check)
        if which == "same" and verdict.outcome == HANDLED and p.rc != 0:
            return failed(f"the matching dataset is refused: {verdict.reason}")
        return verdict

    return run


ArgsOf = Callable[[Fixtures, Path], Args]
"""A command line from the fixtures and an --out path."""


def case_cli_param(args_of: ArgsOf, names: list[str]) -> Run:
    """A bad option value: refused with a message that names the option."""

    def run(ctx: Ctx) -> Verdict:
        return cli_refused(cli(*args_of(ctx.fx, ctx.work / "out")), names)

    return run


def encode_a(*extra: str) -> ArgsOf:
    """``llmrec encode`` of dataset A with the tiny encoder, ``extra`` options added."""
    return lambda fx, out: encode_args(fx.data_a, fx.bert, out, *extra)


def _build(spec: str, *extra: str) -> ArgsOf:
    return lambda fx, out: build_args(fx.emb_items, out, "--spec", spec, *extra)


def _search_k(k: str) -> ArgsOf:
    return lambda fx, out: search_args(fx.index_flat, fx.emb_users, "10", "-k", k)


K_NAMES = ["k must", "k=", "'k'", "`k`", "--k", "-k ", "k (", "k is"]
EF_SEARCH, NPROBE = ["--ef-search", "efSearch"], ["--nprobe", "nprobe"]
CLI_PARAMS: list[tuple[str, ArgsOf, list[str]]] = [
    ("index build --ef-search -5", _build("HNSW32", "--ef-search", "-5"), EF_SEARCH),
    ("index build --ef-search 0", _build("HNSW32", "--ef-search", "0"), EF_SEARCH),
    ("index build --nprobe 0", _build("IVF16,Flat", "--nprobe", "0"), NPROBE),
    ("index build --nprobe -1", _build("IVF16,Flat", "--nprobe", "-1"), NPROBE),
    (
        "encode --max-items 0",
        encode_a("--what", "users", "--max-items", "0"),
        ["--max-items", "max_items"],
    ),
    (
        "encode --max-items -3",
        encode_a("--what", "users", "--max-items", "-3"),
        ["--max-items", "max_items"],
    ),
    ("encode --batch-size 0", encode_a("--batch-size", "0"), ["--batch-size", "batch_size"]),
    ("encode --workers 0", encode_a("--workers", "0"), ["--workers", "workers"]),
    ("index search -k 0", _search_k("0"), K_NAMES),
    ("index search -k past the catalogue", _search_k("100000"), K_NAMES),
    (
        "evaluate --k 0",
        lambda fx, o: ["evaluate", "--dataset", fx.data_a, "--models", "pop", "--k", "0"],
        ["cut-off", "--k"],
    ),
]


def case_api_k(k: Any, method: str = "recommend") -> Run:
    """A bad ``k`` for the API: refused with a message that names k."""

    def run(ctx: Ctx) -> Verdict:
        rec = served_model(ctx.fx)
        value = rec.model.n_items + 1 if k == "n_items + 1" else k
        if method == "similar_items":
            a = attempt(lambda: rec.similar_items(["50"], k=value))
        else:
            a = attempt(lambda: recs_of(rec, k=value))
        return api_refused(a, K_NAMES)

    return run


def case_search_param(spec: str, name: str, value: int) -> Run:
    """A bad search parameter of an index: refused, or searches that still return k items."""

    def run(ctx: Ctx) -> Verdict:
        from llmrec.encoders.job import EmbeddingSet
        from llmrec.retrieval import ItemIndex

        vectors = EmbeddingSet.load(ctx.fx.emb_items).vectors
        index = ItemIndex.build(vectors, spec=spec)
        a = attempt(lambda: index.set_search_params(**{name: value}))
        if a.exc is None:
            a = attempt(lambda: index.search(vectors[:3], 5))
            return api_refused(
                a,
                [name],
                accepted=lambda r: (
                    None if (r[0] >= 0).all() else "searches return fewer than k items"
                ),
            )
        return api_refused(a, [name])

    return run


def register() -> None:
    fam = FAMILIES[2]
    add(fam, "8 encode --user-text pool with a rating of inf", case_bad_rating("inf"))
    add(fam, "8 encode --user-text pool with a rating of -inf", case_bad_rating("-inf"))
    add(fam, "8 encode --user-text pool with a rating of nan", case_bad_rating("nan"))
    add(
        fam,
        "8 data split --split temporal with a timestamp of inf",
        case_bad_rating("inf", "timestamp:float", "split"),
    )
    add(fam, "8 data describe a CSV with a rating of inf", case_inf_csv)
    add(fam, "8 Recommender.fit with a rating of inf", case_fit_inf)
    add(fam, "9 Parquet with float ids", case_float_ids_parquet)
    add(fam, "9 CSV mixing 196 and 196.0", case_float_ids_csv)
    add(fam, "9 recommend(int ids)", case_typed_user([10, 20, 30, "ghost"]))
    add(fam, "9 recommend(float ids)", case_typed_user([10.0, 20.0, 30.0, "ghost"]))
    add(fam, "9 recommend(numpy int64 ids)", case_typed_user([10, 20, 30], as_numpy=True))
    add(
        fam,
        "9 histories with int item ids",
        case_typed_user(USERS, {"ghost": [int(i) for i in HISTORY]}),
    )
    for label, histories in (
        ("a string", {"ghost": "181"}),
        ("bytes", {"ghost": b"181"}),
        ("an int", {"ghost": 181}),
        ("a dict", {"ghost": {"181": 1}}),
        ("a list instead of a mapping", [["181"]]),
    ):
        add(fam, f"10 histories given {label}", case_histories(histories))
    add(fam, "11 index search --dataset: the embeddings' own dataset", case_search_dataset("same"))
    add(
        fam,
        "11 index search --dataset: same interactions, items reordered",
        case_search_dataset("reordered"),
    )
    add(
        fam,
        "11 index search --dataset: another dataset's users",
        case_search_dataset("other users"),
    )
    for label, args_of, names in CLI_PARAMS:
        add(fam, f"12 {label}", case_cli_param(args_of, names))
    add(fam, "12 recommend(k=0)", case_api_k(0))
    add(fam, "12 recommend(k=-1)", case_api_k(-1))
    add(fam, "12 recommend(k=catalogue + 1)", case_api_k("n_items + 1"))
    add(fam, "12 similar_items(k=0)", case_api_k(0, "similar_items"))
    add(
        fam,
        "12 ItemIndex.set_search_params(efSearch=0)",
        case_search_param("HNSW32", "efSearch", 0),
    )
    add(
        fam,
        "12 ItemIndex.set_search_params(nprobe=-1)",
        case_search_param("IVF16,Flat", "nprobe", -1),
    )
