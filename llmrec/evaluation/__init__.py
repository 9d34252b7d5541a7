"""Full-ranking evaluation, metrics, model runs and reports."""

from __future__ import annotations

from llmrec.evaluation.evaluator import EvalResult, evaluate_scores, top_k
from llmrec.evaluation.metrics import METRICS, MRR, NDCG, Hit, Metric, Precision, Recall, coverage
from llmrec.evaluation.report import build_report, print_table, write_report
from llmrec.evaluation.runner import ModelSpec, resolve_model, run_model

__all__ = [
    "METRICS",
    "MRR",
    "NDCG",
    "EvalResult",
    "Hit",
    "Metric",
    "ModelSpec",
    "Precision",
    "Recall",
    "build_report",
    "coverage",
    "evaluate_scores",
    "print_table",
    "resolve_model",
    "run_model",
    "top_k",
    "write_report",
]
