"""Metrics (chapter "How we measure text-to-image models"): FID-SB, KID, precision/recall, density/coverage,
attribute accuracy, CLIP R-precision, the memorisation check, and `evaluate`, the protocol that runs them all."""
from .alignment import AttributeAccuracy, RPrecision, attribute_accuracy, r_precision, r_precision_from_embeddings
from .fid import KIDResult, feature_stats, fid, frechet_distance, kid, polynomial_mmd2
from .prdc import DensityCoverage, PrecisionRecall, density_coverage, precision_recall
from .protocol import EvalResult, corrupt, evaluate, nearest_train_ratio, reference_set, score_images

__all__ = ["AttributeAccuracy", "DensityCoverage", "EvalResult", "KIDResult", "PrecisionRecall", "RPrecision",
           "attribute_accuracy", "corrupt", "density_coverage", "evaluate", "feature_stats", "fid",
           "frechet_distance", "kid", "nearest_train_ratio", "polynomial_mmd2", "precision_recall", "r_precision",
           "r_precision_from_embeddings", "reference_set", "score_images"]
