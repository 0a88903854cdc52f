"""fcast: a Dagster asset graph over forecasting libraries and Japanese lottery data."""

import os as _os

# No network at run time: libraries that would fetch model weights from a hub (neuralforecast's TimeLLM
# loads an LLM by default) fail at once instead of retrying. Export HF_HUB_OFFLINE=0 to allow downloads.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
