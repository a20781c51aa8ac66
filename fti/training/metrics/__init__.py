"""The metric a model is judged by: which names fit which task, their direction, their value.

A model's ``metric`` is one of two kinds of name:

* **A scikit-learn scorer name**, any of ``sklearn.metrics.get_scorer_names()`` (``roc_auc``,
  ``average_precision``, ``accuracy``, ``f1_macro``, ``neg_log_loss``, ``r2``, ...). Its value
  is what scikit-learn's scorer returns, and like every scikit-learn scorer, *higher is better*:
  scikit-learn negates losses (the ``neg_*`` scorers), so ``neg_log_loss`` is -0.3, not 0.3.
* **A loss name**: the name of the scikit-learn function behind a ``neg_*`` scorer, ``log_loss``
  (``neg_log_loss``), ``brier_score_loss`` (``neg_brier_score``), ``mean_squared_error``,
  ``root_mean_squared_error``, ``mean_absolute_error``, ``median_absolute_error``,
  ``mean_absolute_percentage_error``, ``max_error`` (``neg_max_error``) and the others of
  ``LOSS_NAMES``. Its value is the function's own, positive one, and *lower is better*.
  A loss name wins over a scorer of the same spelling: ``max_error`` (a scorer name returning
  negative values in old scikit-learn) always means the positive error, lower is better.

Which task a name fits follows from the scorer's scoring function and arguments:

* regression metrics (``sklearn.metrics._regression``) fit ``regression`` models only;
* classification and ranking metrics fit ``binary`` models, and ``multiclass`` models unless
  they score two classes only: ``average='binary'`` (``f1``, ``precision``, ``recall``,
  ``jaccard``), ``roc_auc`` without ``multi_class`` (use ``roc_auc_ovr``/``roc_auc_ovo``), the
  likelihood ratios. ``average_precision``, ``neg_brier_score`` and ``log_loss`` do score
  several classes. ``top_k_accuracy`` (k=2) is refused for binary models: it is always 1 there;
* clustering metrics (``adjusted_rand_score``, ``v_measure_score``, ...) fit no task: they
  ignore which class a model predicts, so a model that swaps every class scores perfectly;
* the ``*_samples`` scorers fit no task: they need multilabel targets.

``score`` predicts once per response it needs, then computes the metric from the predictions;
when the metric is not defined on these rows (one class only, a class of the model missing
from a ranking metric's rows, a target outside a deviance's domain, no rows) it returns None
instead of raising or returning NaN. Otherwise its value is the scorer's: like scikit-learn,
ranking metrics (``roc_auc``, ``average_precision``, ``top_k_accuracy``) score
``decision_function`` when the model has one, else ``predict_proba``. Unlike scikit-learn's
scorers, probability metrics get the model's own classes (``labels=model.classes_``, and the
positive class ``classes_[1]``), so a holdout lacking a class still has a ``log_loss``.

``predictions`` keeps a model's response on a holdout so that the metric of any resample of its
rows (``resampled_values``, the promotion gate's bootstrap) needs no model: the common metrics
(``roc_auc``, ``roc_auc_ovr``, ``average_precision``, ``accuracy``, ``log_loss``, the squared
and absolute errors, ``r2``) are computed for all resamples at once, the others by scikit-learn on each resample's
rows; either way the value is ``score``'s on those rows. A ``Resampler`` does the work that
depends on the rows alone (sorting the scores, the per-row terms) once, so that each batch of
resamples then costs time linear in the rows.

This package's public face is this module; inside it, ``_names`` knows the names (which
scorer or loss, which direction, which tasks), ``_values`` computes a metric's value, and
``_resamples`` the values of bootstrap resamples.
"""

from fti.training.metrics._names import (
    SUGGESTIONS,
    TASKS,
    higher_is_better,
    loss_names,
    metric_problem,
)
from fti.training.metrics._resamples import Resampler, resample_counts, resampled_values
from fti.training.metrics._values import (
    STANDARD_METRICS,
    Predictions,
    holdout_metrics,
    is_better,
    predictions,
    score,
    score_predictions,
    undefined_reason,
)

__all__ = [
    "STANDARD_METRICS",
    "SUGGESTIONS",
    "TASKS",
    "Predictions",
    "Resampler",
    "higher_is_better",
    "holdout_metrics",
    "is_better",
    "loss_names",
    "metric_problem",
    "predictions",
    "resample_counts",
    "resampled_values",
    "score",
    "score_predictions",
    "undefined_reason",
]
