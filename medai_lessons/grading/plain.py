"""Plain data between the grader and a grading kernel: JSON, never pickle.

The grader decides every verdict itself; from the learner's kernel it accepts only values that
this codec rebuilds from JSON: ``None``, booleans, numbers (``nan`` and ``inf`` included),
strings, lists, tuples, dicts, NumPy arrays and scalars of numeric, boolean, text or date types
(no object arrays), pandas DataFrames and Series of such columns, and Keras models as their
configuration, weights and compile settings (rebuilt by Keras in safe mode, so a layer that
carries Python code is refused, and only when what it describes is small: a few kilobytes of
configuration must not make the grader allocate gigabytes). Anything else in the kernel stays
there and is reached through a *handle* (:class:`Handle`): the grader can call its methods and
read its attributes, each answer again plain data. No object of the learner's ever runs code in
the grader's process (no ``__eq__``, ``__array__`` or ``__float__`` of theirs).

The same module runs in the kernel (``medai_lessons.grading.agent`` encodes with it) and in
the grader (``medai_lessons.grading.remote`` decodes with it).
"""

from __future__ import annotations

import base64
import json
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

#: the largest array the grader accepts from a kernel, in bytes
MAX_ARRAY_BYTES = 256 * 1024**2
#: the deepest nesting of lists, tuples and dicts accepted
MAX_DEPTH = 32
#: the widest table accepted
MAX_COLUMNS = 10_000
#: the most Keras objects (layers, initialisers, ...) in one model's configuration: each takes
#: the grader time to rebuild (the chapters' models have at most about 100)
MAX_KERAS_OBJECTS = 500
#: the largest number a model's configuration may hold, random seeds apart: Keras builds what
#: it describes (an AUC's list of thresholds, a layer's outputs) before any check can run
MAX_CONFIG_NUMBER = 1_000_000
#: the most numbers a rebuilt model may hold beyond the weights sent with it (random seeds, a
#: metric's state): a configuration alone must not make the grader allocate what its message
#: did not carry
EXTRA_PARAMETERS = 1_000_000
#: the numbers an optimiser may keep per parameter when a compiled model is rebuilt (Adam with
#: ``amsgrad`` keeps three)
OPTIMIZER_SLOTS = 4
#: the most numbers all of a rebuilt model's layer outputs hold together for one sample: the
#: grader runs the model on a few samples (the chapters' models need at most about 0.7 M)
MAX_ACTIVATIONS = 4 * 1024**2
_KINDS = set("biufcUSMm")


class PlainDataError(ValueError):
    """A value that is not plain data (or a malformed message)."""


@dataclass(frozen=True)
class Handle:
    """An object that stays in the kernel, named by its number there."""

    id: int
    type: str
    callable: bool


@dataclass(frozen=True)
class Callback:
    """A function of the grader's handed to the learner's code (e.g. a gradient function):
    the kernel calls back to the grader with plain arguments."""

    id: int


def _exact(x, *types) -> bool:
    return type(x) in types


# --- encoding ---------------------------------------------------------------------------------

def _array(a: np.ndarray) -> dict:
    if a.dtype.kind not in _KINDS:
        raise PlainDataError(f"an array of dtype {a.dtype} is not plain data")
    return {"__ndarray__": base64.b64encode(a.tobytes(order="C")).decode("ascii"),
            "dtype": a.dtype.str, "shape": list(a.shape)}


def _float(x: float):
    if math.isfinite(x):
        return x
    return {"__float__": repr(x)}


def _keras_model(model, enc) -> dict:
    import keras

    config = keras.saving.serialize_keras_object(model)
    compiled = None
    try:
        if getattr(model, "compiled", False):
            compiled = model.get_compile_config()
    except Exception:  # noqa: BLE001 - an unusual compile setting: the grader sees none
        compiled = None
    return {"__keras_model__": enc(config), "weights": [enc(np.asarray(w))
                                                         for w in model.get_weights()],
            "compile": enc(compiled)}


