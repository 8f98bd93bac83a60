"""What a submitted notebook's own text shows, read in the grader before its kernel runs.

Two things the grading kernel cannot be trusted to say about itself, because an answer cell
runs there first:

- **Could the notebook change what the course's probes report?** A probe
  (:mod:`medai_lessons.grading.probes`) is course code that runs in the learner's kernel and
  reports plain observations (a loss's gradients, the weights after a training step, which
  names a function reads). Code that replaces it, or what it relies on (NumPy's or
  TensorFlow's functions, the agent that runs it), could make it report what the checker
  expects. :func:`scan` lists every line of the notebook's code that reaches into that
  machinery: imports beyond the scientific libraries, dynamic code (``exec``, ``eval``,
  ``__import__``, most magics), attributes of modules or classes assigned or deleted, dunder
  attributes, the course's grading modules. The checks that run a probe on the learner's
  function (:data:`PROBE_CHECKS`) then fail with the lines listed
  (:attr:`NotebookScan.tampering`), and the own-implementation verdict rests on the text alone;
  every other check compares plain data in the grader and is unaffected. The course's own
  cells use none of this (a test reads them all), and ``medai-course check`` shows a learner
  such lines before they submit.
- **Does an exercise's function reach the course's own code?** :meth:`NotebookScan.course_code`
  follows, in the notebook's text, what the exercise's name is bound to and the names its
  code reads, through the learner's own functions, classes and aliases, to an import of the
  course package. Unlike the kernel's own-implementation report, the text cannot be forged by
  the code it describes.

Read only in the grader's process (``medai_lessons.grading.execute``), never in the kernel.
The rules read code, not run it: a determined student can still write code they do not catch
(the instructor guide says so); they close the ways that were found and make the rest visible
in the notebook an instructor reads.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

_PACKAGE = "medai_lessons"

#: the checks that run a probe on the learner's function (besides the own-implementation
#: scan, which the text decides when a notebook reaches the probes): refused for such a notebook
PROBE_CHECKS = ("check_discriminator_loss", "check_generator_loss", "check_train_step")

#: top-level modules a notebook may import: the scientific stack and harmless standard modules
#: (plus the course package itself, whose grading modules are refused below)
ALLOWED_IMPORTS = frozenset({
    _PACKAGE, "numpy", "scipy", "pandas", "sklearn", "sksurv", "tensorflow", "keras",
    "matplotlib", "seaborn", "skimage", "PIL", "pydicom", "wfdb", "tqdm", "threadpoolctl",
    "math", "cmath", "random", "statistics", "collections", "itertools", "functools",
    "operator", "typing", "dataclasses", "enum", "string", "re", "time", "datetime", "decimal",
    "fractions", "heapq", "bisect", "copy", "warnings", "textwrap", "pprint", "json", "abc",
    "numbers", "ast", "__future__", "os", "pathlib", "glob", "csv", "gzip", "zipfile",
    "hashlib", "base64", "platform", "shutil", "tempfile", "io", "logging", "traceback",
    "contextlib",
})
#: standard modules that run code given as text, with what to use instead
RUNS_TEXT = {"timeit": "runs code given as text (time a line with the %timeit magic, whose "
                       "code is read like the cell's)"}
#: parts of allowed modules that import code by name (logging's configuration factories)
DENIED_MODULES = frozenset({"logging.config"})

#: attribute names that lead to the interpreter's or the grader's machinery
DENIED_ATTRIBUTES = frozenset({
    "grading", "agent", "probes", "plain", "guard", "sys", "os", "gc", "builtins", "ctypes",
    "ctypeslib", "importlib", "inspect", "types", "subprocess", "pickle", "marshal", "dis",
    "f_globals", "f_locals", "f_back", "gi_frame", "tb_frame", "cell_contents",
    "enable_unsafe_deserialization", "read_pickle", "run_line_magic", "run_cell_magic",
    "run_cell", "user_ns", "dynlib", "_dynlib", "CDLL", "cdll", "pythonapi", "load_library",
    "load_op_library", "attrgetter", "methodcaller", "get_type_hints", "ForwardRef",
    "modules", "_PROBES", "dictConfig", "fileConfig", "listen",
    # modules that other libraries hold and that load code from data or import by name:
    # joblib and pickle_compat unpickle, multiprocessing's reduction too, pkgutil and pydoc
    # import a module named by a string, site runs the .pth files of a folder
    "joblib", "pickle_compat", "multiprocessing", "pkgutil", "pydoc", "_site", "addsitedir",
    "addpackage",
    # TensorFlow told to run tf.function's code eagerly: the check that train_step works
    # compiled would see Python run again at every call
    "run_functions_eagerly", "experimental_run_functions_eagerly",
    # objects looked up by a name held in text (a format field "0.__globals__[os]..."), and
    # the frames of the running code with their builtins (setattr, __import__)
    "get_field", "Formatter", "vformat", "f_builtins", "walk_stack", "walk_tb",
    "currentframe", "cr_frame", "ag_frame", "tb_next",
    # copies attributes named in text onto any object (update_wrapper(module, ...))
    "update_wrapper",
})

#: what of ``os`` starts a process or writes through a file descriptor (``os.environ``,
#: ``os.path`` and ``os.listdir`` are fine)
OS_DENIED = frozenset({
    "system", "popen", "fork", "forkpty", "execl", "execle", "execlp", "execlpe", "execv",
    "execve", "execvp", "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv",
    "spawnve", "spawnvp", "spawnvpe", "posix_spawn", "posix_spawnp", "kill", "killpg", "open",
    "write", "pwrite", "writev", "pwritev", "dup", "dup2", "openpty", "memfd_create",
    "register_at_fork",
})

#: modules whose settings an honest notebook changes (plotting, table display): assigning
#: their attributes cannot change what a probe reports
SETTINGS_MODULES = frozenset({"matplotlib", "pandas", "seaborn", "tqdm", "warnings", "os",
                              "logging", "pathlib"})

#: what of a settings module an honest notebook changes (``pd.options.display.max_rows``,
#: ``plt.rcParams[...]``, ``os.environ[...]``, ``logging.getLogger(...).disabled``, or
#: ``rcParams`` imported by name): anything else reached through such a module
#: (``pd.core.common.np``, ``matplotlib.cbook.np``, ``tqdm.keras.keras``) can be NumPy,
#: TensorFlow or Keras themselves
SETTINGS_NAMES = frozenset({"options", "rcParams", "environ", "getLogger"})

#: names whose use runs or reaches code the text does not show
DENIED_NAMES = frozenset({
    "__import__", "exec", "eval", "compile", "vars", "locals", "get_ipython", "breakpoint",
    "setattr", "delattr", "__builtins__", "__loader__", "__spec__",
})

#: dunder attributes an honest notebook uses (a Keras layer's ``super().__init__``,
#: ``np.__version__``, ``x.__class__.__name__``; a class reached this way is guarded like one
#: from ``type()``)
ALLOWED_DUNDERS = frozenset({"__init__", "__call__", "__name__", "__qualname__", "__doc__",
                             "__len__", "__version__", "__class__", "__file__", "__module__"})

#: keyword arguments that load code from data
DENIED_KEYWORDS = frozenset({"allow_pickle", "safe_mode"})
#: loaders with such an argument, and how many of their arguments come before it
#: (``np.load(file, mmap_mode, allow_pickle)``, NumPy's ``read_array(fp, allow_pickle)``,
#: ``keras.saving.load_model(filepath, custom_objects, compile, safe_mode)``): passed by
#: position, or through ``**``, it would not be seen
LOADERS = {"load": 2, "read_array": 1, "load_model": 3}

_DUNDER = re.compile(r"^__\w+__$")


@dataclass(frozen=True)
class Finding:
    """One line of the notebook: where it is and what it does."""

    cell: int      # the cell's position in the notebook, from 1
    line: int      # the line within the cell, from 1
    code: str      # the line, shortened
    why: str

    def __str__(self) -> str:
        return f"cell {self.cell}, line {self.line}: `{self.code}` ({self.why})"


@dataclass
class _Binding:
    """What a top-level name is bound to, as far as the text shows."""

    kind: str     # "course", "import", "def", "value", or "held" (put into a container)
    where: Finding
    refs: set[str] = field(default_factory=set)     # names the bound code or value reads
    calls: set[str] = field(default_factory=set)    # names it calls (followed if notebook code)
    module: str = ""
    top: bool = True      # a statement of a cell (the last one of a name is the one in force)
    attrs: set[str] = field(default_factory=set)    # attribute names the code or value reads
    end: int = 0          # the last line of the statement, in its cell (0: its first line)


def is_python(source: str) -> bool:
    """Whether ``source`` parses as Python as it is (a cell without magics)."""
    try:
        ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def python_source(cell_source: str) -> str:
    """A cell's text as Python (IPython's magics and shell escapes become calls)."""
    if is_python(cell_source):
        return cell_source  # already Python: IPython would run it as it is
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(cell_source)
    except (Exception, RecursionError):  # noqa: BLE001 - what the kernel would also fail to read
        return cell_source


def _root(node: ast.AST) -> ast.AST:
    """The start of a chain of attributes, items and calls (``a`` of ``a.b[0].c()``)."""
    while True:
        if isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            return node


def _chain_root_name(node: ast.AST) -> str | None:
    """``a`` for a pure chain ``a.b.c`` (no call, no subscript), else None."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


