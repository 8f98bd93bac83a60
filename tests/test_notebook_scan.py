"""The grader's reading of a submitted notebook's text (medai_lessons.grading.notebook_scan):
the course's own notebooks read clean, and each way found of reaching the course's probes or
its reference code is seen, in more than one form."""

from __future__ import annotations

import ast

import nbformat
import pytest

from medai_lessons.course import chapters, find_course_dir
from medai_lessons.grading import agent, notebook_scan, probes
from medai_lessons.grading.execute import kernel_cells

SETUP = "import numpy as np\nimport tensorflow as tf\nimport keras\n" \
        "from medai_lessons import plotting\nfrom medai_lessons.metrics import THRESHOLD_GRID\n"


def _scan(*cells: str) -> notebook_scan.NotebookScan:
    return notebook_scan.scan(list(enumerate([SETUP, *cells], start=1)))


COURSE = find_course_dir()


@pytest.mark.parametrize("chapter", chapters(COURSE))
def test_the_courses_own_notebooks_read_clean(chapter):
    # every cell a grading kernel runs, the solutions in place: nothing reaches the grader's
    # machinery, and no exercise's function reaches the course's code
    nb = nbformat.read(COURSE / "source" / chapter / f"{chapter}.ipynb", as_version=4)
    scan = notebook_scan.scan(kernel_cells(nb))
    assert scan.tampering == [], [str(f) for f in scan.tampering]
    answers = [node.name for c in nb.cells if c.cell_type == "code"
               and c.metadata.get("nbgrader", {}).get("solution")
               for node in ast.parse(c.source).body
               if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    assert answers, "no answer functions found"
    from medai_lessons.grading import EXERCISES, LIBRARY_EQUIVALENTS

    for name in answers:
        assert scan.course_code(name) == [], name
        assert scan.library_code(name, LIBRARY_EQUIVALENTS.get(name, ())) == [], name
        assert scan.unreadable_in(name) == [], name
    assert set(LIBRARY_EQUIVALENTS) <= set(EXERCISES)


#: each way of changing what a probe in the kernel reports, in several forms
TAMPERING = {
    "probe replaced": "import medai_lessons.grading.probes as p\np.train_step_probe = None\n",
    "probe from the package": "from medai_lessons.grading import probes\n",
    "grading as a name": "from medai_lessons import grading\n",
    "grading through a module": "import medai_lessons\nx = medai_lessons.grading\n",
    "agent's table": "import medai_lessons.grading.agent as a\na._PROBES.clear()\n",
    "sys.modules": "import sys\nsys.modules['medai_lessons.grading.probes'].x = 1\n",
    "importlib": "import importlib\nm = importlib.import_module('medai_' + 'lessons')\n",
    "__import__": "m = __import__('medai_lessons')\n",
    "exec of a text": "exec(bytes.fromhex('7072696e74283129').decode())\n",
    "eval": "f = eval('lambda: 1')\n",
    "compile": "c = compile('1', 'x', 'eval')\n",
    "a magic": "%time np.array = len\n",
    "a shell escape": "!echo hi\n",
    "get_ipython": "get_ipython().user_ns['np'] = None\n",
    "numpy patched": "np.array = lambda *a, **k: 0\n",
    "numpy patched, aliased": "m = np\nm.asarray = len\n",
    "numpy patched, in a loop": "for m in (np, tf):\n    m.sum = len\n",
    "numpy patched, in a tuple": "x, np.mean = 1, len\n",
    "numpy patched, augmented": "np.pi += 1\n",
    "numpy deleted": "del np.array\n",
    "a class patched": "tf.GradientTape.gradient = lambda *a: None\n",
    "an imported class patched": "from keras.layers import Dense\nDense.call = None\n",
    "a class through type()": "T = type(tf.constant(1.0))\nT.numpy = len\n",
    "a call's attribute": "type(np.zeros(1)).x = 1\n",
    "setattr": "setattr(np, 'array', len)\n",
    "setattr, aliased": "s = setattr\ns(np, 'array', len)\n",
    "delattr": "delattr(np, 'array')\n",
    "dunder attribute": "g = (lambda: 0).__globals__\n",
    "dunder dict": "np.__dict__['array'] = len\n",
    "dunder as text": "g = getattr(len, '__self__')\n",
    "computed getattr": "name = 'arr' + 'ay'\nf = getattr(np, name)\n",
    "builtins": "import builtins\nbuiltins.len = None\n",
    "__builtins__": "__builtins__.len = None\n",
    "globals subscripted": "globals()['np'] = None\n",
    "globals kept": "g = globals()\n",
    "vars": "vars(np)['array'] = len\n",
    "gc": "import gc\nobjs = gc.get_objects()\n",
    "ctypes": "import ctypes\n",
    "ctypes through numpy": "lib = np.ctypeslib\n",
    "ctypes through threadpoolctl": "from threadpoolctl import ThreadpoolController\n"
                                    "lib = ThreadpoolController().lib_controllers[0].dynlib\n",
    "a native library": "tf.load_library('x.so')\n",
    "pickle": "import pickle\n",
    "pickle through numpy": "a = np.load('x.npy', allow_pickle=True)\n",
    "pickle through pandas": "import pandas as pd\nd = pd.read_pickle('x')\n",
    "unsafe model": "m = keras.models.load_model('m.keras', safe_mode=False)\n",
    "a module of its own": "open('m.py', 'w').write('x = 1')\nimport m\n",
    "relative import": "from . import m\n",
    "inspect": "import inspect\n",
    "frames": "import traceback\ng = [f for f, _ in traceback.walk_stack(None)][0].f_globals\n",
    "os.system": "import os\nos.system('python -c pass')\n",
    "os.fork": "import os as o\npid = o.fork()\n",
    "a file of /proc": "f = open('/proc/self/mem', 'wb')\n",
    "IPython": "import IPython\n",
    # a red-team helper, round 8: getattr as a value, attrgetter, a backend module of one's own
    "getattr aliased": "look = getattr\nm = look(np, 'sum')\n",
    "getattr reduced": "import functools\nm = functools.reduce(getattr, ['a', 'b'], np)\n",
    "attrgetter": "import operator\nm = operator.attrgetter('grad' + 'ing.agent')(np)\n",
    "a backend module": "import matplotlib\nmatplotlib.use('module://my_backend')\n",
    "a class through __class__": "c = tf.constant(1.0).__class__\nc.numpy = len\n",
    "__class__ assigned through": "x = keras.layers.Dense(1)\nx.__class__.call = len\n",
    "a literal holding numpy": "[np][0].array = len\n",
    "next of numpy": "next(iter([np])).array = len\n",
    "a magic with options": "%timeit -n1 np.array = len\n",
    "a cell magic": "%%capture\nimport gc\n",
    "%run": "%run m.py\n",
    "%load_ext": "%load_ext my_extension\n",
    "logging's configuration": "from logging import config\n",
    "a help line that calls": "%pinfo np.array(1); import gc\n",
    "an annotation evaluated": "import typing\ndef f(x: \"__import__('sys')\"): pass\n"
                               "typing.get_type_hints(f)\n",
    "code in a text": "import functools\n@functools.singledispatch\ndef g(x): pass\n"
                      "@g.register\ndef _(x: \"__import__('gc').get_objects()\"): pass\n",
    "logging's factories": "import logging.config\n",
    # a red-team helper, round 9: sys under another name, the module table, the agent's table
    "sys of collections": "import collections\nm = collections._sys\n",
    "a module table": "import tempfile\nt = tempfile._os\n",
    "modules": "import pprint\nt = pprint.x.modules\n",
    "the agent's table updated": "def f(a):\n    a._PROBES.update({})\n",
    "through an import in a function": "def f():\n    import sys\n    return sys\n",
    "frame attributes": "def f(e):\n    return e.__traceback__.tb_frame.f_globals\n",
    # forms round 9 left open: a module reached through a subscript, a call or a parameter
    "an alias through a subscript": "_t = [tf][0]\n_t.GradientTape = None\n",
    "an alias through a dict": "_m = {'n': np}['n']\n_m.array = list\n",
    "an alias through a conditional": "_m = tf if True else None\n_m.GradientTape = None\n",
    "an alias through or": "_m = None or tf\n_m.GradientTape = None\n",
    "a container of modules": "_d = {'t': tf}\n_d['t'].GradientTape = None\n",
    "a function that returns it": "def _get():\n    return tf\n_get().GradientTape = None\n",
    "a lambda that returns it": "_get = lambda: [np][0]\n_get().array = list\n",
    "a generator that yields it": "def _g():\n    yield tf\nnext(_g()).x = 1\n",
    "passed to a function": "def _p(m):\n    m.GradientTape = None\n_p(tf)\n",
    "passed by keyword": "def _p(m=None):\n    m.array = list\n_p(m=np)\n",
    "passed in a list": "def _p(ms):\n    ms[0].array = list\n_p([np])\n",
    "a submodule passed": "from tensorflow import keras as K\ndef _p(m):\n    m.x = 1\n"
                          "_p(K)\n",
    "passed as a default": "def _p(m=tf):\n    m.GradientTape = None\n_p()\n",
    # a red-team helper, round 10: a class reached through getattr and a dunder name
    "a class through getattr": "_T = getattr(tf.GradientTape(), '__class__')\n"
                               "_T.gradient = None\n",
    "a class through getattr, set at once": "getattr(np.zeros(1), '__class__').x = 1\n",
    # code from a string through timeit, which no rule read: a string without "(" or "." is
    # not read as code, nor one that is computed
    "timeit's setup": "import timeit\ntimeit.timeit(setup='import sys', number=1)\n",
    "timeit's Timer": "from timeit import Timer\nTimer('x = 1; import sys').timeit(1)\n",
    "timeit on a computed string": "import timeit as t\ns = 'imp' + 'ort sys'\n"
                                   "t.timeit(stmt=s, number=1)\n",
    # a loader's code-loading flag by position or through **
    "allow_pickle by position": "np.load('x.npy', None, True)\n",
    "allow_pickle through **": "np.load('x.npy', **{'allow_' + 'pickle': True})\n",
    "read_array's allow_pickle by position": "np.lib.format.read_array(open('x', 'rb'), True)\n",
    "safe_mode by position": "keras.saving.load_model('m.keras', None, True, False)\n",
    "safe_mode through ** from a name": "from keras.models import load_model\n"
                                        "kw = dict(safe_mode=False)\nload_model('m', **kw)\n",
    # modules that other libraries hold, which unpickle or import by name
    "joblib of scikit-learn": "from sklearn.utils import parallel\n"
                              "parallel.joblib.load('x.pkl')\n",
    "joblib imported from scikit-learn": "from sklearn.utils.parallel import joblib\n",
    "pkgutil of scikit-learn": "from sklearn.utils import discovery\n"
                               "m = discovery.pkgutil.resolve_name('s' + 'ys')\n",
    "pydoc of SciPy": "from scipy._lib import _docscrape\n"
                      "m = _docscrape.pydoc.locate('s' + 'ys')\n",
    "pandas' pickle_compat": "import pandas as pd\npd.compat.pickle_compat.loads(b'')\n",
    "site of TensorFlow": "tf._site.addsitedir('.')\n",
    "multiprocessing of Keras": "from keras.src.callbacks import callback_list as c\n"
                                "c.concurrent.futures.process.multiprocessing.reduction\n",
    # the magics read by their whole argument: anything beyond what they may take is refused
    "%env that sets a variable": "%env LD_PRELOAD=/tmp/x.so\n",
    "%env that expands an expression": "%env {__import__('os').getcwd()}\n",
    "%load_ext of another module": "%load_ext mine\n",
    "%load_ext with a second module": "%load_ext autoreload mine\n",
    "%autoreload with more after it": "%autoreload 2; x = 1\n",
    "%history written to a file": "%history -f x.py\n",
    "%history appended to a file": "%history -n -f x.py\n",
    # a red-team helper, round 11: NumPy, TensorFlow and Keras reached through a settings
    # module (pandas, matplotlib, tqdm), changed there or handed to a function that changes them
    "numpy through pandas": "import pandas as pd\npd.core.common.np.array = len\n",
    "numpy through matplotlib": "import matplotlib\nmatplotlib.cbook.np.array = len\n",
    "tensorflow through tqdm": "from tqdm import keras as tqdm_keras\n"
                               "tqdm_keras.keras.src.backend.tensorflow.core.tf.function = len\n",
    "an alias of numpy through pandas": "import pandas as pd\nx = pd.core.common.np\n"
                                        "x.array = len\n",
    "numpy through seaborn": "import seaborn as sns\nsns.utils.np.mean = len\n",
    "a module handed to a function": "def patch(m):\n    m.solve = len\npatch(np.linalg)\n",
    "numpy through pandas handed to a function": "import pandas as pd\ndef patch(m):\n"
                                                 "    m.array = len\npatch(pd.core.common.np)\n",
    "a class handed to a constructor": "class P:\n    def __init__(self, c):\n"
                                       "        c.call = len\nP(keras.layers.Dense)\n",
    "a class handed by keyword": "def patch(c):\n    c.gradient = len\n"
                                 "patch(c=tf.GradientTape)\n",
    # a red-team helper, round 11 (second): a module reached through what a call returns,
    # and tf.function told to run eagerly
    "numpy from next()": "_numpy = next(m for m in [np])\n_numpy.array = len\n",
    "numpy from a dict's get": "m = {'np': np}.get('np')\nm.array = len\n",
    "numpy from a list's pop": "m = [np].pop()\nm.array = len\n",
    "numpy from a copy of globals()": "m = dict(globals())['np']\nm.array = len\n",
    "numpy as a default from a call": "def _install(module=[np].pop()):\n"
                                      "    module.array = len\n_install()\n",
    "numpy from a walrus and pop": "(m := [np].pop())\nm.array = len\n",
    "tensorflow from a list's pop": "_tfm = [tf].pop()\n_tfm.function = len\n",
    "globals() given to a function of one's own": "def f(g):\n    g['np'].array = len\n"
                                                  "f(globals())\n",
    "numpy from a partial": "import functools\np = functools.partial(lambda m: m, np)\n"
                            "q = p()\nq.array = len\n",
    "functions run eagerly": "tf.config.run_functions_eagerly(True)\n",
    "functions run eagerly, by an alias": "c = tf.config\n"
                                          "c.experimental_run_functions_eagerly(1)\n",
    # a red-team helper, round 11 (third): an object looked up by a name held in text, the
    # running frames' builtins, attributes copied onto an object by name
    "a format field's object": "import string\n"
                               "m = string.Formatter().get_field('0.__glo' + 'bals__',\n"
                               "                                 [len], {})\n",
    "a Formatter imported by name": "from string import Formatter\n"
                                    "m = Formatter().get_field('0.x', [len], {})[0]\n",
    "a frame's builtins": "import traceback\n"
                          "f = next(traceback.walk_stack(None))[0]\nb = f.f_builtins\n",
    "a traceback's next frame": "def f(tb):\n    return tb.tb_next\n",
    "logging's current frame": "import logging\nf = logging.currentframe()\n",
    "attributes copied by update_wrapper": "import functools\n"
                                          "functools.update_wrapper(m, h, ('a',), ())\n",
    "attributes copied by wraps": "import functools\n"
                                  "w = functools.wraps(h, assigned=('_probe_named',))\n",
    # shell lines and %pip start a process: refused whatever the command
    "a shell line": "!nvidia-smi\n",
    "a shell line's output": "gpus = !nvidia-smi -L\n",
    "%pip list": "%pip list\n",
    "%pip install": "%pip install .\n",
}


@pytest.mark.parametrize("attack", TAMPERING)
def test_code_that_could_change_a_probe_is_seen(attack):
    scan = _scan(TAMPERING[attack])
    assert scan.tampering, attack
    assert all(f.cell == 2 for f in scan.tampering), [str(f) for f in scan.tampering]
    message = notebook_scan.tampering_message("sigmoid", scan.tampering)
    assert message.startswith("sigmoid: not graded") and "cell 2, line" in message


@pytest.mark.parametrize("honest", [
    "def f(x):\n    return np.tanh(x)\n",
    "class L(keras.layers.Layer):\n    def __init__(self, **kw):\n        super().__init__(**kw)\n",
    "model = keras.Sequential([keras.layers.Dense(1)])\nmodel.trainable = False\n",
    "params = {'W': np.zeros(2)}\nparams['W'] -= 0.1\n",
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 90\n",
    "import pandas as pd\npd.options.display.max_rows = 10\n",
    "from medai_lessons.notebook import setup\nsetup(globals())\n",
    "f = getattr(np, 'tanh')\nprint(f.__name__)\n",
    "x = [1, 2]\nx[0] = 3\n",
    # a red-team helper, round 9: more lines a learner plausibly writes
    "np.tanh?\n%whos\n",
    "import logging\nlogging.getLogger('tensorflow').setLevel(logging.ERROR)\n",
    "from IPython import display\n",
    "def f(x):\n    return hasattr(x, '__iter__')\n",
    "import traceback\nimport contextlib\n",
    "print('sigmoid(0) =', 0.5, 'see np.exp')\nplt_title = 'loss(epoch)'\n",
    # a red-team helper, round 8: lines a learner plausibly writes
    "import os\nprint(os.listdir('.'))\n",
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\n",
    "%timeit np.tanh(np.zeros(3))\n",
    "%timeit -n 10 -r 3 np.tanh(np.zeros(3))\n",
    "%%time\nx = np.tanh(1.0)\n",
    "%config InlineBackend.figure_format = 'retina'\n",
    "print('NumPy', np.__version__, tf.__version__)\n",
    "if __name__ == '__main__':\n    print(1)\n",
    "from IPython.display import display, Markdown\ndisplay(Markdown('**x**'))\n",
    "from pathlib import Path\np = Path('data') / 'x.csv'\n",
    "x = np.zeros(2)\nprint(x.__class__.__name__)\n",
    "model = keras.Sequential([keras.layers.Dense(1, name='d')])\n"
    "model.get_layer('d').trainable = False\nmodel.layers[0].trainable = True\n",
    "class S:\n    def __call__(self, z):\n        return z\n    __len__ = staticmethod(len)\n",
    "%matplotlib inline\n",
    # a red-team helper, round 10: a cell with a magic and many lines holding ! or ? that
    # IPython does not rewrite is read (it was unread, which failed every own-implementation
    # test of the notebook)
    "%matplotlib inline\n" + "if 1 != 2:\n    print('why? 5 % 2')  # really?\n" * 60,
    # lines the module rules of round 10 must leave alone
    "from tensorflow.nn import relu\nlayer = keras.layers.Dense(3, activation=relu)\n",
    "def loss(y):\n    return tf.reduce_mean(y) if y is not None else np.nan\n",
    "x = tf.cast(np.ones(2), tf.float32)\nprint(np, isinstance(x, tf.Tensor))\n",
    "cfg = {'dtype': tf.float32, 'lr': 1e-3}\ncfg['lr'] = 2e-4\n",
    "import matplotlib.pyplot as plt\ndef show(p=plt):\n    p.title('x')\nshow(plt)\n",
    "rows = np.zeros((2, 2))\nrow = rows[0]\nrow[0] = 1.0\n",
    "def pick(a, b):\n    return a or b\nw = pick(1, 2)\n",
    # the loaders with their options written as keywords
    "x = np.load('x.npz')\ny = np.load('x.npy', mmap_mode='r')\n",
    "m = keras.saving.load_model('m.keras', {'Scale': int}, compile=False)\n",
    "import json\nwith open('x.json') as f:\n    cfg = json.load(f)\n",
    # the settings of the settings modules, and data handed to functions
    "import matplotlib as mpl\nmpl.rcParams['axes.grid'] = True\n",
    "from matplotlib import rcParams\nrcParams['font.size'] = 9\n",
    "from os import environ\nenviron['X'] = '1'\n",
    "import logging\nlogging.getLogger('tensorflow').disabled = True\n",
    "x = np.zeros(3, dtype=np.float32)\ny = np.full(2, np.nan)\n"
    "z = np.issubdtype(x.dtype, np.floating)\nt = tf.cast([1], tf.float32)\n",
    # calls whose results are data, given module-made values; the course's globals() calls
    "x = np.zeros(3)\nx.shape = (3, 1)\nt = tf.constant(np.ones(3))\n",
    "model = keras.Sequential([keras.layers.Dense(1)])\nmodel.trainable = False\n",
    "opt = keras.optimizers.Adam(1e-3)\nopt.learning_rate = 2e-4\n",
    "from medai_lessons.notebook import learner_or_reference, whose\n"
    "f = learner_or_reference('sigmoid', globals())\nprint(whose(f, 'sigmoid', globals()))\n",
    # magics that start no process and run no code of the notebook's
    "%env\n%env CUDA_VISIBLE_DEVICES\n",
    "%load_ext autoreload\n%autoreload 2\n",
    "%reload_ext autoreload\n%autoreload\n",
    "%history -n\n%history -n -l 5\n%history 1-3\n",
])
def test_honest_code_is_not_taken_for_tampering(honest):
    scan = _scan(honest)
    assert scan.tampering == [], [str(f) for f in scan.tampering]


#: each way of making an exercise's function the course's own code
COURSE_CODE = {
    "imported as the name": "from medai_lessons.metrics import sigmoid_of as sigmoid\n",
    "an alias": "from medai_lessons.metrics import sigmoid_of\nsigmoid = sigmoid_of\n",
    "called in the body": "from medai_lessons import metrics\n"
                          "def sigmoid(z):\n    return metrics.sigmoid_of(z)\n",
    "imported in the body": "def sigmoid(z):\n    from medai_lessons.nn import sigmoid as s\n"
                            "    return s(z)\n",
    "through a helper": "import medai_lessons.metrics as m\n"
                        "def _h(z):\n    return m.sigmoid_of(z)\n"
                        "def sigmoid(z):\n    return _h(z)\n",
    "an instance of a class": "from medai_lessons.metrics import sigmoid_of\nclass S:\n"
                              "    __call__ = staticmethod(sigmoid_of)\nsigmoid = S()\n",
    "a partial": "import functools\nimport medai_lessons.metrics as m\n"
                 "sigmoid = functools.partial(m.sigmoid_of)\n",
    "a default argument": "from medai_lessons.metrics import sigmoid_of\n"
                          "def sigmoid(z, f=sigmoid_of):\n    return f(z)\n",
    "a closure": "def make():\n    from medai_lessons.metrics import sigmoid_of\n"
                 "    return lambda z: sigmoid_of(z)\nsigmoid = make()\n",
    "a lambda": "import medai_lessons.nn as nn\nsigmoid = lambda z: nn.sigmoid(z)\n",
    "a module of the set-up": "def sigmoid(z):\n    return plotting.np.tanh(z)\n",
    # a red-team helper, round 8: bindings nested in blocks and functions
    "bound in an if block": "from medai_lessons import metrics\nif True:\n"
                            "    _stable = metrics.sigmoid_of\n"
                            "def sigmoid(x):\n    return _stable(x)\n",
    "bound in a function, global": "import functools\ndef _use():\n    global sigmoid\n"
                                   "    from medai_lessons.metrics import sigmoid_of\n"
                                   "    sigmoid = functools.partial(sigmoid_of)\n_use()\n",
    "bound by :=": "from medai_lessons import metrics\n"
                   "print(_h := metrics.sigmoid_of)\nsigmoid = _h\n",
    "bound by with": "import contextlib\nimport medai_lessons.metrics as m\n"
                     "with contextlib.nullcontext(m.sigmoid_of) as sigmoid:\n    pass\n",
    "bound in try": "try:\n    from medai_lessons.metrics import sigmoid_of as sigmoid\n"
                    "except ImportError:\n    pass\n",
    # a red-team helper, round 9: a module both called and read in one value
    "in a tuple beside a call": "import medai_lessons.metrics as sv\n"
                                "sigmoid = (sv.sigmoid_of, sv.np.ones(1))[0]\n",
    "a partial behind a called guard": "import functools\nimport medai_lessons.metrics as sv\n"
                                       "sigmoid = functools.partial(sv.sigmoid_of) "
                                       "if sv.np.ones(1)[0] else None\n",
    # forms round 9 left open: names a match pattern captures, values kept in containers
    "a match capture": "import medai_lessons.metrics as sv\nmatch sv.sigmoid_of:\n"
                       "    case f:\n        sigmoid = f\n",
    "a match capture in a sequence": "import medai_lessons.metrics as sv\n"
                                     "match [sv.sigmoid_of]:\n    case [f, *rest]:\n"
                                     "        pass\nsigmoid = f\n",
    "appended to a list": "import medai_lessons.metrics as sv\nfs = []\n"
                          "fs.append(sv.sigmoid_of)\nsigmoid = fs[0]\n",
    "kept by setdefault": "import medai_lessons.metrics as sv\nd = {}\n"
                          "d.setdefault('s', sv.sigmoid_of)\n"
                          "def sigmoid(z):\n    return d['s'](z)\n",
    "set as an item": "import medai_lessons.metrics as sv\nd = {}\nd['s'] = sv.sigmoid_of\n"
                      "sigmoid = d['s']\n",
    "set as an attribute": "import medai_lessons.metrics as sv\nclass Box:\n    pass\n"
                           "Box.f = sv.sigmoid_of\nsigmoid = Box.f\n",
    # a red-team helper, round 10: a def nested in a function that declares its name global
    "a nested def of a global name": "import medai_lessons.metrics as sv\ndef _install():\n"
                                     "    global sigmoid\n    def sigmoid(z):\n"
                                     "        return sv.sigmoid_of(z)\n_install()\n",
}


@pytest.mark.parametrize("form", COURSE_CODE)
def test_an_exercise_that_reaches_the_courses_code_is_seen(form):
    problems = _scan(COURSE_CODE[form]).course_code("sigmoid")
    assert problems and "medai_lessons" in problems[0], problems


@pytest.mark.parametrize("own", [
    "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))\n",
    # a local of the same name as a course module of the set-up
    "def sigmoid(z):\n    plotting = np.exp(-z)\n    return 1 / (1 + plotting)\n",
    # data of the course (a grid of thresholds) is not code
    "def sigmoid(z):\n    return np.interp(z, THRESHOLD_GRID, THRESHOLD_GRID)\n",
    # a value computed with the course's code, then used: the value is data
    "from medai_lessons.metrics import sigmoid_of\nscale = float(sigmoid_of(0.0))\n"
    "def sigmoid(z):\n    return scale * 2 / (1 + np.exp(-z))\n",
    # the name rebound by the learner: the last binding is the one in force (ch04's set-up
    # imports the course's models; the learner's cell imports Keras's)
    "from medai_lessons import models\nfrom keras import layers, models\n"
    "def sigmoid(z):\n    return models.Sequential([layers.Dense(1)])\n",
    "from medai_lessons.nn import sigmoid\nsigmoid = None\n"
    "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))\n",
    # a red-team helper, round 9: a helper of the learner's that compares with the course's
    # function imports it in its own body; the exercise's function is still the learner's
    "def compare(x):\n    from medai_lessons.nn import sigmoid\n    return sigmoid(x)\n"
    "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))\n",
])

def test_an_own_implementation_is_not_taken_for_the_courses(own):
    assert _scan(own).course_code("sigmoid") == []


#: a red-team helper, round 11: an exercise answered by a library's function that computes
#: all of it (ch07's kaplan_meier and concordance_index by scikit-survival's earned full marks)
LIBRARY_CODE = {
    "imported, called in the body": ("kaplan_meier",
                                     "from sksurv.nonparametric import kaplan_meier_estimator\n"
                                     "def kaplan_meier(time, event):\n"
                                     "    return kaplan_meier_estimator(event == 1, time)\n"),
    "a module's attribute": ("concordance_index",
                             "import sksurv.metrics as sm\n"
                             "def concordance_index(time, event, risk):\n"
                             "    c = sm.concordance_index_censored(event == 1, time, risk)\n"
                             "    return c[0]\n"),
    "imported in the body": ("softmax", "def softmax(z):\n"
                                        "    from scipy.special import softmax as s\n"
                                        "    return s(z, axis=1)\n"),
    "an alias": ("sigmoid", "import scipy.special\nsigmoid = scipy.special.expit\n"),
    "imported as the name": ("softmax", "from scipy.special import softmax\n"),
    "through a helper": ("conv2d", "from scipy import signal\n"
                                   "def _one(x, k):\n    return signal.correlate2d(x, k, 'valid')\n"
                                   "def conv2d(x, w, b):\n"
                                   "    return _one(x[0, :, :, 0], w[:, :, 0, 0])\n"),
    "TensorFlow's gradient": ("mlp_backward", "def mlp_backward(params, x, y):\n"
                                              "    with tf.GradientTape() as tape:\n"
                                              "        loss = f(params, x, y)\n"
                                              "    return tape.gradient(loss, params)\n"),
    "a Keras layer": ("gru_cell", "def gru_cell(x, h, p):\n"
                                  "    return keras.layers.GRUCell(4)(x, [h])[0]\n"),
}


@pytest.mark.parametrize("form", LIBRARY_CODE)
def test_an_exercise_that_calls_a_library_implementation_is_seen(form):
    from medai_lessons.grading import LIBRARY_EQUIVALENTS

    exercise, code = LIBRARY_CODE[form]
    problems = _scan(code).library_code(exercise, LIBRARY_EQUIVALENTS[exercise])
    assert problems, form
    assert _scan(code).library_code(exercise, ()) == []


@pytest.mark.parametrize(("exercise", "own"), [
    ("kaplan_meier", "def kaplan_meier(time, event):\n    times = np.unique(time[event == 1])\n"
                     "    return times, np.ones(len(times))\n"
                     "from sksurv.nonparametric import kaplan_meier_estimator\n"
                     "print(kaplan_meier_estimator(e == 1, t))   # compared afterwards\n"),
    ("softmax", "def softmax(z):\n    e = np.exp(z - z.max(axis=1, keepdims=True))\n"
                "    return e / e.sum(axis=1, keepdims=True)\n"),
    ("mlp_backward", "def mlp_backward(params, cache, y):\n    grads = {}\n"
                     "    grads['W2'] = cache['A1'].T @ (cache['P'] - y)\n    return grads\n"),
])
def test_an_own_implementation_is_not_taken_for_a_librarys(exercise, own):
    from medai_lessons.grading import LIBRARY_EQUIVALENTS

    assert _scan(own).library_code(exercise, LIBRARY_EQUIVALENTS[exercise]) == []


#: an exercise's function that reaches its computation by a way the text cannot follow: the
#: library's function by a computed name (which LIBRARY_EQUIVALENTS cannot see), code run as
#: text, an import by name in a helper
UNREADABLE = {
    "a computed name": ("kaplan_meier", "import sksurv.nonparametric as snp\n"
                                        "def kaplan_meier(t, e):\n"
                                        "    f = getattr(snp, 'kaplan_meier' + '_estimator')\n"
                                        "    return f(e == 1, t)\n"),
    "exec": ("softmax", "def softmax(z):\n    exec('from scipy.special import softmax as s')\n"
                        "    return z\n"),
    "__import__ in a helper": ("softmax", "def _h():\n"
                                          "    return __import__('scipy.special').special\n"
                                          "def softmax(z):\n    return _h().softmax(z)\n"),
    "an alias to eval": ("sigmoid", "sigmoid = eval('lambda z: 1 / (1 + np.exp(-z))')\n"),
}


@pytest.mark.parametrize("form", UNREADABLE)
def test_an_exercise_whose_code_the_reading_cannot_follow_is_seen(form):
    exercise, code = UNREADABLE[form]
    assert _scan(code).unreadable_in(exercise), form


def test_a_refused_line_outside_the_exercises_code_does_not_count_against_it():
    scan = _scan("import sys\nprint(sys.version)\n"
                 "def softmax(z):\n    e = np.exp(z)\n    return e / e.sum()\n")
    assert scan.tampering and scan.unreadable_in("softmax") == []


def test_only_what_is_bound_before_the_test_counts():
    scan = _scan("def sigmoid(z):\n    return 1 / (1 + np.exp(-z))\n",
                 "from medai_lessons.metrics import sigmoid_of as sigmoid\n")
    assert scan.course_code("sigmoid", before=3) == []  # the test in cell 3, before the import
    assert scan.course_code("sigmoid", before=4) and scan.course_code("sigmoid")


def test_a_notebook_too_large_to_read_is_said_so_and_costs_little():
    import time

    # a red-team helper, round 8: 5,000 aliases written backwards cost the grader 117 s
    chain = "import numpy as a0\n" + "".join(f"a{i} = a{i - 1}\n" for i in range(20_000, 0, -1))
    started = time.process_time()
    scan = _scan(chain)
    assert time.process_time() - started < 30, "the scan took more than 30 s of CPU"
    assert scan.tampering == [] and "a20000" in notebook_scan._imported(
        [notebook_scan._Cell(1, chain)])  # every alias followed, backwards as written
    huge = _scan("x = 1\n" * 400_000)
    assert huge.tampering and "too large" in huge.tampering[0].why
    # cells each under a cell's limit, over the notebook's in all: the cells past it are unread
    many = _scan(*["y = 2\n" * 40_000] * 5)
    assert [f.cell for f in many.unread] == [6], [str(f) for f in many.unread]
    assert huge.course_code("sigmoid") and "could not read" in huge.course_code("sigmoid")[0]
    magics = _scan("%time x = 1\n" * 500)
    assert magics.tampering and "too many" in magics.tampering[0].why
    # a red-team helper, round 9: lines IPython rewrites that do not start with % (cost grows
    # with the cell's size times its magic lines), and a text nested past the parser's depth
    started = time.process_time()
    rewritten = _scan(("a = %time 1\n" * 190) + ("b = 1\n" * 8000))
    assert rewritten.tampering and "too many" in rewritten.tampering[0].why
    deep = _scan("x = '" + "a." * 9000 + "a'\n")
    assert time.process_time() - started < 30
    assert deep.course_code("sigmoid") == []  # read, no crash

def test_following_a_name_looks_up_each_names_bindings_once(monkeypatch):
    """A red-team helper, round 10: 20,000 nested bindings of a name that call a function
    rebound 20,000 times cost the grader 350 s of CPU for one submission (each call looked up
    all the function's bindings again). The walk looks each name up once, and a chain of
    20,000 aliases is spelled out only when it is reported."""
    cell = "def g(): return 0\nif True:\n" + " f=g()\n g=1\n" * 20_000
    scan = _scan(cell, "def sigmoid(z, _f=f):\n    return z\n")
    looked_up = []
    original = notebook_scan.NotebookScan.in_force
    monkeypatch.setattr(notebook_scan.NotebookScan, "in_force",
                        lambda self, name, before=None: looked_up.append(name)
                        or original(self, name, before))
    assert scan.course_code("sigmoid") == [] and set(scan.cells_of("sigmoid")) == {2, 3}
    assert len(looked_up) == len(set(looked_up)) * 2, sorted(set(looked_up))  # once per walk
    chain = "import medai_lessons.metrics as a0\n" + "".join(
        f"a{i} = a{i - 1}\n" for i in range(1, 20_000)) + "sigmoid = a19999.sigmoid_of\n"
    problems = _scan(chain).course_code("sigmoid")
    assert len(problems) == 1 and "sigmoid -> a19999 -> a19998" in problems[0], problems[:1]


def test_the_kernel_runs_the_probes_it_started_with(monkeypatch):
    # bound when the agent is imported (guard.install, before the notebook's first cell): a
    # replacement in probes afterwards changes nothing the grader asks for
    def forged(func, arrays):
        return {"value": 0.0}

    monkeypatch.setattr(probes, "loss_value_and_gradients", forged)
    import tensorflow as tf

    handle = agent._keep(lambda a, b: tf.reduce_sum(a * b))
    answer = agent._dispatch({"op": "probe", "target": {"handle": handle.id},
                              "probe": "medai_lessons.grading.probes:loss_value_and_gradients",
                              "args": agent._encode([[[1.0, 2.0], [3.0, 4.0]]])})
    value = agent._decode(answer["value"])
    assert value["value"] == pytest.approx(11.0) and value["is_tensor"], value
    with pytest.raises(ValueError, match="no probe"):
        agent._dispatch({"op": "probe", "target": {"handle": handle.id},
                         "probe": "medai_lessons.grading.core:fail", "args": agent._encode([])})


def test_the_probe_checks_are_the_checkers_that_run_a_probe():
    # every checker that runs a probe on the learner's function, through its module's helpers,
    # is one that a notebook reaching the probes loses (and the self-check warns of)
    import importlib
    import inspect

    found = set()
    for chapter in chapters(COURSE):
        module = importlib.import_module(f"medai_lessons.grading.ch{chapter[2:4]}")
        tree = ast.parse(inspect.getsource(module))
        funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        reads = {name: {x.id for x in ast.walk(f) if isinstance(x, ast.Name)}
                 | {x.attr for x in ast.walk(f) if isinstance(x, ast.Attribute)}
                 for name, f in funcs.items()}
        probing = {name for name, r in reads.items() if "run_probe" in r}
        changed = True
        while changed:
            more = {name for name, r in reads.items() if r & probing} - probing
            probing |= more
            changed = bool(more)
        found |= {name for name in probing if name.startswith("check_")}
    assert found == set(notebook_scan.PROBE_CHECKS)