def encode(value, handle=None, depth: int = 0):
    """``value`` as JSON-ready plain data. Objects that are not plain data are passed to
    ``handle(obj) -> Handle | Callback`` (kernel: keep it and name it), or refused."""
    if depth > MAX_DEPTH:
        raise PlainDataError("nested too deeply")

    def enc(x):
        return encode(x, handle, depth + 1)

    if value is None or _exact(value, bool, int, str):
        return value
    if _exact(value, float):
        return _float(value)
    if isinstance(value, np.generic) and type(value).__module__ == "numpy":
        if value.dtype.kind not in _KINDS:
            raise PlainDataError(f"a NumPy scalar of dtype {value.dtype} is not plain data")
        return {"__npscalar__": _array(np.asarray(value))}
    if _exact(value, np.ndarray) and (value.dtype.kind in _KINDS or handle is None):
        return _array(value)
    if _exact(value, list):
        return [enc(x) for x in value]
    if _exact(value, tuple):
        return {"__tuple__": [enc(x) for x in value]}
    if _exact(value, dict):
        return {"__dict__": [[enc(k), enc(v)] for k, v in value.items()]}
    if _exact(value, Handle):
        return {"__handle__": value.id, "type": value.type, "callable": value.callable}
    if _exact(value, Callback):
        return {"__callback__": value.id}
    module = type(value).__module__.split(".")[0]
    if module == "pandas" and type(value).__name__ in ("DataFrame", "Series"):
        return _pandas(value, enc)
    if module == "tensorflow" and hasattr(value, "numpy") and hasattr(value, "dtype"):
        try:
            return {"__tensor__": enc(np.asarray(value.numpy()))}
        except Exception:  # noqa: BLE001 - a symbolic tensor has no value: keep it as a handle
            pass
    if module == "keras" and _is_keras_model(value):
        try:
            return _keras_model(value, enc)
        except Exception:  # noqa: BLE001 - a model that cannot be described travels as a handle
            pass
    if handle is None:
        raise PlainDataError(f"a {type(value).__name__} is not plain data")
    return encode(handle(value), None, depth)


def _is_keras_model(value) -> bool:
    import keras

    return isinstance(value, keras.Model)


def _pandas(value, enc) -> dict:
    import pandas as pd

    def column(series):
        if series.dtype.kind in _KINDS:
            return enc(series.to_numpy())
        return {"__list__": [enc(_scalar(v)) for v in series.tolist()], "dtype": str(series.dtype)}

    index = {"values": column(pd.Series(value.index)), "name": enc(_scalar(value.index.name))}
    if isinstance(value, pd.Series):
        return {"__series__": column(value), "index": index, "name": enc(_scalar(value.name))}
    return {"__dataframe__": [[enc(_scalar(c)), column(value[c])] for c in value.columns],
            "index": index}


def _scalar(v):
    """A pandas cell as a plain Python value (NaN, None and strings kept)."""
    if isinstance(v, np.generic):
        return v.item()
    if v is None or _exact(v, bool, int, float, str):
        return v
    if type(v).__module__.startswith("pandas") and str(v) in ("NaT", "<NA>"):
        return None
    raise PlainDataError(f"a table cell of type {type(v).__name__} is not plain data")


# --- decoding ---------------------------------------------------------------------------------

def _decode_array(d: dict) -> np.ndarray:
    dtype = np.dtype(str(d["dtype"]))
    if dtype.kind not in _KINDS:
        raise PlainDataError(f"dtype {dtype} refused")
    shape = tuple(int(s) for s in d["shape"])
    if any(s < 0 for s in shape):
        raise PlainDataError("negative shape")
    raw = base64.b64decode(d["__ndarray__"], validate=True)
    if len(raw) > MAX_ARRAY_BYTES:
        raise PlainDataError(f"an array of {len(raw):,} bytes is too large")
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise PlainDataError("array bytes do not match its shape and dtype")
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape).copy()


def decode(data, handle=None, callback=None, depth: int = 0, keras_guard=None):
    """The value :func:`encode` described. ``handle(Handle)`` and ``callback(Callback)`` turn
    references into objects of the receiving side (default: the dataclasses themselves).
    ``keras_guard`` (the grader's: :mod:`medai_lessons.grading.runner`) has a say on each Keras
    model: ``vet(config_json, compile_json, weights)`` before it is rebuilt (raises
    PlainDataError to refuse it), ``attach(model, config_json, weights)`` after."""
    if depth > MAX_DEPTH:
        raise PlainDataError("nested too deeply")

    def dec(x):
        return decode(x, handle, callback, depth + 1, keras_guard)

    if data is None or _exact(data, bool, int, float, str):
        return data
    if _exact(data, list):
        return [dec(x) for x in data]
    if not _exact(data, dict) or len(data) == 0:
        raise PlainDataError(f"unexpected {type(data).__name__} in a message")
    if "__float__" in data:
        text = str(data["__float__"])
        if text not in ("nan", "inf", "-inf"):
            raise PlainDataError("bad float")
        return float(text)
    if "__ndarray__" in data:
        return _decode_array(data)
    if "__npscalar__" in data:
        return _decode_array(data["__npscalar__"])[()]
    if "__tuple__" in data:
        return tuple(dec(x) for x in data["__tuple__"])
    if "__dict__" in data:
        out = {}
        for key, value in data["__dict__"]:
            key = dec(key)
            if not isinstance(key, (str, int, float, bool, tuple, type(None))):
                raise PlainDataError("bad dict key")
            out[key] = dec(value)
        return out
    if "__tensor__" in data:
        return dec(data["__tensor__"])
    if "__series__" in data or "__dataframe__" in data:
        return _decode_pandas(data, dec)
    if "__keras_model__" in data:
        return _decode_keras(data, dec, keras_guard)
    if "__handle__" in data:
        h = Handle(int(data["__handle__"]), str(data.get("type", "?"))[:200],
                   bool(data.get("callable")))
        return handle(h) if handle else h
    if "__callback__" in data:
        c = Callback(int(data["__callback__"]))
        return callback(c) if callback else c
    raise PlainDataError(f"unknown entry {sorted(data)[:3]} in a message")