#: magics that run code written in the cell itself (read as the cell's own code), and
#: ``%matplotlib``, which runs none
CODE_MAGICS = frozenset({"time", "timeit", "capture"})
_NO_CODE_MAGICS = frozenset({"matplotlib", "pinfo", "pinfo2", "psearch", "whos", "who",
                             "pwd", "precision"})
#: magics that start no process and run no code of the notebook's, each with the whole
#: argument it may take: showing the environment, reloading changed modules (nothing a grading
#: kernel can write is on its import path), the session's history (not written to a file).
#: Anything else after them (``%env A=1``, ``%load_ext mine``, ``%history -f x``) is read as
#: before. Shell lines (``!nvidia-smi``) and ``%pip`` stay refused: a process started there
#: runs the code of a library or an environment variable (``LD_PRELOAD``) that the notebook
#: set beforehand, where the reading cannot see it.
_ARGUMENT_MAGICS = {
    "env": re.compile(r"\w*"),
    "load_ext": re.compile(r"autoreload"),
    "reload_ext": re.compile(r"autoreload"),
    "autoreload": re.compile(r"[0-3]?"),
    "history": re.compile(r"( *(-[nopt]|-l *\d+|-g *\w*|\d+(-\d+)?))*"),
}
#: the options of ``%timeit``/``%time``/``%%capture`` before the code (``-n 10 -r 3 -q``)
_MAGIC_OPTIONS = re.compile(r"^(\s*-[A-Za-z]+(\s+[\d.]+)?)*\s*")


class _Cell:
    def __init__(self, number: int, source: str, texts: bool = True):
        self.number = number
        self.lines = source.splitlines()
        try:
            self.tree: ast.Module | None = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            self.tree = None  # the kernel cannot run it either
        #: the code that ``%time``/``%%timeit``/``%%capture`` lines of the cell run
        self.inner: list[_Cell] = []
        #: texts of the cell that read as Python (an annotation that ``get_type_hints`` would
        #: evaluate, say): read for their lines that reach the machinery, binding nothing
        self.texts: list[_Cell] = []
        self.allowed: set[int] = set()  # the nodes of those magics' calls
        for node in ast.walk(self.tree) if self.tree is not None else ():
            code = _magic_code(node)
            if code is None:
                continue
            inner = [_Cell(number, text) for text in code]
            if all(c.tree is not None for c in inner):
                self.inner += inner
                self.allowed |= {id(node.func), id(node.func.value.func)}
        for node in ast.walk(self.tree) if self.tree is not None and texts else ():
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and 2 < len(node.value) < 20_000 and ("(" in node.value or "." in node.value):
                text = _Cell(number, node.value, texts=False)
                if text.tree is not None:
                    self.texts.append(text)

    def finding(self, node: ast.AST, why: str) -> Finding:
        line = getattr(node, "lineno", 1)
        text = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        return Finding(self.number, line, text[:100], why)


