"""What every adapter and the plan runner share about a cell's specification: JSON value specs decoded into
arguments (closed forms only), the quiet CPU trainer settings, and a tiny constructor configuration derived from a
class's registry parameters."""

from __future__ import annotations

from typing import Any

H = 2  # the horizon of the probes' tiny forecasts
N_IDS = 2  # series in the probes' data
N_POINTS = 64  # training points per series
QUIET_TRAINER = {"enable_progress_bar": False, "logger": False, "enable_model_summary": False,
                 "enable_checkpointing": False, "accelerator": "cpu", "devices": 1}
#: seed of the optuna sampler an Auto model gets when it names no ``search_alg`` of its own (compat cells and plans)
AUTO_SAMPLER_SEED = 0


def seeded_search_alg(backend: Any, given: bool) -> Any:
    """The ``search_alg`` an Auto model gets from us: with the optuna backend and none ``given``, a TPESampler seeded
    with AUTO_SAMPLER_SEED; otherwise None (keep the caller's or the library's own). neuralforecast's default
    ``search_alg`` is ray's seeded BasicVariantGenerator, which optuna cannot use, so it falls back to an unseeded
    sampler: the sampled configs, and with them whether a run works, would vary from run to run."""
    if backend != "optuna" or given:
        return None
    import optuna

    return optuna.samplers.TPESampler(seed=AUTO_SAMPLER_SEED)


def decode(value: Any, data: dict[str, Any]) -> Any:
    """Turn a JSON value spec into the argument passed to the library: ``{__obj__: ...}`` only from the closed
    table of compat/objects.yaml, ``{__data__: name}`` a frame of ``data``, ``{__int_keys__: {...}}`` a mapping
    keyed by int, ``{label, __list__}`` a labelled list; anything else is plain JSON."""
    if isinstance(value, dict):
        if "__obj__" in value:
            from .objects import build

            return build(value, lambda v: decode(v, data))
        if "__data__" in value:
            return data[value["__data__"]]
        if "__int_keys__" in value:  # a mapping keyed by int (mlforecast lag_transforms): JSON keys are strings
            return {int(k): decode(v, data) for k, v in value["__int_keys__"].items()}
        if "__list__" in value:  # a list with a label of its own ({label, __list__})
            return [decode(v, data) for v in value["__list__"]]
        return {k: decode(v, data) for k, v in value.items() if k != "label"}
    if isinstance(value, list):
        return [decode(v, data) for v in value]
    return value


def _stub(p: dict[str, Any]) -> Any:
    if p["enums"]:
        return p["enums"][0]
    types = p.get("type_norm") or []
    for t, v in (("int", 2), ("float", 0.5), ("bool", False), ("list", [2]), ("str", "")):
        if t in types:
            return v
    return 2


def baseline_kwargs(params: list[dict[str, Any]], input_size: int) -> dict[str, Any]:
    """A tiny, fast constructor configuration derived from the class's registry parameters: h, input_size,
    n_series of the probes' data, one training step, small batches, a stub for every other required argument
    and, for a class taking ``**kwargs`` (trainer arguments), the quiet CPU trainer."""
    kw: dict[str, Any] = {}
    for p in params:
        n, d = p["name"], p.get("default")
        if p["kind"] in ("var_positional", "var_keyword"):
            continue
        if n == "h":
            kw[n] = H
        elif n == "input_size":
            kw[n] = input_size
        elif n == "n_series":
            kw[n] = N_IDS
        elif n in ("max_steps", "val_check_steps"):
            kw[n] = 1
        elif "batch_size" in n and isinstance(d, int) and not isinstance(d, bool) and d > 16:
            kw[n] = 16
        elif p["required"]:
            kw[n] = _stub(p)
    if any(p["kind"] == "var_keyword" for p in params):
        kw.update(QUIET_TRAINER)
    return kw
