"""Auto (hyperparameter search) model steps: search spaces described as data, and the Auto constructor's kwargs.

A plan never carries code, so an Auto class's ``config`` is written as data::

    config: null                      # the Auto class's own default space (AutoX.get_default_config)
    config:
      __space__:
        hidden_size: 64               # a constant
        num_layers: {randint: [1, 3]}         # integers lo <= x < hi (ray's convention: hi excluded)
        learning_rate: {loguniform: [1.0e-4, 1.0e-2]}
        dropout: {uniform: [0.0, 0.5]}
        scaler_type: {choice: [null, robust, standard]}
        input_size: {quniform: [4, 16, 4]}    # lo, hi, step q (> 0)
        optimizer_kwargs: {const: {eps: 1.0e-8}}   # a constant that is itself a mapping

Any mapping value is a distribution with exactly one key (``choice``, ``uniform``, ``loguniform``, ``randint``,
``quniform``, or ``const`` for a literal mapping); lists and scalars are constants.

neuralforecast 3.3.0 Auto classes (``neuralforecast.common._base_auto.BaseAuto``) take no trainer kwargs: every
config key is passed to the tuned model's constructor (``cls_model(**config)`` in ``BaseAuto._fit_model``), whose
``**trainer_kwargs`` reach ``pytorch_lightning.Trainer``. So trainer settings (quiet trainer, ``max_steps: 1`` for a
miniature run) are merged as constants over every sampled config, never passed to the Auto constructor.

With ``backend: optuna`` and no ``search_alg`` in the step, the Auto model samples with a TPESampler seeded with
``compat.spec.AUTO_SAMPLER_SEED`` (neuralforecast seeds its ray default the same way; optuna's fallback is unseeded):
the same plan samples the same configs on every run, and its miniature run (one sample) tries the first config the
real run will. A step that names its own ``search_alg`` keeps it.
"""

from __future__ import annotations

import importlib
import inspect
import math
from typing import Any, Callable

from ..compat.spec import seeded_search_alg

AUTO_MODULE = "neuralforecast.auto"
SPACE_KEY = "__space__"
KINDS = {"choice", "uniform", "loguniform", "randint", "quniform", "const"}
BACKENDS = ("optuna", "ray")
# the Auto constructor injects these into every config itself; BaseAuto raises when the config sets h/loss/valid_loss
# constructor arguments with no data form (a model class, a summing matrix)
UNSUPPORTED = {"AutoHINT": "AutoHINT needs a model class (cls_model) and a summing matrix S, which a plan cannot "
                           "describe as data, and it does not support backend optuna"}


# ------------------------------------------------------------------------------------------------ space validation
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _dist_errors(name: str, spec: dict[str, Any]) -> list[str]:
    where = f"config.__space__.{name}"
    if len(spec) != 1:
        return [f"{where}: a distribution is a mapping with exactly one key out of {sorted(KINDS)}, got "
                f"{sorted(map(str, spec)) or 'an empty mapping'}"]
    kind, args = next(iter(spec.items()))
    if kind not in KINDS:
        return [f"{where}: unknown distribution kind {kind!r} (known: {sorted(KINDS)})"]
    if kind == "const":
        return []
    if kind == "choice":
        if not isinstance(args, list):
            return [f"{where}: choice takes a list of values, got {type(args).__name__}"]
        if not args:
            return [f"{where}: choice has an empty list of values"]
        return []
    arity = 3 if kind == "quniform" else 2
    shape = "[lo, hi, q]" if kind == "quniform" else "[lo, hi]"
    if not isinstance(args, list) or len(args) != arity:
        got = f"{len(args)} values" if isinstance(args, list) else type(args).__name__
        return [f"{where}: {kind} takes {shape} ({arity} numbers), got {got}"]
    if not all(_is_number(a) for a in args):
        return [f"{where}: {kind} bounds must be finite numbers, got {args!r}"]
    lo, hi = args[0], args[1]
    if kind == "randint":
        if not (_is_int(lo) and _is_int(hi)):
            return [f"{where}: randint bounds must be integers, got {args!r}"]
        if lo >= hi:
            return [f"{where}: randint [lo, hi] needs lo < hi (hi is excluded), got lo={lo} hi={hi}"]
        return []
    if lo > hi:
        return [f"{where}: {kind} needs lo <= hi, got lo={lo} hi={hi}"]
    if kind == "loguniform" and lo <= 0:
        return [f"{where}: loguniform needs lo > 0, got lo={lo}"]
    if kind == "quniform" and args[2] <= 0:
        return [f"{where}: quniform needs a step q > 0, got q={args[2]}"]
    return []


