"""Chapter 6 study: is an average of several networks better than one? Validation parts only.

    python benchmarks/studies/ch06_ensemble.py                 # 20 splits, 5 networks (~5 min)
    python benchmarks/studies/ch06_ensemble.py --splits 2 --members 2 --epochs 20   # a quick look

The question is answered one level down, exactly as ``medai_lessons.tabular.select_mlp_setup``
rehearses a setup: for each of chapter 6's splits (``stratified_split(X, y, 0.2, 0.2, s)``)
the training part is split again (80 / 20, stratified, seed ``s``), each of the 16 setups of
``MLP_SETUPS`` is trained with early stopping on that inner validation part (the refit variants
then retrained on the whole training part for the chosen epochs), and the networks predict the
split's **validation** part. Member 0 is the network the chapter trains (seed ``s``); the other
members differ only in their seed. **The test parts are never read.**

Rule written before the first run: the chapter adopts the average of 5 networks for its final
fit only if, for the setup the chapter's selection picks (lowest validation log-loss of one
network), the average has both a lower mean validation log-loss and a mean validation accuracy
(threshold 0.5) that is not lower, over the 20 splits.

Writes ``benchmarks/results/ch06_ensemble.json`` (or ``--out``) and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def run(splits: int, members: int, epochs: int) -> list[dict]:
    """One row per split: for every setup, one network's and the average's validation
    log-loss and accuracy, and the setup one network's log-loss selects."""
    import keras
    from sklearn.model_selection import train_test_split
    from tqdm.auto import tqdm

    from medai_lessons.data import load_breast_cancer_table
    from medai_lessons.epoch_trainer import EpochTrainer
    from medai_lessons.models import build_mlp
    from medai_lessons.tabular import (
        MLP_SETUPS,
        MLPSetup,
        binary_log_loss,
        fit_preprocessor,
        stratified_split,
    )

    table = load_breast_cancer_table()
    keras.utils.set_random_seed(0)
    trainer = EpochTrainer(build_mlp(table.X.shape[1]))
    rows = []
    for s in tqdm(range(splits), desc="splits"):
        X_tr, X_va, _, y_tr, y_va, _ = stratified_split(table.X, table.y, 0.2, 0.2, s)
        X_in, X_iv, y_in, y_iv = train_test_split(X_tr, y_tr, test_size=0.2, stratify=y_tr,
                                                  random_state=s)
        y_val = np.asarray(y_va).ravel()
        prep_in, prep_tr = fit_preprocessor(X_in), fit_preprocessor(X_tr)
        predictions: dict[MLPSetup, list[np.ndarray]] = {}
        for setup in (u for u in MLP_SETUPS if not u.refit):
            refit = MLPSetup(setup.l2, setup.noise, refit=True)
            for m in range(members):
                seed = s + 10_000 * m
                trainer.reset(seed)
                history = trainer.fit(prep_in.transform(X_in), y_in, prep_in.transform(X_iv),
                                      y_iv, epochs=epochs, patience=20, l2=setup.l2,
                                      noise=setup.noise, seed=seed)
                predictions.setdefault(setup, []).append(trainer.predict(prep_in.transform(X_va)))
                trainer.reset(seed)
                trainer.fit(prep_tr.transform(X_tr), y_tr, epochs=history.best_epoch + 1,
                            l2=setup.l2, noise=setup.noise, seed=seed)
                predictions.setdefault(refit, []).append(trainer.predict(prep_tr.transform(X_va)))
        scores = {}
        for setup in MLP_SETUPS:
            one, average = predictions[setup][0], np.mean(predictions[setup], axis=0)
            scores[str(setup)] = {
                "one_log_loss": binary_log_loss(y_val, one),
                "average_log_loss": binary_log_loss(y_val, average),
                "one_accuracy": float(np.mean((one >= 0.5) == (y_val == 1))),
                "average_accuracy": float(np.mean((average >= 0.5) == (y_val == 1)))}
        chosen = min(MLP_SETUPS, key=lambda u: (scores[str(u)]["one_log_loss"],
                                                MLP_SETUPS.index(u)))
        rows.append({"split": s, "chosen": str(chosen), "setups": scores})
    return rows


def summary(rows: list[dict]) -> dict:
    """Means over splits: for the setup one network selects, over all setups, and when the
    average selects its own setup by its own log-loss."""
    def mean(values):
        return float(np.mean(list(values)))

    out = {}
    for key in ("one_log_loss", "average_log_loss", "one_accuracy", "average_accuracy"):
        out[f"chosen setup: {key}"] = mean(r["setups"][r["chosen"]][key] for r in rows)
        out[f"all setups: {key}"] = mean(mean(v[key] for v in r["setups"].values())
                                         for r in rows)
    own = [min(r["setups"].values(), key=lambda v: v["average_log_loss"]) for r in rows]
    out["average, own choice: log_loss"] = mean(v["average_log_loss"] for v in own)
    out["average, own choice: accuracy"] = mean(v["average_accuracy"] for v in own)
    out["adopt"] = bool(out["chosen setup: average_log_loss"] < out["chosen setup: one_log_loss"]
                        and out["chosen setup: average_accuracy"]
                        >= out["chosen setup: one_accuracy"])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=300, help="at most, per training")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results"
                        / "ch06_ensemble.json")
    args = parser.parse_args(argv)
    if args.splits < 1 or args.members < 2:
        parser.error("--splits must be at least 1 and --members at least 2 (an average)")
    started = time.perf_counter()
    rows = run(args.splits, args.members, args.epochs)
    result = {"splits": args.splits, "members": args.members, "max_epochs": args.epochs,
              "seconds": time.perf_counter() - started, "summary": summary(rows), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for key, value in result["summary"].items():
        print(f"{key:40s} {value if isinstance(value, bool) else round(value, 4)}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