def _decode_pandas(data, dec):
    import pandas as pd

    def column(d):
        if isinstance(d, dict) and "__list__" in d:
            values = [dec(v) for v in d["__list__"]]
            return pd.Series(values, dtype="object" if d.get("dtype") == "object" else None)
        return pd.Series(dec(d))

    index = pd.Index(column(data["index"]["values"]), name=dec(data["index"]["name"]))
    if "__series__" in data:
        s = column(data["__series__"])
        s.index = index
        s.name = dec(data["name"])
        return s
    if len(data["__dataframe__"]) > MAX_COLUMNS:  # before a column is built
        raise PlainDataError(f"a table of {len(data['__dataframe__']):,} columns is too wide")
    columns = [(dec(name), column(values)) for name, values in data["__dataframe__"]]
    if not columns:
        return pd.DataFrame(index=index)
    frame = pd.concat([values.reset_index(drop=True) for _, values in columns], axis=1,
                      ignore_index=True)
    frame.columns = [name for name, _ in columns]
    frame.index = index
    return frame


def _decode_keras(data, dec, guard=None):
    """The model, or PlainDataError when it is too large (see :func:`decode` for ``guard``)."""
    import keras

    config = dec(data["__keras_model__"])
    compiled = dec(data["compile"])
    objects, largest = _survey_keras_config([config, compiled])
    if objects > MAX_KERAS_OBJECTS:
        raise PlainDataError(f"a model of {objects:,} Keras objects is too large to rebuild")
    if largest > MAX_CONFIG_NUMBER:
        raise PlainDataError(f"a model configured with the number {largest:,} is too large to "
                             "rebuild")
    weights = [dec(w) for w in data["weights"]]
    sent = sum(int(np.size(w)) for w in weights)
    text = json.dumps(config)  # before Keras rebuilds it: that changes the configuration
    if guard is not None:
        guard.vet(text, json.dumps(compiled), weights)
    with _parameters_at_most(sent + EXTRA_PARAMETERS):
        with keras.saving.custom_object_scope({}):
            model = keras.saving.deserialize_keras_object(config, safe_mode=True)
        if not isinstance(model, keras.Model):
            raise PlainDataError(f"a {type(model).__name__} came as a Keras model")
        activations = _activations_per_sample(model)
        if activations > MAX_ACTIVATIONS:
            raise PlainDataError(f"a model whose layers output {activations:,} numbers per "
                                 "sample is too large to run")
        if weights:
            model.set_weights(weights)
    if compiled:  # an optimiser's slots and the metrics' state (an AUC's thresholds...)
        params = sum(math.prod(w.shape) for w in model.weights)  # 0 for a model not built
        with _parameters_at_most(OPTIMIZER_SLOTS * params + EXTRA_PARAMETERS):
            model.compile_from_config(compiled)
    if guard is not None:
        guard.attach(model, text, weights)
    return model


def _survey_keras_config(config) -> tuple[int, float]:
    """How many serialised objects (dicts naming a class) a configuration holds at any depth,
    and the largest number in it other than a random seed (sizes such as a layer's units, an
    up-sampling factor or a metric's thresholds: their constructors run before any shape is
    known)."""
    count, largest, stack = 0, 0, [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += "class_name" in item
            stack.extend(value for key, value in item.items() if key != "seed")
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, (int, float)) and not isinstance(item, bool) \
                and math.isfinite(item):
            largest = max(largest, abs(item))
    return count, largest


def _activations_per_sample(model) -> int:
    """The numbers all layer outputs of a built model hold for one sample (an unknown size
    other than the batch's counts as 1)."""
    total = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for node in getattr(layer, "_inbound_nodes", ()):
            for tensor in node.output_tensors:
                total += math.prod(d or 1 for d in tuple(tensor.shape)[1:])
    return total


_budget = threading.local()


@contextmanager
def _parameters_at_most(count: int):
    """Within this context, Keras variables created on this thread may hold ``count`` numbers
    in all; the next one that would pass that is refused before it is allocated."""
    _bound_keras_variables()
    _budget.left = count
    try:
        yield
    finally:
        _budget.left = None


def _bound_keras_variables() -> None:
    """Make every Keras variable's shape pass the thread's budget (once per process)."""
    from keras.src.backend.common import variables

    cls = variables.Variable  # the base of every backend's variable
    if getattr(cls._validate_shape, "bounded", False):
        return
    original = cls._validate_shape

    def _validate_shape(self, shape):  # every variable's shape passes here before its value
        shape = original(self, shape)
        left = getattr(_budget, "left", None)
        if left is not None:
            _budget.left = left - math.prod(shape)
            if _budget.left < 0:
                raise PlainDataError("the model's configuration makes more parameters than the "
                                     "weights sent with it")
        return shape

    _validate_shape.bounded = True
    cls._validate_shape = _validate_shape
