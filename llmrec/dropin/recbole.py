"""RecBole with item text: an ``.itememb`` file RecBole loads itself, and models that read it.

RecBole 1.2.1 already loads pretrained vectors (``preload_weight``); what it lacks is a model that
uses them without editing model code. ``llmrec export recbole`` (or :func:`export_recbole`)
writes a RecBole data folder, ``OUT/NAME/NAME.{inter,item,user,itememb}``, and the config keys
that load the text embeddings::

    from llmrec.dropin.recbole import TextBPR, run
    result = run(model=TextBPR, dataset="ml-100k-llmrec", config_dict={"data_path": "out", ...})

:class:`~llmrec.dropin.recbole_models.TextBPR` (a BPR whose item vector is a learned projection of
the text plus an id embedding) and :class:`~llmrec.dropin.recbole_models.TextSASRec` (SASRec
whose item table starts from the text's principal components, as in Harte et al., RecSys 2023)
find the vectors through ``preload_weight``. Items the training split lacks keep text-only
vectors, so they are still scored by what their text says.

RecBole's ``run_recbole`` resolves ``config["model"]`` by name among its own modules, so it cannot
run a model class from elsewhere; :func:`run` is ``run_recbole`` that can.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from llmrec.artifacts import write_artifact
from llmrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    from llmrec.dropin.recbole_models import TextBPR, TextSASRec

__all__ = [
    "ARTIFACT_KIND",
    "ID_FIELD",
    "ITEMEMB_SUFFIX",
    "MODEL_NAMES",
    "VALUE_FIELD",
    "RecBoleExport",
    "TextBPR",
    "TextSASRec",
    "align_embeddings",
    "check_text_config",
    "config_yaml",
    "export_recbole",
    "model_class",
    "read_itememb",
    "recbole_name",
    "run",
    "text_config",
    "write_itememb",
]

ITEMEMB_SUFFIX = "itememb"
ID_FIELD = "iid"
VALUE_FIELD = "item_emb"
ITEMEMB_HEADER = f"{ID_FIELD}:token\t{VALUE_FIELD}:float_seq"
ARTIFACT_KIND = "recbole"
MODEL_NAMES = ("TextBPR", "TextSASRec")
"""The model classes of :mod:`llmrec.dropin.recbole_models`, by name."""
BUNDLED_DATASETS = ("ml-100k",)
"""Names RecBole 1.2.1 always reads from its own ``dataset_example`` folder, whatever
``data_path`` says (``Config._set_default_parameters``): an export under such a name would never
be read, so it gets :data:`RENAMED_SUFFIX`."""
RENAMED_SUFFIX = "-llmrec"
SHOWN_IDS = 5
"""Ids named in a mismatch error."""


def __getattr__(name: str) -> Any:
    # The model classes subclass RecBole's, which imports torch: only on first use, so that
    # ``llmrec export recbole`` and the checks stay light.
    if name in MODEL_NAMES:
        from llmrec.dropin import recbole_models

        return getattr(recbole_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- the .itememb file ----------------------------------------------------------------------


def recbole_name(dataset_name: str) -> str:
    """The RecBole dataset name an export of ``dataset_name`` gets: the same, except for names
    RecBole 1.2.1 redirects to its bundled copy (``ml-100k`` -> ``ml-100k-llmrec``)."""
    return dataset_name + RENAMED_SUFFIX if dataset_name in BUNDLED_DATASETS else dataset_name


def align_embeddings(
    item_ids: Sequence[str] | np.ndarray,
    embedding_ids: Sequence[str] | np.ndarray,
    vectors: np.ndarray,
    where: str = "the embeddings",
) -> tuple[np.ndarray, int]:
    """The rows of ``vectors`` for ``item_ids``, in that order.

    Args:
        item_ids: the dataset's item ids.
        embedding_ids: the id of each row of ``vectors``.
        vectors: ``(len(embedding_ids), d)`` embeddings.
        where: the embeddings' name in messages.

    Returns:
        ``(len(item_ids), d)`` float32 rows, and how many embedding ids the dataset lacks (their
        rows are left out: a larger catalogue's embeddings serve a filtered dataset).

    Raises:
        DataError: items without an embedding (the first few named), duplicate embedding ids,
            or vectors that are not a finite 2-d array with one row per id.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.dtype.kind not in "fiu":
        raise DataError(f"{where}: vectors must be a numeric 2-d array, got shape {vectors.shape}")
    if len(embedding_ids) != len(vectors):
        raise DataError(f"{where}: {len(embedding_ids)} ids for {len(vectors)} vectors")
    position = {str(i): row for row, i in enumerate(embedding_ids)}
    if len(position) != len(embedding_ids):
        raise DataError(f"{where}: duplicate ids")
    wanted = [str(i) for i in item_ids]
    missing = [i for i in wanted if i not in position]
    if missing:
        raise DataError(
            f"{where} lack {len(missing)} of the dataset's {len(wanted)} items, first "
            f"{missing[:SHOWN_IDS]} (embeddings of another dataset? encode this one with "
            f"`llmrec encode --dataset ...`)"
        )
    rows = vectors[[position[i] for i in wanted]].astype(np.float32)
    bad = ~np.isfinite(rows).all(axis=1)
    if bad.any():
        raise DataError(f"{where}: item {wanted[int(np.flatnonzero(bad)[0])]!r} has NaN or inf")
    return rows, len(position) - len(wanted)


def write_itememb(path: str | Path, ids: Sequence[str] | np.ndarray, vectors: np.ndarray) -> None:
    """Write RecBole's atomic ``iid:token  item_emb:float_seq`` file.

    Floats are written with 9 significant digits, which float32 survives exactly.

    Raises:
        DataError: an id RecBole could not read back (empty, or with a tab or line break).
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(ITEMEMB_HEADER + "\n")
        for item, row in zip(ids, vectors, strict=True):
            item = str(item)
            if not item or any(c in item for c in "\t\r\n"):
                raise DataError(
                    f"item id {item!r} cannot be a RecBole token (empty, tab or newline)"
                )
            fh.write(item + "\t" + " ".join(f"{x:.9g}" for x in row) + "\n")


def read_itememb(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an ``.itememb`` file back: ids and ``(n, d)`` float32 vectors.

    Raises:
        DataError: missing file, another header, a row whose length differs from the first
            row's (named), or a value that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such .{ITEMEMB_SUFFIX} file")
    ids: list[str] = []
    rows: list[Any] = []
    with open(path, encoding="utf-8", newline="") as fh:
        header = fh.readline().rstrip("\r\n")
        names = [cell.partition(":")[0] for cell in header.split("\t")]
        if names != [ID_FIELD, VALUE_FIELD]:
            raise DataError(f"{path}: header {header!r}; expected {ITEMEMB_HEADER!r}")
        for lineno, line in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), 2):
            if not line:
                continue
            if len(line) != 2:
                raise DataError(f"{path}: line {lineno} has {len(line)} fields; expected 2")
            try:
                row = np.array(line[1].split(), dtype=np.float32)
            except ValueError as exc:
                raise DataError(f"{path}: line {lineno} (item {line[0]!r}): {exc}") from exc
            if rows and len(row) != len(rows[0]):
                raise DataError(
                    f"{path}: item {line[0]!r} (line {lineno}) has {len(row)} values, item "
                    f"{ids[0]!r} has {len(rows[0])}: every embedding needs the same dimension "
                    "(RecBole would pad the short ones with zeros)"
                )
            ids.append(line[0])
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no embeddings")
    return np.array(ids, dtype=object), np.stack(rows)


# ---- the config -----------------------------------------------------------------------------


def text_config(
    name: str | None = None,
    data_path: str | Path | None = None,
    inter_columns: Sequence[str] = ("user_id", "item_id", "rating", "timestamp"),
) -> dict[str, Any]:
    """The RecBole config entries that load an export's text embeddings.

    Args:
        name: the RecBole dataset name (``dataset``); None leaves it out.
        data_path: the folder holding ``NAME/``; None leaves it out.
        inter_columns: the ``.inter`` columns to load (``load_col`` replaces RecBole's default
            as a whole, so the interaction columns must be listed with the new ones).

    Returns:
        ``additional_feat_suffix``, ``load_col``, ``alias_of_item_id`` and ``preload_weight``
        (and ``dataset``/``data_path`` when given).
    """
    config: dict[str, Any] = {}
    if data_path is not None:
        config["data_path"] = str(data_path)
    if name is not None:
        config["dataset"] = name
    return {
        **config,
        "additional_feat_suffix": [ITEMEMB_SUFFIX],
        "load_col": {"inter": list(inter_columns), ITEMEMB_SUFFIX: [ID_FIELD, VALUE_FIELD]},
        "alias_of_item_id": [ID_FIELD],
        "preload_weight": {ID_FIELD: VALUE_FIELD},
    }


def config_yaml(config: Mapping[str, Any]) -> str:
    """``config`` as the YAML lines of a RecBole config file (flow style for lists and maps)."""
    import yaml

    return str(yaml.safe_dump(dict(config), default_flow_style=None, sort_keys=False, width=1000))


def _entry(config: Any, key: str) -> Any:
    # RecBole's Config has ``in`` and ``[]`` but no ``get``
    return config[key] if key in config else None  # noqa: SIM401


def text_fields(config: Any) -> tuple[str, str]:
    """The ``preload_weight`` entry that holds item text: ``(id field, vector field)``.

    Raises:
        ConfigError: no ``preload_weight`` entry keyed by the item id or one of its aliases.
    """
    item_field = _entry(config, "ITEM_ID_FIELD") or "item_id"
    aliases = {item_field, *(_entry(config, "alias_of_item_id") or [])}
    preload = _entry(config, "preload_weight") or {}
    found = [(k, v) for k, v in preload.items() if k in aliases]
    if len(found) != 1:
        keys = config_yaml(text_config()).strip().replace("\n", "; ")
        raise ConfigError(
            f"the text models read item embeddings through preload_weight, keyed by "
            f"{item_field!r} or an alias of it; this config has preload_weight {preload or None} "
            f"and alias_of_item_id {_entry(config, 'alias_of_item_id')}. Add the keys "
            f"`llmrec export recbole` prints: {keys}"
        )
    return found[0]


def itememb_path(config: Any) -> Path | None:
    """Where RecBole reads ``NAME.itememb`` for this (final) config; None without the suffix."""
    if ITEMEMB_SUFFIX not in (_entry(config, "additional_feat_suffix") or []):
        return None
    return Path(config["data_path"]) / f"{config['dataset']}.{ITEMEMB_SUFFIX}"


def check_text_config(config: Any) -> int | None:
    """Check, before RecBole loads anything, that a final RecBole ``Config`` loads item text.

    Args:
        config: ``recbole.config.Config`` (its ``data_path`` already joined with the dataset
            name), or a mapping with the same final entries.

    Returns:
        The embedding dimension read from the ``.itememb`` file, or None when the vectors come
        from another file (then RecBole's loader checks them).

    Raises:
        ConfigError: no ``preload_weight`` entry for the item id, or ``text_embedding_size``
            differs from the file's dimension.
        DataError: the config names an ``.itememb`` file that does not exist (with how to write
            it), or whose rows differ in length.
    """
    text_fields(config)
    path = itememb_path(config)
    if path is None:
        return None
    if not path.is_file():
        hint = ""
        if config["dataset"] in BUNDLED_DATASETS:
            hint = (
                f"; RecBole 1.2.1 reads {config['dataset']!r} from its bundled copy whatever "
                f"data_path says: use the name the export printed ({recbole_name('ml-100k')!r})"
            )
        raise DataError(
            f"the RecBole config loads item text from {path}, which does not exist; write it "
            f"with `llmrec export recbole --dataset DATASET --embeddings EMB --out DATA_PATH` "
            f"and set data_path to DATA_PATH{hint}"
        )
    dimension = read_itememb(path)[1].shape[1]
    expected = _entry(config, "text_embedding_size")
    if expected is not None and int(expected) != dimension:
        raise ConfigError(
            f"text_embedding_size is {expected} but {path} holds {dimension}-d embeddings "
            "(exported with another encoder?)"
        )
    return int(dimension)


# ---- the export -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecBoleExport:
    """What :func:`export_recbole` wrote.

    Attributes:
        path: the artifact folder (RecBole's ``data_path``).
        name: the RecBole dataset name; files are ``path/name/name.*``.
        config: the config entries that load the embeddings (:func:`text_config`).
        items: items written to the ``.itememb``.
        dimension: values per embedding.
        dropped: embedding ids the dataset lacks (left out).
    """

    path: Path
    name: str
    config: dict[str, Any]
    items: int
    dimension: int
    dropped: int

    @property
    def itememb(self) -> Path:
        return self.path / self.name / f"{self.name}.{ITEMEMB_SUFFIX}"


def export_recbole(
    out: str | Path,
    name: str,
    item_ids: Sequence[str] | np.ndarray,
    embedding_ids: Sequence[str] | np.ndarray,
    vectors: np.ndarray,
    data_files: Mapping[str, str | Path] | None = None,
    *,
    inter_columns: Sequence[str] = ("user_id", "item_id", "rating", "timestamp"),
    overwrite: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> RecBoleExport:
    """Write ``out/name/name.itememb`` (and the dataset's atomic files) as one artifact folder.

    Args:
        out: the folder to write; it becomes RecBole's ``data_path``.
        name: the RecBole dataset name (see :func:`recbole_name`).
        item_ids: the dataset's items, in catalogue order; each gets its embedding's row.
        embedding_ids: the id of each row of ``vectors``.
        vectors: the item embeddings.
        data_files: suffix (``inter``, ``item``, ``user``) -> atomic file to copy in as
            ``name.SUFFIX``, so that the folder is a complete RecBole dataset; None: only the
            ``.itememb``.
        inter_columns: the ``.inter`` columns for ``load_col``.
        overwrite: replace a folder that is not an llmrec ``recbole`` artifact.
        meta: more facts for the artifact manifest (where the data and embeddings came from).

    Returns:
        :class:`RecBoleExport`.

    Raises:
        DataError: see :func:`align_embeddings`; a data file that does not exist.
        ArtifactError: ``out`` holds files llmrec did not write (without ``overwrite``).
    """
    if not name or name != Path(name).name or name in (".", ".."):
        raise ConfigError(f"RecBole dataset name {name!r} must be a plain folder name")
    rows, dropped = align_embeddings(item_ids, embedding_ids, vectors)
    files = {suffix: Path(p) for suffix, p in (data_files or {}).items()}
    for suffix, file in files.items():
        if suffix == ITEMEMB_SUFFIX or not suffix.isidentifier():
            raise ConfigError(f"data file suffix {suffix!r} is not an atomic file suffix")
        if not file.is_file():
            raise DataError(f"{file}: no such atomic file to copy as {name}.{suffix}")

    def write(tmp: Path) -> None:
        folder = tmp / name
        folder.mkdir()
        write_itememb(folder / f"{name}.{ITEMEMB_SUFFIX}", item_ids, rows)
        for suffix, file in files.items():
            shutil.copyfile(file, folder / f"{name}.{suffix}")

    facts = {**(meta or {}), "recbole_dataset": name, "items": len(rows)}
    facts["dimension"] = int(rows.shape[1])
    path = write_artifact(out, ARTIFACT_KIND, write, overwrite=overwrite, meta=facts)
    config = text_config(name, path, inter_columns)
    return RecBoleExport(path, name, config, len(rows), int(rows.shape[1]), dropped)


# ---- running ----------------------------------------------------------------------------------


def model_class(model: str | type) -> type:
    """A model class from ours (``TextBPR``, ``TextSASRec``), RecBole's (by name) or as given.

    Raises:
        ConfigError: a name that is neither.
    """
    if not isinstance(model, str):
        return model
    if model in MODEL_NAMES:
        from llmrec.dropin import recbole_models

        return getattr(recbole_models, model)
    from recbole.utils import get_model

    try:
        return get_model(model)
    except (ValueError, ImportError) as exc:
        # RecBole 1.2.1 searches its model packages by name; its exlib package needs lightgbm
        # and xgboost, so an unknown name can also end in a ModuleNotFoundError.
        raise ConfigError(
            f"{model!r} is neither an llmrec text model ({', '.join(MODEL_NAMES)}) nor a "
            "RecBole 1.2.1 model"
        ) from exc


def is_text_model(cls: type) -> bool:
    """Whether ``cls`` is one of ours (it reads ``preload_weight``)."""
    return cls.__module__ == "llmrec.dropin.recbole_models" and cls.__name__ in MODEL_NAMES


@contextlib.contextmanager
def resolving(cls: type) -> Iterator[None]:
    """Let RecBole's quick start find ``cls`` by its name (it looks only in its own modules)."""
    from unittest import mock

    import recbole.quick_start.quick_start as quick_start
    from recbole.utils import get_model

    def lookup(name: str) -> Any:
        return cls if name == cls.__name__ else get_model(name)

    with mock.patch.object(quick_start, "get_model", lookup):
        yield


@contextlib.contextmanager
def _checkpoints_loadable() -> Iterator[None]:
    """Let RecBole 1.2.1 reload the checkpoint it has just written.

    Its checkpoints pickle the config, and torch >= 2.6 refuses to unpickle with ``torch.load``'s
    default ``weights_only=True``, so ``run_recbole`` fails at its test step; RecBole only loads
    its own files here, so the old default is safe. The variable is restored afterwards.
    """
    before = os.environ.get(_TORCH_LOAD_ENV)
    os.environ[_TORCH_LOAD_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(_TORCH_LOAD_ENV, None)
        else:
            os.environ[_TORCH_LOAD_ENV] = before


_TORCH_LOAD_ENV = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


def run(
    model: str | type,
    dataset: str | None = None,
    config_file_list: list[str] | None = None,
    config_dict: dict[str, Any] | None = None,
    saved: bool = True,
) -> dict[str, Any]:
    """``recbole.quick_start.run_recbole`` for any model class, ours included.

    Trains and tests exactly as ``run_recbole`` does (its own code runs, with the class found by
    name); for our text models the config is checked first, so a missing ``.itememb`` or
    ``preload_weight`` is named before RecBole loads the data, and RecBole's ``BASE.yaml``
    defaults (``SASRec.yaml`` for ``TextSASRec``) come before ``config_file_list``. As
    ``run_recbole`` does, it logs to ``./log/`` and saves checkpoints to ``checkpoint_dir``;
    unlike it, it also runs under torch >= 2.6 (see :func:`_checkpoints_loadable`).

    Args:
        model: a model class (``TextBPR``, ``TextSASRec`` or any RecBole model class) or name.
        dataset, config_file_list, config_dict, saved: as for ``run_recbole``.

    Returns:
        ``run_recbole``'s result: ``best_valid_score``, ``valid_score_bigger``,
        ``best_valid_result``, ``test_result``.

    Raises:
        ConfigError, DataError: see :func:`check_text_config`.
    """
    from recbole.config import Config
    from recbole.quick_start import run_recbole

    cls = model_class(model)
    if is_text_model(cls):
        from llmrec.dropin.recbole_models import defaults_file

        # First, so that the user's files and config_dict override the base model's defaults.
        config_file_list = [str(defaults_file(cls)), *(config_file_list or [])]
        config = Config(
            model=cls, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict
        )
        check_text_config(config)
    with resolving(cls), _checkpoints_loadable():
        result = run_recbole(
            model=cls,
            dataset=dataset,
            config_file_list=config_file_list,
            config_dict=config_dict,
            saved=saved,
        )
    return dict(result)
