"""Family 4, raw tracebacks and unclear errors, from calls: bad options and arguments,
bad training inputs, ids containing commas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cases import Ctx, Run, add
from cases_silent_inputs import case_api_k, case_cli_param, case_typed_user, encode_a
from fixtures import small_train, try_fit
from outputs import recommend_rows, search_rows
from processes import cli
from settings import COMMA_USER, FAMILIES, USERS
from verdicts import Verdict, api_refused, failed, handled


def case_fit_bad(kind: str) -> Run:
    """``Recommender.fit`` with a bad training input: refused naming what is wrong."""

    def run(ctx: Ctx) -> Verdict:
        import pandas as pd

        train, items = small_train(ctx.fx)
        kwargs: dict[str, Any] = {"items": items}
        names: list[str]
        if kind == "rating 'five'":
            train["rating"] = train["rating"].astype(object)
            train.loc[4, "rating"] = "five"
            names = ["rating"]
        elif kind == "a list of tuples":
            train = list(train[["user_id", "item_id"]].itertuples(index=False, name=None))
            names = ["train", "DataFrame"]
        elif kind == "no item_id column":
            train = train.drop(columns="item_id")
            names = ["item_id"]
        elif kind == "items=None":
            kwargs["items"] = None
            names = ["items"]
        elif kind == "an empty train":
            train = train.iloc[:0]
            names = ["train", "empty"]
        elif kind == "a None user id":
            train["user_id"] = train["user_id"].astype(object)
            train.loc[2, "user_id"] = None
            names = ["user_id", "row"]
        elif kind == "items without a title":
            kwargs["items"] = pd.DataFrame({"item_id": items["item_id"]})
            names = ["title", "items"]
        else:  # users given as a list
            kwargs["users"] = ["10", "20"]
            names = ["users"]
        return api_refused(try_fit(ctx.fx, train, **kwargs), names)

    return run


def help_options(command: list[str]) -> set[str]:
    """The long options that ``llmrec COMMAND --help`` lists."""
    p = cli(*command, "--help")
    return set(re.findall(r"(--[a-z][a-z-]+)", p.out))


def case_comma(where: str) -> Run:
    """Ids that contain commas (ml-1m titles): some CLI syntax must pass them."""

    def run(ctx: Ctx) -> Verdict:
        fx = ctx.fx
        comma_item = fx.ref["comma_item"]
        if where == "index search --users":
            command = ["index", "search", "--index", fx.index_flat, "--queries", fx.emb_users]
        else:
            command = ["recommend", "--model", fx.model_a]
        options = help_options(command[:2] if command[0] == "index" else command[:1])
        value = comma_item if where == "recommend --history" else COMMA_USER
        listing = ctx.work / "ids.txt"
        listing.write_text(value + "\n")
        plural = "--history" if where == "recommend --history" else "--users"
        single = {"--users": "--user", "--history": "--item"}[plural]
        tries: list[list[str | Path]] = []
        if single in options:
            tries.append([single, value])
        tries += [[o, listing] for o in sorted(options) if o.endswith("-file") and plural[2:6] in o]
        tries.append([plural, f'"{value}"'])
        if where == "recommend --history":
            tries = [[*t, "--users", "ghost"] for t in tries]
        tried = []
        for extra in tries:
            p = cli(*command, *extra)
            tried.append(" ".join(map(str, extra)))
            if p.rc != 0:
                continue
            rows = recommend_rows(p.out) if command[0] == "recommend" else search_rows(p.out)
            if where == "recommend --history":
                served, items = rows.get("ghost", ("", []))
                if served == "history" and comma_item not in items:
                    return handled(f"passed with {tried[-1]}")
            elif where == "recommend --users":
                if rows.get(COMMA_USER, ("", []))[0] == "model":
                    return handled(f"passed with {tried[-1]}")
            elif len(rows.get(COMMA_USER, [])) == 10:
                return handled(f"passed with {tried[-1]}")
        return failed(f"no syntax passes the id {value!r} (tried {'; '.join(tried)})")

    return run


def register() -> None:
    fam = FAMILIES[3]
    for models, names in (
        (",,,", ["--models", "model"]),
        ("", ["--models", "model"]),
        (" , ", ["--models", "model"]),
        ("no-such-model", ["no-such-model"]),
    ):
        add(
            fam,
            f"evaluate --models {models!r}",
            case_cli_param(
                lambda fx, o, m=models: ["evaluate", "--dataset", fx.data_a, "--models", m], names
            ),
        )
    for option, value in (
        ("--device", "bogus"),
        ("--device", "cuda:99"),
        ("--dtype", "int8"),
        ("--pooling", "weird"),
        ("--what", "things"),
    ):
        add(
            fam,
            f"encode {option} {value}",
            case_cli_param(encode_a(option, value), [option, f"{option[2:]}:", value]),
        )
    for k in (5.0, "5", True, None, 2.5):
        add(fam, f"recommend(k={k!r})", case_api_k(k))
    add(fam, "recommend(k=numpy.int64(10)) is accepted", case_typed_user(USERS, k="numpy"))
    for kind in (
        "rating 'five'",
        "a list of tuples",
        "no item_id column",
        "items=None",
        "an empty train",
        "a None user id",
        "items without a title",
        "users as a list",
    ):
        add(fam, f"Recommender.fit with {kind}", case_fit_bad(kind))
    for where in ("recommend --users", "recommend --history", "index search --users"):
        add(
            fam,
            f"{where}: an id containing a comma",
            case_comma(where),
            slow=where.startswith("recommend"),
        )
