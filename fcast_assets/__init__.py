"""fcast: a Dagster asset graph over forecasting libraries and Japanese lottery data."""

import os as _os

# No network at run time: libraries that would fetch model weights from a hub (neuralforecast's TimeLLM
# loads an LLM by default) fail at once instead of retrying. Export HF_HUB_OFFLINE=0 to allow downloads.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Ray workers run with the driver's own interpreter: under `uv run`, Ray would otherwise start every worker
# through `uv run` in a copy of the working folder, which builds a fresh environment without ray in it (workers
# never register, trials time out). Export RAY_ENABLE_UV_RUN_RUNTIME_ENV=1 to restore Ray's behaviour.
_os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
