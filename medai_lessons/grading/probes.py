"""Probes: checks' observations made where the learner's function is.

A check that needs the learner's code and TensorFlow objects in one process (a gradient
through the learner's loss, a training step on live networks, a look at the learner's code) is
a probe of this module: ``medai_lessons.grading.remote.run_probe`` runs it in the learner's
kernel while autograding (in this process otherwise) and it returns plain observations, which
the checker judges itself. A probe decides nothing. This module is the only checking code a
grading kernel has (with ``agent``, ``plain`` and ``guard``): the checkers themselves are not
in its copy of the package.
"""

from __future__ import annotations

import dis
import inspect
import types

import numpy as np

_PACKAGE = "medai_lessons"
_GLOBAL_OPS = {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "LOAD_FROM_DICT_OR_GLOBALS"}


def _tf():
    import tensorflow as tf

    return tf


# --- the learner's code, for assert_own_implementation ---------------------------------------

def _from_package(obj) -> bool:
    """True for the course package's modules, functions, classes and registries."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__ == _PACKAGE or obj.__name__.startswith(_PACKAGE + ".")
    module = getattr(obj, "__module__", None) or ""
    if module == _PACKAGE or module.startswith(_PACKAGE + "."):
        return True
    if isinstance(obj, (dict, list, tuple, set)):
        values = obj.values() if isinstance(obj, dict) else obj
        return any(_from_package(v) for v in list(values)[:200]
                   if not isinstance(v, (dict, list, tuple, set)))
    return False


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _global_names(code: types.CodeType) -> tuple[set[str], set[str]]:
    """Names a function reads as globals (not attribute names like the ``tanh`` of
    ``np.tanh``), and the modules it imports, in its body and nested functions."""
    names, imports = set(), set()
    for co in _code_objects(code):
        for ins in dis.get_instructions(co):
            if ins.opname in _GLOBAL_OPS:
                names.add(ins.argval)
            elif ins.opname == "IMPORT_NAME":
                imports.add(ins.argval)
    return names, imports


def _own_implementation_problems(func, seen: set[int], depth: int = 0):
    func = inspect.unwrap(func)
    if id(func) in seen or depth > 5:
        return
    seen.add(id(func))
    code = getattr(func, "__code__", None)
    if code is None:
        return
    namespace = getattr(func, "__globals__", {})
    names, imports = _global_names(code)
    for module in imports:
        if module == _PACKAGE or module.startswith(_PACKAGE + "."):
            yield f"your code imports {module}, the course's reference code"
    reachable = [(n, namespace[n]) for n in sorted(names) if n in namespace]
    for cell in func.__closure__ or ():
        try:
            reachable.append(("<closure>", cell.cell_contents))
        except ValueError:
            continue
    reachable += [("<default argument>", d) for d in (func.__defaults__ or ())]
    for name, obj in reachable:
        if _from_package(obj):
            label = getattr(obj, "__name__", type(obj).__name__)
            yield f"your code uses '{name}', which is the course's reference code ({label})"
        elif inspect.isfunction(obj):
            yield from _own_implementation_problems(obj, seen, depth + 1)


def own_implementation_report(func) -> list[str]:
    """What :func:`assert_own_implementation`'s scan finds, as plain text (runs in the
    grading kernel: a probe of ``medai_lessons.grading.remote``)."""
    if _from_package(func) or _from_package(inspect.unwrap(func)):
        return [f"{func!r} is the course's reference implementation"]
    return list(_own_implementation_problems(func, set()))



# --- chapter 5 --------------------------------------------------------------------------------

def _watched_optimizer(inner, name: str, log: list):
    """An optimizer that notes which variables it is asked to update, then updates them. The
    log and the name are held by the methods' closure, not by the object the learner's
    function is given (a red-team helper, round 10, appended the entry a check looks for to an
    attribute that held the log)."""

    def note(variables) -> None:
        log.append((name, [id(v) for v in variables]))

    class Watched:
        __slots__ = ()

        def apply_gradients(self, grads_and_vars, *args, **kwargs):
            pairs = list(grads_and_vars)
            note([v for g, v in pairs if g is not None])
            return inner.apply_gradients(pairs, *args, **kwargs)

        def apply(self, grads, trainable_variables=None, *args, **kwargs):
            grads = list(grads)
            if trainable_variables is not None:
                trainable_variables = list(trainable_variables)
                pairs = zip(grads, trainable_variables, strict=False)
                note([v for g, v in pairs if g is not None])
            else:
                note(list(inner.variables))
            return inner.apply(grads, trainable_variables, *args, **kwargs)

        def minimize(self, loss, var_list, tape=None):
            var_list = list(var_list)
            note(var_list)
            return inner.minimize(loss, var_list, tape=tape)

        def __getattr__(self, attr):
            return getattr(inner, attr)

    return Watched()


def _tiny_gan(latent_dim: int, image_shape, seed: int, noise_free: bool):
    """A generator (noise -> image, ignoring the noise when ``noise_free``) and a
    discriminator without dropout or batch normalization, seeded."""
    import keras

    keras.utils.set_random_seed(seed)
    size = int(np.prod(image_shape))
    first = ([keras.layers.Lambda(lambda z: z[:, :1] * 0.0, name="ignore_noise")]
             if noise_free else [])
    generator = keras.Sequential([keras.Input(shape=(latent_dim,)), *first,
                                  keras.layers.Dense(size, activation="tanh"),
                                  keras.layers.Reshape(tuple(image_shape))], name="g")
    discriminator = keras.Sequential([keras.Input(shape=tuple(image_shape)),
                                      keras.layers.Flatten(),
                                      keras.layers.Dense(5, activation="tanh"),
                                      keras.layers.Dense(1)], name="d")
    return generator, discriminator


def loss_value_and_gradients(loss_fn, arrays) -> dict:
    """Probe (runs where the learner's function is, see :func:`remote.run_probe`): the loss of
    ``arrays`` as TensorFlow variables, whether it is a tensor, and its gradients, as plain
    data."""
    tf = _tf()
    variables = [tf.Variable(a) for a in arrays]
    with tf.GradientTape() as tape:
        value = loss_fn(*variables)
    out = {"is_tensor": bool(tf.is_tensor(value)), "type": type(value).__name__,
           "repr": repr(value)[:200], "value": None, "grads": None}
    if value is None:
        return out
    try:
        out["value"] = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        return out
    if out["is_tensor"]:
        out["grads"] = [None if g is None else np.array(g, dtype=np.float64)
                        for g in tape.gradient(value, variables)]
    return out


def _variable_index(g, d) -> dict:
    out = {id(v): ["g", i] for i, v in enumerate(g.trainable_variables)}
    out.update({id(v): ["d", i] for i, v in enumerate(d.trainable_variables)})
    return out


def train_step_probe(train_step, spec: dict) -> dict:
    """Probe (runs where the learner's function is, see :func:`remote.run_probe`): build the
    two networks ``spec`` describes, call ``train_step`` on them with watched optimizers, and
    report as plain data what it returned, which weights each optimizer was given and the
    weights afterwards."""
    import keras

    tf = _tf()
    if spec.get("g_config"):
        g = keras.saving.deserialize_keras_object(spec["g_config"])
        d = keras.saving.deserialize_keras_object(spec["d_config"])
    else:
        g, d = _tiny_gan(spec["latent_dim"], tuple(spec["image_shape"]), spec["seed"],
                         noise_free=spec["noise_free"])
    g.set_weights(spec["g_weights"])
    d.set_weights(spec["d_weights"])
    log: list = []

    def optimizer(name):
        inner = (keras.optimizers.SGD(learning_rate=spec["lr"]) if spec["optimizer"] == "sgd"
                 else keras.optimizers.Adam(spec["lr"]))
        return _watched_optimizer(inner, name, log) if spec.get("watch", True) else inner

    g_opt, d_opt = optimizer("g_opt"), optimizer("d_opt")
    # compiled means compiled: a notebook that told TensorFlow to run tf.function's code
    # eagerly (before, or from inside train_step) is reported, not followed
    eager = bool(tf.config.functions_run_eagerly())
    if spec.get("compile"):
        tf.config.run_functions_eagerly(False)
    step = tf.function(train_step) if spec.get("compile") else train_step
    real = tf.constant(spec["real"], dtype=tf.float32)
    results = []
    for _ in range(spec.get("calls", 1)):
        result = step(g, d, g_opt, d_opt, real, spec["latent_dim"])
        eager = eager or bool(tf.config.functions_run_eagerly())
        if isinstance(result, (tuple, list)) and len(result) == 2:
            values = []
            for value in result:
                try:
                    values.append(np.array(value, dtype=np.float64))
                except (TypeError, ValueError):
                    values.append(repr(value)[:120])
            results.append(values)
        else:
            results.append(repr(result)[:120])
    index = _variable_index(g, d)
    return {"results": results, "eager": eager,
            "log": [[name, [index.get(v, ["?", -1]) for v in ids]] for name, ids in log],
            "g_after": [v.numpy() for v in g.trainable_variables],
            "d_after": [v.numpy() for v in d.trainable_variables],
            "g_count": len(g.trainable_variables), "d_count": len(d.trainable_variables)}


