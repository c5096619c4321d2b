"""Every released generator under one protocol, in one run (chapters "Comparing the families" and "The generative
trilemma"; command `t2ilab compare`).

One run measures each generator on the same test captions with the same seeds, the same N, the same judges and the
same number of threads (the generators, and the unconditional U-Net guided by each released judge), and adds what
a comparison of cost needs beside quality: parameters, network evaluations
per image, images per second at batch 100, the peak memory of sampling one batch of 100, and the training time its
card recorded. Each generator's quality-speed knob is swept in the same run (DDIM steps and guidance scale for
diffusion, temperature, top-k and guidance for the token models, truncation for the GANs) and every setting is kept
as a point of the trilemma.

Each point is cached under a key made of the model's sha256 and every protocol setting, so a second run reads what
the first measured, and a re-released model (a new sha256) or a changed setting is measured again. A model that
fails to load or to draw is reported in its row; the rest of the run goes on.

The package: `plan` (the points and their cost), `measure` (one point; sampling memory), `run` (the run, its rows
and the lookup rows), `report` (tables and records), `budget` and `stats` (budget curves, levers, fits), `claims` (the survey's six
claims, checked on a record).
"""
from .claims import COLLAPSED_RECALL, Claim, share_test, split_collapsed, survey_claims
from .budget import BudgetCurve, LeverEffect, budget_curves, lever_effects
from .measure import measure, memory_in_fresh_process, sampling_memory_mb
from .plan import PROTOCOL_VERSION, QUALITY, SLOW_NFE, UNSEEN, Point, cache_key, judge_versions, plan, released_generators
from .report import alignment_line, judges_note, ID, VIEW_TITLES, VIEWS, markdown, points_table, settings_note, table, write
from .run import cache_folder, card_metrics, lookup_rows, run, unseen_columns
from .stats import log_fit, spearman

__all__ = ["COLLAPSED_RECALL", "Claim", "share_test", "split_collapsed", "survey_claims", "BudgetCurve", "LeverEffect", "budget_curves", "lever_effects", "measure", "memory_in_fresh_process",
           "sampling_memory_mb", "PROTOCOL_VERSION", "QUALITY", "SLOW_NFE", "UNSEEN", "Point",
           "cache_key", "judge_versions", "plan", "released_generators", "ID", "VIEW_TITLES",
           "VIEWS", "alignment_line", "judges_note", "markdown", "points_table", "settings_note", "table", "write", "card_metrics", "lookup_rows",
           "run", "unseen_columns", "cache_folder", "log_fit", "spearman"]
