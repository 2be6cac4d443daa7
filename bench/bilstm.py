"""BiLSTM layer speed and equality: archs/layers/bilstm.py as it is against the
version at a git revision, interleaved in one process on the CPU (NumpyOps, one
BLAS thread), same parameters and inputs.

    .venv/bin/python bench/bilstm.py [--rev 790df5c] [--repeats 7]

790df5c is the last revision with one loop per direction (before both directions
shared one batched step and, on a GPU, one fused cell kernel).

For each shape (docs x words, width, depth) it checks that the outputs, input
gradients and parameter gradients are bitwise equal, and reports the median
forward+backward time of each version. Prints a table; writes nothing.
"""

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHAPES = [  # (docs, words per doc, width, depth): a character BiLSTM's words and a tok2vec's sentences
    (1000, 8, 64, 1),
    (64, 20, 96, 2),
    (32, 40, 256, 2),
]


def load_revision(rev: str):
    source = subprocess.run(["git", "show", f"{rev}:archs/layers/bilstm.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    source = source.replace("from ..registry import registry", "from archs.registry import registry")
    source = source.replace('@registry.layers("archsweep.BiLSTM.v1")', "")
    path = Path(tempfile.mkdtemp()) / "bilstm_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("bilstm_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="790df5c", help="the before version (a git revision)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    from thinc.api import NumpyOps, set_current_ops
    from threadpoolctl import threadpool_limits

    from archs.layers import bilstm as after

    before = load_revision(args.rev)
    threadpool_limits(limits=1, user_api="blas")
    set_current_ops(NumpyOps(use_blis=False))
    print(f"before: {args.rev}; after: the working tree")
    print(f"{'docs x words':>14} {'width':>6} {'depth':>6} {'before ms':>10} {'after ms':>10} {'speed-up':>9}  equal")
    rng = numpy.random.default_rng(0)
    for docs, words, width, depth in SHAPES:
        lengths = rng.integers(max(1, words // 2), words * 3 // 2 + 1, size=docs)
        Xs = [rng.normal(size=(int(n), width)).astype("f") for n in lengths]
        dYs = [rng.normal(size=(int(n), width)).astype("f") for n in lengths]
        models = {}
        for name, module in (("before", before), ("after", after)):
            model = module.BiLSTM(width, width, depth=depth)
            model.initialize()
            models[name] = model
        for param in models["after"].param_names:
            models["before"].set_param(param, models["after"].get_param(param).copy())
        outputs, times = {}, {"before": [], "after": []}
        for _ in range(args.repeats):
            for name, model in models.items():  # interleaved
                for param in model.param_names:
                    model.set_grad(param, model.ops.alloc(model.get_param(param).shape))
                start = time.perf_counter()
                Ys, backprop = model(Xs, is_train=True)
                dXs = backprop(dYs)
                times[name].append(time.perf_counter() - start)
                outputs[name] = (Ys, dXs, {p: model.get_grad(p).copy() for p in model.param_names})
        equal = all(numpy.array_equal(a, b) for a, b in zip(outputs["before"][0] + outputs["before"][1],
                                                             outputs["after"][0] + outputs["after"][1]))
        equal = equal and all(numpy.array_equal(outputs["before"][2][p], outputs["after"][2][p]) for p in outputs["after"][2])
        b_ms, a_ms = (statistics.median(times[k]) * 1000 for k in ("before", "after"))
        print(f"{f'{docs} x ~{words}':>14} {width:>6} {depth:>6} {b_ms:>10.1f} {a_ms:>10.1f} {b_ms / a_ms:>8.2f}x  {'bitwise' if equal else 'DIFFERENT'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
