"""The grading kernel's side of the grader's remote calls (runs in the learner's kernel).

The grader (``medai_lessons.grading.remote``) executes ``serve(request)`` in the kernel; this
module looks up the learner's names, calls the learner's functions with the grader's plain
arguments, and publishes the answer as plain data (``medai_lessons.grading.plain``) in a
display message of its own type. It decides nothing: an answer cell that replaced its call of a
learner's function would only change what the learner's own functions seem to return, which is
what the grader grades anyway. Probes (``medai_lessons.grading.probes``) are the exception:
course code whose observations the grader trusts. They are bound here when the kernel starts
(``guard.install`` imports this module before the notebook's first cell), so an answer cell
that replaces a function of ``probes`` changes nothing the grader asks for; a notebook whose
text reaches further into this machinery gets no probe run at all
(``medai_lessons.grading.notebook_scan``). A function of the grader's handed to the learner's
code (a gradient function, say) calls back to the grader through the kernel's input channel.
"""

from __future__ import annotations

import inspect
import json
import traceback
import types
import warnings

import numpy as np

from medai_lessons.grading import plain, probes

#: the display type of the answers
MIME = "application/x-medai-grading+json"
#: the input prompt that marks a call back to the grader
CALLBACK_KEY = "__medai_callback__"

_objects: dict[int, object] = {}

def _bound_probes():
    """The probes as they were when this module was imported, at the kernel's start, behind
    a read-only view held in a closure."""
    table = types.MappingProxyType({
        f"{probes.__name__}:{name}": fn for name, fn in vars(probes).items()
        if inspect.isfunction(fn) and fn.__module__ == probes.__name__
        and not name.startswith("_")})
    return table.get


_probe_named = _bound_probes()


def _keep(obj) -> plain.Handle:
    key = len(_objects) + 1
    _objects[key] = obj
    t = type(obj)
    return plain.Handle(key, f"{t.__module__}.{t.__qualname__}", callable(obj))


def _namespace() -> dict:
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def _target(spec):
    if "handle" in spec:
        return _objects[int(spec["handle"])]
    return _namespace()[spec["name"]]


def _callback(cb: plain.Callback):
    def call_grader(*args, **kwargs):
        prompt = json.dumps({CALLBACK_KEY: cb.id, "args": plain.encode(list(args)),
                             "kwargs": plain.encode(dict(kwargs))})
        reply = json.loads(input(prompt))
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error", "the grader's function failed"))
        return _decode(reply["result"])

    return call_grader


def _decode(data):
    return plain.decode(data, handle=lambda h: _objects[h.id], callback=_callback)


def _encode(value):
    return plain.encode(value, handle=_keep)


def _describe(obj) -> dict:
    try:
        params = [[p.name, p.kind.name, p.default is not inspect.Parameter.empty]
                  for p in inspect.signature(obj).parameters.values()]
    except (TypeError, ValueError):
        params = None
    return {"params": params, "name": str(getattr(obj, "__name__", ""))[:200]}


def _call(req):
    func = _target(req["target"])
    args = _decode(req["args"])
    kwargs = _decode(req["kwargs"])
    with warnings.catch_warnings(), np.errstate(**req.get("errstate", {})):
        if req.get("warnings_as_errors"):
            warnings.simplefilter("error", RuntimeWarning)
        result = func(*args, **kwargs)
    after = []
    for a in args:
        mutable = isinstance(a, (np.ndarray, list, dict)) or (
            type(a).__module__.split(".")[0] == "pandas" and type(a).__name__ in ("DataFrame",
                                                                                  "Series"))
        after.append(_encode(a) if mutable else None)
    return {"value": _encode(result), "args_after": after}


def _probe(req):
    fn = _probe_named(str(req["probe"]))
    if fn is None:
        raise ValueError(f"no probe {req['probe']!r} in {probes.__name__}")
    return {"value": _encode(fn(_target(req["target"]), *_decode(req["args"])))}


def _dispatch(req):
    op = req["op"]
    if op == "lookup":
        ns = _namespace()
        return {"values": {n: (_encode(ns[n]) if n in ns else {"__missing__": True})
                           for n in req["names"]}}
    if op == "call":
        return _call(req)
    if op == "getattr":
        return {"value": _encode(getattr(_target(req["target"]), req["name"]))}
    if op == "describe":
        return _describe(_target(req["target"]))
    if op == "probe":
        return _probe(req)
    raise ValueError(f"unknown request {op!r}")


def serve(request: str) -> None:
    """Answer one request of the grader (JSON text) with a display message."""
    from IPython.display import publish_display_data

    req = json.loads(request)
    try:
        answer = {"id": req["id"], "ok": True, **_dispatch(req)}
    except BaseException as exc:  # noqa: BLE001 - the learner's error is the grader's data
        frames = traceback.format_exception(type(exc), exc, exc.__traceback__)
        answer = {"id": req["id"], "ok": False, "ename": type(exc).__name__,
                  "evalue": str(exc)[:4000], "traceback": "".join(frames[-6:])[-4000:]}
    try:
        text = json.dumps(answer)
    except (TypeError, ValueError, plain.PlainDataError) as exc:
        text = json.dumps({"id": req["id"], "ok": False, "ename": "PlainDataError",
                           "evalue": str(exc)[:4000], "traceback": ""})
    publish_display_data({MIME: text})
