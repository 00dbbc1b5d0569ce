#!/usr/bin/python3
"""Trains the scikit-learn model the end-to-end test deploys.

Usage: train.py OUT_DIR

Fits a LogisticRegression on the iris data set bundled with scikit-learn (no
download) and writes into OUT_DIR:

  model.joblib   the fitted estimator, as serve.py loads it
  rows.csv       test rows, one per line, no header (what a client sends)
  expected.csv   the model's prediction for each row, one per line

Everything is deterministic, so a run of the server must give back exactly
the lines of expected.csv.
"""

import os
import sys

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUT_DIR", file=sys.stderr)
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    joblib.dump(model, os.path.join(out, "model.joblib"))

    # Every tenth row covers all three classes.
    rows = x[::10]
    with open(os.path.join(out, "rows.csv"), "w") as f:
        for row in rows:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    with open(os.path.join(out, "expected.csv"), "w") as f:
        for label in model.predict(rows):
            f.write(f"{int(label)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
