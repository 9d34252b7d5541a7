"""Full-ranking evaluation, metrics, model runs and reports."""

from __future__ import annotations

from llmrec.evaluation.evaluator import EvalResult, evaluate_scores, top_k
from llmrec.evaluation.metrics import METRICS, MRR, NDCG, Hit, Metric, Precision, Recall, coverage
from llmrec.evaluation.report import build_report, print_table, write_report
from llmrec.evaluation.runner import PROTOCOLS, ModelRun, ModelSpec, resolve_model, run_model
from llmrec.evaluation.significance import STAT_TESTS, compare_models, mean_std, to_qrels, to_run
from llmrec.evaluation.study import run_study

__all__ = [
    "METRICS",
    "MRR",
    "NDCG",
    "PROTOCOLS",
    "STAT_TESTS",
    "EvalResult",
    "Hit",
    "Metric",
    "ModelRun",
    "ModelSpec",
    "Precision",
    "Recall",
    "build_report",
    "compare_models",
    "coverage",
    "evaluate_scores",
    "mean_std",
    "print_table",
    "resolve_model",
    "run_model",
    "run_study",
    "to_qrels",
    "to_run",
    "top_k",
    "write_report",
]