def space_errors(space: Any) -> list[str]:
    """Problems in a ``__space__`` mapping (one message each); empty when it is valid. Runs nothing."""
    if not isinstance(space, dict):
        return [f"config.__space__ must be a mapping of parameter -> constant or distribution, "
                f"got {type(space).__name__}"]
    errors: list[str] = []
    for name, spec in space.items():
        if not isinstance(name, str) or not name:
            errors.append(f"config.__space__: parameter names must be non-empty strings, got {name!r}")
            continue
        # h / loss / valid_loss in the space are left to the library, which names its own rule for them
        if isinstance(spec, dict):
            errors.extend(_dist_errors(name, spec))
    return errors


def config_errors(config: Any) -> list[str]:
    """Problems in a whole ``config`` value: null, or ``{__space__: {...}}``."""
    if config is None:
        return []
    if isinstance(config, dict) and SPACE_KEY not in config:
        return []  # a plain mapping of values: passed to the library as it is (the library judges it)
    if not isinstance(config, dict) or set(config) != {SPACE_KEY}:
        return ["config must be null (the Auto class's default space), {__space__: {...}} or a plain mapping"]
    return space_errors(config[SPACE_KEY])


def _space_of(space_spec: Any) -> dict[str, Any] | None:
    """None for the class default; the ``__space__`` mapping otherwise (accepts the mapping itself too)."""
    if space_spec is None:
        return None
    if isinstance(space_spec, dict) and SPACE_KEY in space_spec:
        errors = config_errors(space_spec)
        space = space_spec[SPACE_KEY]
    else:
        errors = space_errors(space_spec)
        space = space_spec
    if errors:
        raise ValueError("invalid search space: " + "; ".join(errors))
    return space


# ------------------------------------------------------------------------------------------------ config building
# one sampler per distribution kind and backend ("const" is a literal value on both)
_OPTUNA = {
    "choice": lambda t, n, a: t.suggest_categorical(n, list(a)),
    "uniform": lambda t, n, a: t.suggest_float(n, a[0], a[1]),
    "loguniform": lambda t, n, a: t.suggest_float(n, a[0], a[1], log=True),
    # hi excluded, as in ray.tune.randint, so both backends sample the same integers
    "randint": lambda t, n, a: t.suggest_int(n, a[0], a[1] - 1),
    "quniform": lambda t, n, a: t.suggest_float(n, a[0], a[1], step=a[2]),
}
_RAY = {
    "choice": lambda tune, a: tune.choice(list(a)),
    "uniform": lambda tune, a: tune.uniform(a[0], a[1]),
    "loguniform": lambda tune, a: tune.loguniform(a[0], a[1]),
    "randint": lambda tune, a: tune.randint(a[0], a[1]),
    "quniform": lambda tune, a: tune.quniform(a[0], a[1], a[2]),
}


def _value(spec: Any, sample: Callable[[str, Any], Any]) -> Any:
    """A constant as it is; ``{kind: args}`` through ``sample(kind, args)`` (space_errors checked the kind)."""
    if not isinstance(spec, dict):
        return spec
    kind, args = next(iter(spec.items()))
    return args if kind == "const" else sample(kind, args)


def _optuna_value(trial: Any, name: str, spec: Any) -> Any:
    return _value(spec, lambda kind, args: _OPTUNA[kind](trial, name, args))


def _ray_value(tune: Any, spec: Any) -> Any:
    return _value(spec, lambda kind, args: _RAY[kind](tune, args))


def _takes_n_series(auto_cls: type) -> bool:
    return "n_series" in inspect.signature(auto_cls.__init__).parameters


