"""LLM features inside the recommenders people already run.

Each submodule imports its library on first use, so ``import llmrec.dropin`` costs nothing:
``llmrec.dropin.implicit`` wraps implicit's ALS; ``llmrec.dropin.recbole`` exports item text
for RecBole and the models that read it; ``llmrec.dropin.torchrec`` starts TorchRec tables from
text.
"""

from __future__ import annotations