#: names that ``from PACKAGE import NAME`` binds to a module in the libraries a notebook uses
SUBMODULE_NAMES = frozenset({
    "keras", "layers", "losses", "optimizers", "activations", "ops", "backend", "utils", "nn",
    "math", "linalg", "random", "config", "models", "metrics", "callbacks", "initializers",
    "regularizers", "saving", "distribute", "experimental", "data", "io", "image", "signal",
    "raw_ops", "compat", "v1", "v2", "testing", "fft", "lib", "core", "python", "pyplot",
    "ndimage", "special", "stats", "applications", "datasets", "preprocessing", "src",
    "framework", "eager", "autograph", "ma", "polynomial", "strings", "sparse", "train",
    "types", "dtypes", "constraints", "mixed_precision", "tree", "export", "quantizers"})


class _Imported(dict):
    """Names bound to a module, or to something of one (name -> the top-level module), and
    which of them are modules themselves (``modular``), as far as the text shows."""

    def __init__(self):
        super().__init__()
        self.modular: set[str] = set()
        #: names bound only to a literal list, tuple, set or dict that holds some: setting one
        #: of its items changes the container, not a module
        self.holders: set[str] = set()


def _imported(cells: list[_Cell]) -> _Imported:
    """Names bound to a module, or to something of a module, by an import or an alias: the
    top-level module each comes from ("" where an alias does not say)."""
    names = _Imported()
    for cell in cells:
        for node in ast.walk(cell.tree):
            if isinstance(node, ast.Import):
                names.update({(a.asname or a.name).split(".")[0]: a.name.split(".")[0]
                              for a in node.names})
                names.modular.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.update({a.asname or a.name: (node.module or "").split(".")[0]
                              for a in node.names})
                names.modular.update(a.asname or a.name for a in node.names
                                     if a.name in SUBMODULE_NAMES)
    # aliases (m = np.linalg; T = type(x); for m in (np, tf): ...), followed once each along
    # the edges source name -> bound name: linear in the notebook's size
    edges: dict[str, list[str]] = {}
    todo = list(names)
    holders: set[str] = set()  # names only ever bound to a literal container
    others: set[str] = set()
    for cell in cells:
        for node in ast.walk(cell.tree):
            pairs = []
            if isinstance(node, ast.Assign):
                pairs = [(t, node.value) for t in node.targets]
            elif isinstance(node, (ast.For, ast.comprehension)):
                pairs = [(node.target, node.iter)]
            elif isinstance(node, ast.NamedExpr):
                pairs = [(node.target, node.value)]
            for target, value in pairs:
                always, sources = _alias_sources(value)
                bound = [n.id for n in _leaves(target) if isinstance(n, ast.Name)]
                holding = isinstance(value, (ast.Tuple, ast.List, ast.Set, ast.Dict)) \
                    and not isinstance(node, (ast.For, ast.comprehension))
                (holders if holding else others).update(bound)
                for name in bound:
                    if always and name not in names:
                        names[name] = ""  # a class: its attributes are everyone's
                        names.modular.add(name)
                        todo.append(name)
                    for source in sources:
                        edges.setdefault(source, []).append(name)
    while todo:
        source = todo.pop()
        for name in edges.pop(source, []):
            if name not in names:
                names[name] = names[source]
                if source in names.modular:
                    names.modular.add(name)
                todo.append(name)
    names.holders = holders - others
    return names


def _alias_sources(value: ast.AST) -> tuple[bool, set[str]]:
    """(whether ``value`` is always something to guard, such as a class from ``type()``; the
    names whose module it is, or holds, something of, if they are one)."""
    if isinstance(value, (ast.Tuple, ast.List, ast.Set, ast.Dict, ast.IfExp, ast.BoolOp,
                          ast.Starred, ast.NamedExpr)):
        elts = {ast.Dict: lambda v: [e for e in v.values if e is not None],
                ast.IfExp: lambda v: [v.body, v.orelse], ast.BoolOp: lambda v: v.values,
                ast.Starred: lambda v: [v.value], ast.NamedExpr: lambda v: [v.value],
                }.get(type(value), lambda v: v.elts)(value)
        parts = [_alias_sources(v) for v in elts]
        return any(p[0] for p in parts), {n for p in parts for n in p[1]}
    if isinstance(value, ast.Subscript):  # an item of a container that holds a module
        return _alias_sources(value.value)
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
        if value.func.id == "type" or (  # a class, as getattr(x, "__class__") gives it
                value.func.id == "getattr" and len(value.args) >= 2
                and isinstance(value.args[1], ast.Constant)
                and _DUNDER.match(str(value.args[1].value))):
            return True, set()
        if value.func.id in ("getattr", "iter", "list", "tuple", "reversed") and value.args:
            return _alias_sources(value.args[0])
    if isinstance(value, ast.Call):  # what a call is given, it may return (``[np].pop()``)
        return False, _held_names(value)
    node = value
    while isinstance(node, ast.Attribute):
        if node.attr == "__class__":
            return True, set()
        node = node.value
    return False, ({node.id} if isinstance(node, ast.Name) else set())


