"""Command-line argument groups, as Polygraphy's `tools/args`: a group adds its flags to a
parser (`add_to`) and builds its object from the parsed arguments (a `ValidateConfig`, a
`LatencyConfig`, the gates given, the API's keyword arguments). Verbs (`nnship.cli.cmd_*`)
compose groups and never import each other (an import-linter contract).

- `model_source`: MODEL / `--teacher` / `--baseline`, `--input`, `--factory-arg`, the weights
  flag, `--trust-pickle`
- `data`: a data flag and its sample cap
- `gates`: one flag per validation gate; `latency`: the latency measurement;
  `validation`: `validate`'s whole `ValidateConfig` (recipe section, gates, latency)
- `backend_options`: backend load options (`-O`, pass-through `--key value`) and `compile`'s
  OpenVINO / TensorRT options
- `task_metric`: `--metric SPEC` (the task metric inline or from a TOML file) and
  `--task-gate 'NAME>=X'`
- `recipe`: `--set KEY=VALUE`; `output`: `--json OUT.json`; `build_report`: the end of a build
- `errors`: pydantic error locations as the flags that set them
"""

from nnship.cli.options.backend_options import BackendCompileArgs, BackendLoadArgs
from nnship.cli.options.build_report import BuildReportArgs
from nnship.cli.options.data import DataArgs
from nnship.cli.options.errors import first_invalid_option, option_name
from nnship.cli.options.gates import GateArgs
from nnship.cli.options.latency import LatencyArgs
from nnship.cli.options.model_source import ModelSourceArgs, add_inputs, factory_kwargs
from nnship.cli.options.output import JsonArgs
from nnship.cli.options.recipe import RecipeOverrideArgs
from nnship.cli.options.task_metric import TaskMetricArgs
from nnship.cli.options.validation import ValidateConfigArgs

__all__ = [
    "BackendCompileArgs",
    "BackendLoadArgs",
    "BuildReportArgs",
    "DataArgs",
    "GateArgs",
    "JsonArgs",
    "LatencyArgs",
    "ModelSourceArgs",
    "RecipeOverrideArgs",
    "TaskMetricArgs",
    "ValidateConfigArgs",
    "add_inputs",
    "factory_kwargs",
    "first_invalid_option",
    "option_name",
]
