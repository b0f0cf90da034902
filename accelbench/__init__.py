"""accelbench: accuracy and speed of transformer variants, measured together; the public API.

A notebook or script needs only these names::

    import accelbench as ab
    records = ab.run_experiment("sst2", "minilm-sst2", ["fp32", "dynamic-int8"], "results/mine")
    ab.recommend(ab.read_current("results/mine"), "sst2")
"""

from .analysis import frontier, plot_frontier, plot_frontiers, recommend, summary_markdown, write_summary
from .config import load_config, use_config
from .exceptions import AccelbenchError, ConfigError, DataError, MethodNotApplicableError, ModelError
from .experiment import run_experiment
from .measure.settings import BenchmarkSettings
from .methods import get_method, register_method
from .models import ModelSpec, check_recipe, register_model, resolve_model
from .records import current_records, read_current, read_records
from .sensitivity import layer_sensitivity, mixed_precision_search
from .suite import run_suite
from .tasks import Task, eval_split, get_task, label_names, load_task, register_task, split_data, task_inputs
from .training import ensure_trained, load_model
from .version import __version__

__all__ = [
    "AccelbenchError",
    "BenchmarkSettings",
    "ConfigError",
    "DataError",
    "MethodNotApplicableError",
    "ModelError",
    "ModelSpec",
    "Task",
    "__version__",
    "check_recipe",
    "current_records",
    "ensure_trained",
    "eval_split",
    "frontier",
    "get_method",
    "get_task",
    "load_config",
    "load_model",
    "load_task",
    "plot_frontier",
    "plot_frontiers",
    "read_current",
    "read_records",
    "recommend",
    "register_method",
    "register_model",
    "register_task",
    "label_names",
    "layer_sensitivity",
    "mixed_precision_search",
    "split_data",
    "task_inputs",
    "resolve_model",
    "run_experiment",
    "run_suite",
    "summary_markdown",
    "use_config",
    "write_summary",
]