def build_config(space_spec: Any, backend: str, auto_cls: type, h: int, n_series: int | None = None,
                 forced: dict[str, Any] | None = None) -> Callable[[Any], dict[str, Any]] | dict[str, Any]:
    """The ``config`` argument of an Auto class: a ``trial -> dict`` callable (optuna) or a dict of ``ray.tune``
    distributions (ray). ``space_spec`` is ``None`` (the class default space), ``{__space__: {...}}`` or the
    ``__space__`` mapping itself; ``forced`` constants are merged over every sampled config."""
    if backend not in BACKENDS:  # the Auto class itself rejects it, with its own message
        return None  # type: ignore[return-value]
    space = _space_of(space_spec)
    forced = dict(forced or {})
    if n_series is not None and _takes_n_series(auto_cls):
        # multivariate Autos check, for optuna, that the sampled config carries their n_series
        forced.setdefault("n_series", n_series)
    if space is None:
        if _takes_n_series(auto_cls):
            default = auto_cls.get_default_config(h=h, backend=backend, n_series=n_series)
        else:
            default = auto_cls.get_default_config(h=h, backend=backend)
        if backend == "optuna":
            def default_config(trial: Any) -> dict[str, Any]:
                return {**default(trial), **forced}

            return default_config
        return {**default, **forced}
    if backend == "optuna":
        def space_config(trial: Any) -> dict[str, Any]:
            return {**{name: _optuna_value(trial, name, spec) for name, spec in space.items()}, **forced}

        return space_config
    from ray import tune

    return {**{name: _ray_value(tune, spec) for name, spec in space.items()}, **forced}


# ------------------------------------------------------------------------------------------------ Auto constructor
def _split(qualname: str) -> tuple[str, str]:
    mod, _, short = qualname.rpartition(".")
    return mod, short


def auto_class(qualname: str) -> type:
    """The Auto class named by ``qualname`` (``neuralforecast.auto.AutoX`` or ``AutoX``); ValueError otherwise.
    Only ``neuralforecast.auto`` is ever imported."""
    mod, short = _split(qualname)
    if mod not in ("", AUTO_MODULE) or not short.startswith("Auto"):
        raise ValueError(f"{qualname!r} is not an Auto class of {AUTO_MODULE}")
    module = importlib.import_module(AUTO_MODULE)
    from neuralforecast.common._base_auto import BaseAuto

    cls = getattr(module, short, None)
    # neuralforecast.auto also imports models whose names start with Auto (Autoformer): only BaseAuto subclasses
    if not (inspect.isclass(cls) and issubclass(cls, BaseAuto) and cls is not BaseAuto):
        raise ValueError(f"{qualname!r} is not an Auto class of {AUTO_MODULE}")
    return cls


def is_auto(qualname: str) -> bool:
    mod, short = _split(qualname)
    if mod != AUTO_MODULE or not short.startswith("Auto"):  # cheap: no import for ordinary models
        return False
    try:
        auto_class(qualname)
    except (ValueError, ImportError):
        return False
    return True


def build_auto_kwargs(qualname: str, params: dict[str, Any], decode: Callable[[Any], Any],
                      trainer: dict[str, Any] | None, forced: dict[str, Any] | None = None,
                      num_samples: int | None = None) -> dict[str, Any]:
    """Keyword arguments for the Auto constructor from a plan step's (JSON) params.

    ``trainer`` (e.g. the quiet trainer kwargs) and ``forced`` (e.g. ``max_steps: 1`` for a miniature run) go into
    the config, merged over every sampled config (``forced`` wins over ``trainer``); every param but ``config`` is
    turned into objects by ``decode(value)``; ``num_samples``, when given, overrides the plan's value."""
    cls = auto_class(qualname)
    short = cls.__name__
    if short in UNSUPPORTED:
        raise ValueError(UNSUPPORTED[short])
    params = dict(params or {})
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ValueError(f"{short} takes no parameter(s) {unknown}: settings of the tuned model or its trainer "
                         f"belong in config.__space__ (accepted: {sorted(accepted)})")
    if "h" not in params:
        raise ValueError(f"{short} needs h")
    space_spec = params.pop("config", None)
    kw = {k: decode(v) for k, v in params.items()}
    if num_samples is not None:
        kw["num_samples"] = num_samples
    backend = kw.get("backend", inspect.signature(cls.__init__).parameters["backend"].default)
    sampler = seeded_search_alg(backend, "search_alg" in params)
    if sampler is not None:  # the miniature run then tries the real run's first sampled config
        kw["search_alg"] = sampler
    if isinstance(space_spec, dict) and SPACE_KEY not in space_spec:
        # a plain mapping is a config as the library takes it (constants for ray; optuna rejects a dict itself)
        kw["config"] = {**{k: decode(v) for k, v in space_spec.items()}, **(trainer or {}), **(forced or {})}
        return kw
    kw["config"] = build_config(space_spec, backend, cls, h=kw["h"], n_series=kw.get("n_series"),
                                forced={**(trainer or {}), **(forced or {})})
    return kw
