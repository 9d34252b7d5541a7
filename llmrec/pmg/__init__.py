"""PMG (Personalized Multimodal Generation, Shen et al., WWW 2024): personalized item thumbnails.

A user's history becomes text (:mod:`~llmrec.pmg.history`), preference and target keywords come
from an embedding or an LLM backend (:mod:`~llmrec.pmg.keywords`), prompts balance the two by
``alpha`` (:mod:`~llmrec.pmg.prompts`), and a generator renders the thumbnail: the embedded
Pillow card (:mod:`~llmrec.pmg.card`) or any Stable Diffusion folder on disk
(:mod:`~llmrec.pmg.diffusion`), best of N by PMG's score (:mod:`~llmrec.pmg.selection`).
Thumbnails and their HTML gallery are written by :mod:`~llmrec.pmg.gallery`.
"""

from llmrec.pmg.spec import ItemInfo, Keyword, ThumbnailSpec, check_alpha

__all__ = ["ItemInfo", "Keyword", "ThumbnailSpec", "check_alpha"]