def _held_names(call: ast.Call) -> set[str]:
    """The bare names (``np``, not ``np.zeros``) among what ``call`` is given: its arguments,
    and its receiver when that is not a plain name or chain of attributes (``[np].pop()``,
    ``{"m": np}.get("m")``, ``next(m for m in [np])``): the call may return any of them."""
    parts: list[ast.AST] = [*call.args, *(k.value for k in call.keywords)]
    receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
    if receiver is not None and _chain_root_name(receiver) is None:
        parts.append(receiver)
    names: set[str] = set()
    for part in parts:
        inner = {id(n.value) for n in ast.walk(part) if isinstance(n, ast.Attribute)}
        inner |= {id(n.func) for n in ast.walk(part) if isinstance(n, ast.Call)}
        names |= {n.id for n in ast.walk(part)
                  if isinstance(n, ast.Name) and id(n) not in inner}
    return names


def _leaves(target: ast.AST):
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _leaves(element)
    elif isinstance(target, ast.Starred):
        yield from _leaves(target.value)
    else:
        yield target


def _tampering(cell: _Cell, modules: dict[str, str]) -> list[Finding]:
    out: list[Finding] = []
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(cell.tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    for node in ast.walk(cell.tree):
        if id(node) in cell.allowed:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                out += _import_problem(cell, node, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append(cell.finding(node, "imports a module of the notebook's folder"))
                continue
            if not (node.module == "IPython.display" or (  # display(), Image, Markdown...
                    node.module == "IPython" and all(a.name == "display" for a in node.names))):
                out += _import_problem(cell, node, node.module or "")
            if node.module == "logging" and any(a.name == "config" for a in node.names):
                out += _import_problem(cell, node, "logging.config")
            for alias in node.names:
                if alias.name in DENIED_ATTRIBUTES:
                    out.append(cell.finding(node, f"imports {alias.name}, which reaches the "
                                                  "grader's or the interpreter's machinery"))
        elif isinstance(node, ast.Name):
            if node.id in DENIED_NAMES or (_DUNDER.match(node.id) and node.id != "__name__"
                                           and not isinstance(node.ctx, ast.Store)):
                out.append(cell.finding(node, f"{node.id} runs or reaches code that the grader "
                                              "cannot read"))
            elif node.id == "getattr" and not _called(node, parents):
                out.append(cell.finding(node, "getattr passed on as a value can reach any "
                                              "attribute"))
            elif node.id == "globals" and not _passed_as_argument(node, parents, modules):
                out.append(cell.finding(node, "globals() used other than passed to a function "
                                              "reaches every name of the kernel"))
        elif isinstance(node, ast.Attribute):
            if node.attr.lstrip("_") in DENIED_ATTRIBUTES or node.attr in DENIED_ATTRIBUTES \
                    or node.attr in DENIED_NAMES - {"compile"}:
                out.append(cell.finding(node, f".{node.attr} reaches the grader's or the "
                                              "interpreter's machinery"))
            elif _DUNDER.match(node.attr) and node.attr not in ALLOWED_DUNDERS:
                out.append(cell.finding(node, f"{node.attr} reaches the interpreter's "
                                              "machinery"))
            elif node.attr in OS_DENIED and modules.get(_chain_root_name(node.value) or "") \
                    == "os":
                out.append(cell.finding(node, f"os.{node.attr} starts a process or writes "
                                              "below the files a notebook uses"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            asked = parents.get(id(node))  # hasattr(x, "__iter__") only asks
            if isinstance(asked, ast.Call) and isinstance(asked.func, ast.Name) \
                    and asked.func.id == "hasattr":
                continue
            if (_DUNDER.match(text) and text not in ALLOWED_DUNDERS | {"__main__"}) or \
                    f"{_PACKAGE}.grading" in text or "/proc/" in text \
                    or text.startswith("module://"):
                out.append(cell.finding(node, f"the text {text[:40]!r} names the interpreter's "
                                              "or the grader's machinery"))
        elif isinstance(node, ast.Call):
            out += _call_problems(cell, node)
            out += _module_passed(cell, node, modules)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            defaults = [d for d in [*node.args.defaults, *node.args.kw_defaults]
                        if d is not None and _guarded_modules(d, modules)]
            if defaults:
                out.append(cell.finding(node, "a module as a default argument: the function "
                                              "can change it"))
        returned = (node.body if isinstance(node, ast.Lambda) else
                    node.value if isinstance(node, (ast.Return, ast.Yield)) else None)
        if returned is not None and _guarded_modules(returned, modules):
                out.append(cell.finding(node, "a function that returns a module: whoever calls "
                                          "it can change the module"))
        targets: list[ast.AST] = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
            targets = [node.target]
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            targets = [i.optional_vars for i in node.items if i.optional_vars is not None]
        for target in targets:
            for part in _leaves(target):
                if not isinstance(part, (ast.Attribute, ast.Subscript)):
                    continue
                root = _root(part)
                own_item = isinstance(part, ast.Subscript) and isinstance(part.value, ast.Name) \
                    and part.value.id in getattr(modules, "holders", ())
                guarded = [n.id for n in ast.walk(part) if isinstance(n, ast.Name)
                           and n.id in modules and modules[n.id] not in SETTINGS_MODULES
                           and not (own_item and n is part.value)]
                if any(isinstance(n, ast.Attribute) and _DUNDER.match(n.attr)
                       for n in ast.walk(part)):
                    out.append(cell.finding(node, "changes something reached through a dunder "
                                                  "attribute"))
                elif guarded:
                    out.append(cell.finding(node, f"changes something of {guarded[0]}, which "
                                                  "is a module or something imported"))
                elif isinstance(root, ast.Name) and modules.get(root.id) in SETTINGS_MODULES \
                        and not _a_setting(part, root):
                    out.append(cell.finding(node, f"changes something reached through "
                                                  f"{root.id} other than its settings"))
                elif not isinstance(root, ast.Name) or any(
                        isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                        and n.func.id in ("type", "next", "iter", "getattr")
                        for n in ast.walk(part)):
                    out.append(cell.finding(node, "changes an attribute or item of something "
                                                  "the text does not name"))
    return out


def _a_setting(part: ast.AST, root: ast.Name) -> bool:
    """Whether ``part``, reached from a name bound to a settings module (or to something of
    one), is one of its settings: the name is one of :data:`SETTINGS_NAMES`, or the
    attribute right after it is."""
    if root.id in SETTINGS_NAMES:
        return True
    node, above = part, None
    while node is not root:
        above, node = node, (node.func if isinstance(node, ast.Call) else node.value)
    return isinstance(above, ast.Attribute) and above.attr in SETTINGS_NAMES


#: calls that only look at what they are given (getattr with a computed name is seen apart)
_LOOKING = frozenset({"print", "display", "repr", "str", "type", "isinstance", "issubclass",
                      "hasattr", "getattr", "id", "dir", "help", "len", "bool"})


def _guarded_modules(value: ast.AST, modules: dict[str, str]) -> list[str]:
    """Names of modules (or of what was imported) that ``value`` is, or holds, as a bare name
    (``tf``, ``[tf][0]``, ``(np, tf)``; not ``np.nan``, which is data)."""
    if isinstance(value, ast.Name):
        found = [value.id] if value.id in getattr(modules, "modular", modules) else []
    elif isinstance(value, ast.Subscript):
        found = _guarded_modules(value.value, modules)
    elif isinstance(value, ast.Call):
        found = [n for n in _held_names(value) if n in getattr(modules, "modular", modules)]
    elif isinstance(value, (ast.Tuple, ast.List, ast.Set, ast.Dict, ast.IfExp, ast.BoolOp,
                            ast.Starred, ast.NamedExpr)):
        found = [n for child in ast.iter_child_nodes(value)
                 for n in _guarded_modules(child, modules)]
    else:
        found = []
    return [n for n in found if modules.get(n) not in SETTINGS_MODULES]


#: attribute names that are, or that lead to, a library's module: a chain through one of them
#: given to a function (``patch(np.linalg)``, ``patch(pd.core.common.np)``) gives it a module
_MODULE_ATTRIBUTES = SUBMODULE_NAMES | {"np", "numpy", "tf", "tensorflow", "keras", "scipy",
                                        "sklearn", "common", "cbook", "utils", "nanops"}


def _module_chain(value: ast.AST, modules: dict[str, str]) -> list[str]:
    """A chain of attributes of an imported name (``np.linalg``, ``keras.layers.Dense``,
    ``pd.core.common.np``; not ``np.nan`` or ``tf.float32``, which are data) that is, or
    holds, a module or a class, as the text shows: an attribute that names a module, or a
    capitalised last attribute (a class; ``logging.ERROR``, all capitals, is a constant)."""
    if not isinstance(value, ast.Attribute):
        return []
    root = _chain_root_name(value)
    if root is None or root not in modules:
        return []
    attrs, node = [], value
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if any(a in _MODULE_ATTRIBUTES for a in attrs) or (attrs[0][:1].isupper()
                                                       and not attrs[0].isupper()):
        return [f"{root}.{'.'.join(reversed(attrs))}"]
    return []


def _module_passed(cell: _Cell, node: ast.Call, modules: dict[str, str]) -> list[Finding]:
    """A module given to a function (``_p(tf)``): the function can change it."""
    if isinstance(node.func, ast.Name) and node.func.id in _LOOKING:
        return []
    given = [n for arg in [*node.args, *(k.value for k in node.keywords)]
             for n in _guarded_modules(arg, modules) + _module_chain(arg, modules)]
    if not given:
        return []
    return [cell.finding(node, f"passes {given[0]}, a module or something imported, to a "
                               "function that can change it")]


def _magic_code(node: ast.AST) -> list[str] | None:
    """For a magic the grader can read, as IPython writes it (``get_ipython().run_line_magic(
    "timeit", "f(x)")``), the code it runs (none for ``%matplotlib``); None for anything else."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("run_line_magic", "run_cell_magic")
            and isinstance(node.func.value, ast.Call) and not node.func.value.args
            and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "get_ipython" and not node.keywords
            and node.args and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                  for a in node.args)):
        return None
    name, *texts = (a.value for a in node.args)
    if node.func.attr == "run_line_magic" and name in _ARGUMENT_MAGICS and len(texts) == 1 \
            and _ARGUMENT_MAGICS[name].fullmatch(texts[0].strip()):
        return []
    if name in _NO_CODE_MAGICS and node.func.attr == "run_line_magic" \
            and ";" not in "".join(texts) and "(" not in "".join(texts):
        return []
    if name == "config" and node.func.attr == "run_line_magic":
        return []  # sets an option of the notebook's display
    if name not in CODE_MAGICS:
        return None
    return [python_source(_MAGIC_OPTIONS.sub("", t, count=1)) for t in texts]


def _called(node: ast.Name, parents: dict[int, ast.AST]) -> bool:
    call = parents.get(id(node))
    return isinstance(call, ast.Call) and call.func is node


def _passed_as_argument(node: ast.Name, parents: dict[int, ast.AST],
                        modules: dict[str, str]) -> bool:
    """Whether ``globals()`` is given straight to a function of the course
    (``learner_or_reference("sigmoid", globals())``): any other function could change any
    name of the kernel through it (``f(globals())``, ``dict(globals())["np"]``)."""
    call = parents.get(id(node))
    if not (isinstance(call, ast.Call) and call.func is node and not call.args):
        return False
    outer = parents.get(id(call))
    if isinstance(outer, ast.keyword):
        outer = parents.get(id(outer))
    return (isinstance(outer, ast.Call) and outer.func is not call
            and isinstance(outer.func, (ast.Name, ast.Attribute))
            and modules.get(_chain_root_name(outer.func) or "") == _PACKAGE)


def _import_problem(cell: _Cell, node: ast.AST, module: str) -> list[Finding]:
    top = module.split(".")[0]
    if top in RUNS_TEXT:
        return [cell.finding(node, f"imports {module}, which {RUNS_TEXT[top]}")]
    if top not in ALLOWED_IMPORTS:
        return [cell.finding(node, f"imports {module}, which is not one of the libraries a "
                                   "notebook of this course uses")]
    if module == f"{_PACKAGE}.grading" or module.startswith(f"{_PACKAGE}.grading."):
        return [cell.finding(node, "imports the course's grading code")]
    if any(module == m or module.startswith(m + ".") for m in DENIED_MODULES):
        return [cell.finding(node, f"imports {module}, which imports code by name")]
    return []


def _call_problems(cell: _Cell, node: ast.Call) -> list[Finding]:
    out = []
    for kw in node.keywords:
        if kw.arg in DENIED_KEYWORDS:
            out.append(cell.finding(node, f"{kw.arg}= loads code from data"))
        elif kw.arg in ("assigned", "updated"):  # functools.wraps(..., assigned=("array",))
            out.append(cell.finding(node, f"{kw.arg}= names attributes to set on an object"))
    name = node.func.attr if isinstance(node.func, ast.Attribute) else \
        node.func.id if isinstance(node.func, ast.Name) else None
    if name in LOADERS and (len(node.args) > LOADERS[name]
                            or any(kw.arg is None for kw in node.keywords)):
        out.append(cell.finding(node, f"{name}() given its options by position or through **, "
                                      "where one of them loads code from data: write them as "
                                      "keywords"))
    if isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2:
        name = node.args[1]
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            out.append(cell.finding(node, "getattr with a computed name can reach any "
                                          "attribute (write the attribute itself)"))
        elif name.value in DENIED_ATTRIBUTES:
            out.append(cell.finding(node, f"getattr of {name.value!r} reaches the grader's or "
                                          "the interpreter's machinery"))
    return out


# --- what each top-level name is bound to -------------------------------------------------

def _names_read(node: ast.AST) -> tuple[set[str], set[str]]:
    """(names read, names called) in ``node``, the called ones by their plain name (a call
    inside a lambda is code kept, not a value computed: it counts as read only). A name both
    called and read elsewhere (``(m.f, m.g(1))``) is in both."""
    read, called = set(), set()
    todo = [node]
    while todo:
        part = todo.pop()
        if isinstance(part, ast.Lambda):
            read |= {n.id for n in ast.walk(part) if isinstance(n, ast.Name)
                     and isinstance(n.ctx, ast.Load)}
            continue
        if isinstance(part, ast.Call):
            root = part.func
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name):  # f(...), m.f(...): the name is called, not read
                called.add(root.id)
                todo += [*part.args, *(k.value for k in part.keywords)]
                continue
        if isinstance(part, ast.Name) and isinstance(part.ctx, ast.Load):
            read.add(part.id)
        todo.extend(ast.iter_child_nodes(part))
    return read, called


def _bindings(cells: list[_Cell]) -> dict[str, list[_Binding]]:
    """Every binding of a name the text shows: the statements of each cell (``top``), and,
    as ``top=False``, bindings nested in blocks (``if``, ``try``, ``with``, loops), in functions
    (imports, ``global`` names, ``:=``): those may run at any time, so all of them count."""
    out: dict[str, list[_Binding]] = {}

    def bind(name: str, binding: _Binding) -> None:
        out.setdefault(name, []).append(binding)

    def statement(node: ast.AST, cell: _Cell, top: bool) -> None:
        where = cell.finding(node, "")

        def value(names, expr) -> None:
            read, called = _names_read(expr)
            for name in names:
                bind(name, _Binding("value", where, refs=read, calls=called,
                                    top=top, attrs=_attributes(expr),
                                    end=getattr(node, "end_lineno", 0) or 0))

        if isinstance(node, (ast.Import, ast.ImportFrom)):
            _bind_import(node, cell, bind, top)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            read, called = _names_read(node)
            inner_declared = {n for part in ast.walk(node) if isinstance(part, ast.Global)
                              for n in part.names}
            # an import inside the function binds a name of the function's own (unless
            # declared global): kept under a name of its own, read by this function only
            local_imports: dict[str, str] = {}

            def bind_local(name: str, binding: _Binding) -> None:
                if name in inner_declared:
                    bind(name, binding)
                else:
                    local_imports[name] = f"{node.name}.<import>.{name}"
                    bind(local_imports[name], binding)

            for part in ast.walk(node):
                if part is not node and isinstance(part, (ast.Import, ast.ImportFrom)):
                    _bind_import(part, cell, bind_local, False)
            refs = {local_imports.get(n, n) for n in (read | called) - _local_names(node)}
            bind(node.name, _Binding("def", where, refs=refs, top=top,
                                     attrs=_attributes(node), end=node.end_lineno or 0))
            for part in ast.walk(node):  # what a function binds beyond itself
                if part is node:
                    continue
                if isinstance(part, (ast.Import, ast.ImportFrom)):
                    continue
                if isinstance(part, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                        and part.name in inner_declared:  # a nested def of a global name
                    read, called = _names_read(part)
                    bind(part.name, _Binding(
                        "def", cell.finding(part, ""), top=False, attrs=_attributes(part),
                        end=part.end_lineno or 0,
                        refs={local_imports.get(n, n)
                              for n in (read | called) - _local_names(part)}))
                    continue
                elif isinstance(part, (ast.Assign, ast.AnnAssign, ast.AugAssign)) \
                        and part.value is not None:
                    targets = part.targets if isinstance(part, ast.Assign) else [part.target]
                    names = [n.id for t in targets for n in _leaves(t)
                             if isinstance(n, ast.Name) and n.id in inner_declared]
                    read, called = _names_read(part.value)
                    for name in names:  # the function's own imports read as the function's
                        bind(name, _Binding("value", cell.finding(part, ""),
                                            refs={local_imports.get(n, n) for n in read},
                                            calls={local_imports.get(n, n) for n in called},
                                            top=False))
            return
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            if node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value([n.id for t in targets for n in _leaves(t) if isinstance(n, ast.Name)],
                      node.value)
                # an item or attribute set (``fs[0] = f``) puts the value into its container
                held = [_root(n) for t in targets for n in _leaves(t)
                        if isinstance(n, (ast.Subscript, ast.Attribute))]
                statement_value([n.id for n in held if isinstance(n, ast.Name)], node.value,
                                where, "held")
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) \
                and isinstance(node.value.func, ast.Attribute):
            # a method given values (``fs.append(f)``, ``d.setdefault(k, f)``) may keep them
            holder = _root(node.value.func.value)
            if isinstance(holder, ast.Name):
                given = ast.Tuple(elts=[*node.value.args,
                                        *(k.value for k in node.value.keywords)], ctx=ast.Load())
                statement_value([holder.id], given, where, "held")
        elif isinstance(node, ast.Match):
            # names a pattern captures are bound to (parts of) the subject
            captured = {n for case in node.cases for part in ast.walk(case.pattern)
                        for n in (getattr(part, "name", None), getattr(part, "rest", None))
                        if isinstance(n, str)}
            statement_value(sorted(captured), node.subject, where)
            for case in node.cases:
                for child in case.body:
                    statement(child, cell, False)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            value([n.id for n in _leaves(node.target) if isinstance(n, ast.Name)], node.iter)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    value([n.id for n in _leaves(item.optional_vars)
                           if isinstance(n, ast.Name)], item.context_expr)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                statement(child, cell, False)
            elif not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for part in ast.walk(child):
                    if isinstance(part, ast.NamedExpr) and isinstance(part.target, ast.Name):
                        statement_value([part.target.id], part.value, cell.finding(part, ""))

    def statement_value(names, expr, where, kind="value") -> None:
        read, called = _names_read(expr)
        for name in names:
            bind(name, _Binding(kind, where, refs=read, calls=called, top=False,
                                attrs=_attributes(expr)))

    for cell in cells:
        for node in cell.tree.body:
            statement(node, cell, True)
    return out


def _attributes(node: ast.AST) -> set[str]:
    """The attribute names ``node`` reads (``kaplan_meier_estimator`` of
    ``snp.kaplan_meier_estimator(t, e)``)."""
    return {part.attr for part in ast.walk(node) if isinstance(part, ast.Attribute)}


def _local_names(node: ast.AST) -> set[str]:
    """Names a function binds itself (its parameters and assignments), unless declared
    global. Its imports are not among them: each is bound under a name of the function's own
    (see :func:`_bindings`), so that an import of the course's code inside a function is
    followed from that function, and from no other."""
    local, declared = set(), set()
    for part in ast.walk(node):
        if isinstance(part, ast.arg):
            local.add(part.arg)
        elif isinstance(part, ast.Name) and isinstance(part.ctx, (ast.Store, ast.Del)):
            local.add(part.id)
        elif isinstance(part, ast.Global):
            declared.update(part.names)
    return local - declared


def _bind_import(node, cell: _Cell, bind, top: bool) -> None:
    where = cell.finding(node, "")
    for alias in node.names:
        module = alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
        name = (alias.asname or alias.name).split(".")[0]
        course = module == _PACKAGE or module.startswith(_PACKAGE + ".")
        bind(name, _Binding("course" if course else "import", where, module=module, top=top))


def _is_code(module: str) -> bool:
    """Whether ``module`` (``pkg.mod.attr``) names a module or a callable of the course (data
    such as a grid of thresholds is not code)."""
    import importlib

    parts = module.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
        return obj is None or callable(obj) or type(obj).__name__ == "module" \
            or isinstance(obj, (dict, list, tuple))
    return True


@dataclass
class NotebookScan:
    """The notebook's lines that reach the grader's machinery, and its name bindings."""

    tampering: list[Finding]
    bindings: dict[str, list[_Binding]]
    unread: list[Finding] = field(default_factory=list)

    def in_force(self, name: str, before: int | None = None) -> list[_Binding]:
        """The bindings of ``name`` that may be in force when a test in cell ``before`` runs
        (the notebook's end if None): the last statement before it that binds the name, and
        every nested binding before it."""
        bindings = [b for b in self.bindings.get(name, [])
                    if before is None or b.where.cell < before]
        top = [b for b in bindings if b.top]
        return top[-1:] + [b for b in bindings if not b.top]

    def reached(self, name: str, before: int | None = None):
        """``(binding, name, path)`` for every binding that ``name`` reaches as in force before
        cell ``before``: what it is bound to, then the names its code reads and the learner's
        own functions it calls, each followed once. Linear in the bindings it meets (each
        name's bindings are looked up once; ``path()`` spells the way there on demand)."""
        in_force: dict[str, list[_Binding]] = {}
        parent: dict[str, str | None] = {name: None}

        def bindings(n: str) -> list[_Binding]:
            if n not in in_force:
                in_force[n] = self.in_force(n, before)
            return in_force[n]

        def path(n: str) -> str:
            steps = []
            while n is not None:
                steps.append(n)
                n = parent[n]
            return " -> ".join(reversed(steps))

        seen, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            for binding in bindings(current):
                yield binding, current, path
                if binding.kind in ("def", "value", "held"):
                    following = set(binding.refs)
                    following |= {c for c in binding.calls
                                  if any(b.kind == "def" for b in bindings(c))}
                    for n in sorted(following - seen):
                        parent.setdefault(n, current)
                        todo.append(n)

    def course_code(self, name: str, before: int | None = None) -> list[str]:
        """How ``name`` (an exercise's function) reaches the course's code, in the notebook's
        text: through what it is bound to, the names its code reads, and the learner's own
        functions, classes and values those are bound to, as in force before cell ``before``."""
        if self.unread:
            return [f"the grader could not read {self.unread[0]}"]
        problems = []
        for binding, current, path in self.reached(name, before):
            if binding.kind == "course" and _is_code(binding.module):
                via = "" if current == name else f" (through {path(current)})"
                problems.append(f"{binding.where.code!r} in cell {binding.where.cell} makes "
                                f"{current!r} the course's {binding.module}{via}")
        return problems

    def library_code(self, name: str, functions, before: int | None = None) -> list[str]:
        """How ``name`` (an exercise's function) reaches one of ``functions``, a library's
        functions that compute the whole exercise (by their last name, e.g.
        ``kaplan_meier_estimator``): an attribute its code reads, or a name imported from a
        library, along the same ways as :meth:`course_code`."""
        functions = set(functions)
        if not functions:
            return []
        problems = []

        def imported(n: str) -> list[_Binding]:
            return [b for b in self.in_force(n, before) if b.kind == "import"
                    and b.module.rsplit(".", 1)[-1] in functions]

        for binding, current, path in self.reached(name, before):
            via = "" if current == name else f" (through {path(current)})"
            if binding.kind == "import" and binding.module.rsplit(".", 1)[-1] in functions:
                problems.append(f"{binding.where.code!r} in cell {binding.where.cell} makes "
                                f"{current!r} the library's {binding.module}{via}")
            elif binding.kind in ("def", "value", "held"):
                for attr in sorted(binding.attrs & functions):
                    problems.append(f"{current!r} (cell {binding.where.cell}) calls the "
                                    f"library's {attr}{via}")
                for n in sorted(binding.calls - binding.refs):  # the refs are followed
                    for b in imported(n):
                        shown = n.split(".<import>.")[-1]   # an import in the function
                        problems.append(f"{current!r} (cell {binding.where.cell}) calls "
                                        f"{b.module} (imported as {shown!r}){via}")
        return problems

    def unreadable_in(self, name: str, before: int | None = None) -> list[Finding]:
        """The lines of the code ``name`` (an exercise's function) runs or reads, along the
        same ways as :meth:`course_code`, that the reading refuses (a name computed at run
        time, ``exec``, an import beyond the scientific libraries...): what they reach, the
        text cannot tell, so neither can the own-implementation verdict."""
        spans = {(b.where.cell, b.where.line, max(b.end, b.where.line))
                 for b, _, _ in self.reached(name, before) if b.kind in ("def", "value")}
        return [f for f in self.tampering
                if any(f.cell == cell and first <= f.line <= last
                       for cell, first, last in spans)]

    def cells_of(self, name: str, before: int | None = None) -> dict[int, set[str]]:
        """The cells whose code ``name`` runs or reads (see :meth:`reached`), each with the
        names bound there on the way: where the learner's code for an exercise is, wherever
        the notebook holds it."""
        out: dict[int, set[str]] = {}
        for binding, current, _ in self.reached(name, before):
            if binding.kind in ("def", "value"):
                out.setdefault(binding.where.cell, set()).add(current)
        return out


def _with_inner(cell: _Cell) -> list[_Cell]:
    return [cell] + [c for inner in cell.inner for c in _with_inner(inner)]


#: the most code the grader reads (an honest chapter notebook has under 100 kB), of a cell, and
#: the most magic or shell lines of a cell (IPython rewrites each at some cost). At these caps
#: the costliest notebooks measured take the grader about 5 s of CPU to read (a megabyte of
#: cells each just under the limits for rewritten cells, or of chained aliases)
MAX_CODE_CHARS = 1_000_000
MAX_CELL_CHARS = 300_000
MAX_MAGIC_LINES = 50
#: a cell that is not plain Python goes through IPython's rewriting, whose cost grows with the
#: cell's size times its magic lines: such cells are read only up to this size
MAX_REWRITTEN_CHARS = 20_000
#: a line IPython may rewrite: one that starts with an escape (``%``, ``!``, ``?`` or an
#: autocall's ``,``, ``;``, ``/``), assigns a magic's or a shell command's output
#: (``a = %time f()``, ``files = !ls``), or asks for help at its end (``np.tanh?``); not
#: ``!=`` or a ``%`` or ``?`` inside an expression, a string or a comment (a red-team helper,
#: round 10: 51 lines of ``if a != b:`` below ``%matplotlib inline`` made a cell unread, and
#: every own-implementation test of the notebook failed)
MAGIC_LINE = re.compile(r"^(?:[ \t]*[%!?,;/]|[^#\n]*=[ \t]*[%!][^=]|[^#\n]*\?[ \t]*$).*$",
                        re.MULTILINE)


def scan(cells: list[tuple[int, str]]) -> NotebookScan:
    """Read the code cells a grading kernel runs: ``(position from 1, source)`` each."""
    parsed, unread, total = [], [], 0
    for number, source in cells:
        total += len(source)
        if total > MAX_CODE_CHARS or len(source) > MAX_CELL_CHARS or (
                not is_python(source) and (
                    len(source) > MAX_REWRITTEN_CHARS
                    or len(MAGIC_LINE.findall(source)) > MAX_MAGIC_LINES)):
            unread.append(Finding(number, 1, source[:60].split("\n")[0],
                                  "a cell too large for the grader to read, or with too many "
                                  "magics: split the notebook's code into ordinary cells"))
            continue
        parsed.append(_Cell(number, python_source(source)))
    parsed = [c for cell in parsed if cell.tree is not None for c in _with_inner(cell)]
    modules = _imported(parsed)
    tampering = [f for cell in parsed for f in _tampering(cell, modules)]
    tampering += [f for cell in parsed for text in cell.texts
                  for f in _tampering(text, modules)]
    return NotebookScan(tampering=unread + tampering, bindings=_bindings(parsed),
                        unread=unread)


def tampering_message(exercise: str, findings: list[Finding]) -> str:
    """The failure of a check that relies on a probe, in a notebook with such lines."""
    shown = "\n".join(f"  - {f}" for f in findings[:5])
    more = f"\n  (and {len(findings) - 5} more)" if len(findings) > 5 else ""
    return (f"{exercise}: not graded. This check runs the course's code in your notebook's "
            "kernel, and your notebook has code that could change what that code reports:\n"
            f"{shown}{more}\n  Remove those lines (an answer needs none of them) and submit "
            "again; if you think one is needed, ask your instructor.")
