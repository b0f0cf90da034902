"""Reading results: Pareto frontiers, the deployment recommendation, summary.md and the notebooks' plots."""

# Layering: these modules import only accelbench.exceptions, .registry, .records and each other
# (formatting, busy, style, labels; selection -> objectives -> frontier -> comparison -> recommend -> tables
# -> frontier_plot, plots -> summary), never the code that measures. Every reader sees the same rows:
# records.current_records.

from __future__ import annotations

from . import offline_plot, onnx_tables, op_tables, plots, sensitivity_plots, tables, teacher_tables
from .busy import busy_mask, busy_warning
from .comparison import Comparison, compare_leaders
from .confirmation import confirmation_section, confirmation_table, confirmation_targets, read_confirmations
from .failures import failure_rows, with_failures
from .formatting import display_metric_name, format_metric, format_ratio
from .frontier import (
    available_objectives,
    frontier,
    frontier_table,
    objective_rows,
    objective_rows_or_none,
    pareto_mask,
)
from .frontier_plot import plot_frontier, plot_frontiers
from .objectives import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_OBJECTIVE,
    OBJECTIVES,
    Objective,
    get_objective,
    register_objective,
)
from .recommend import (
    DEFAULT_FRACTION,
    Recommendation,
    batch_inference_objective,
    check_fraction,
    recommend,
    recommend_batch_inference,
    recommend_from_frontier,
    recommendation_or_reason,
)
from .selection import NOT_RUN_STATUSES, ok_mask, task_records
from .summary import markdown_table, read_run, summary_markdown, write_summary
from .tables import frontier_people_table
from .time_spent import time_spent

__all__ = [
    "confirmation_section",
    "confirmation_table",
    "confirmation_targets",
    "read_confirmations",
    "failure_rows",
    "with_failures",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FRACTION",
    "DEFAULT_OBJECTIVE",
    "NOT_RUN_STATUSES",
    "OBJECTIVES",
    "Comparison",
    "Objective",
    "Recommendation",
    "available_objectives",
    "busy_mask",
    "busy_warning",
    "check_fraction",
    "compare_leaders",
    "display_metric_name",
    "format_metric",
    "format_ratio",
    "frontier",
    "frontier_people_table",
    "frontier_table",
    "get_objective",
    "markdown_table",
    "objective_rows",
    "objective_rows_or_none",
    "ok_mask",
    "pareto_mask",
    "plot_frontier",
    "plot_frontiers",
    "plots",
    "read_run",
    "recommend",
    "recommend_batch_inference",
    "batch_inference_objective",
    "recommend_from_frontier",
    "recommendation_or_reason",
    "register_objective",
    "summary_markdown",
    "tables",
    "teacher_tables",
    "onnx_tables",
    "offline_plot",
    "op_tables",
    "sensitivity_plots",
    "task_records",
    "time_spent",
    "write_summary",
]
