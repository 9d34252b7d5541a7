"""LLM features inside the recommenders people already run.

Each submodule imports its library on first use, so ``import llmrec.dropin`` costs nothing:
``llmrec.dropin.implicit`` wraps implicit's ALS.
"""

from __future__ import annotations
