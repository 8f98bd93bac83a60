"""Plain data between the grader and a grading kernel: JSON, never pickle.

The grader decides every verdict itself; from the learner's kernel it accepts only values that
this codec rebuilds from JSON: ``None``, booleans, numbers (``nan`` and ``inf`` included),
strings, lists, tuples, dicts, NumPy arrays and scalars of numeric, boolean, text or date types
(no object arrays), pandas DataFrames and Series of such columns, and Keras models as their
configuration, weights and compile settings (rebuilt by Keras in safe mode, so a layer that
carries Python code is refused). Anything else in the kernel stays there and is reached through
a *handle* (:class:`Handle`): the grader can call its methods and read its attributes, each
answer again plain data. No object of the learner's ever runs code in the grader's process
(no ``__eq__``, ``__array__`` or ``__float__`` of theirs).

The same module runs in the kernel (``medai_lessons.grading.agent`` encodes with it) and in
the grader (``medai_lessons.grading.remote`` decodes with it).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np

#: the largest array the grader accepts from a kernel, in bytes
MAX_ARRAY_BYTES = 256 * 1024**2
#: the deepest nesting of lists, tuples and dicts accepted
MAX_DEPTH = 32
#: the widest table accepted
MAX_COLUMNS = 10_000
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


def decode(data, handle=None, callback=None, depth: int = 0):
    """The value :func:`encode` described. ``handle(Handle)`` and ``callback(Callback)`` turn
    references into objects of the receiving side (default: the dataclasses themselves)."""
    if depth > MAX_DEPTH:
        raise PlainDataError("nested too deeply")

    def dec(x):
        return decode(x, handle, callback, depth + 1)

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
        return _decode_keras(data, dec)
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


def _decode_keras(data, dec):
    import keras

    config = dec(data["__keras_model__"])
    with keras.saving.custom_object_scope({}):
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    weights = [dec(w) for w in data["weights"]]
    if weights:
        model.set_weights(weights)
    compiled = dec(data["compile"])
    if compiled:
        model.compile_from_config(compiled)
    return model
