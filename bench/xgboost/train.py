#!/usr/bin/env python3
"""Train the benchmark model (500 trees, depth 6, 28 features) and time
python xgboost's inplace_predict on one thread, batch 1 and 1000.

usage: train.py OUTDIR   -> OUTDIR/xgboost-model (legacy binary, as SageMaker
writes it), OUTDIR/rows.csv (1000 rows, ~5% missing), OUTDIR/expected.txt (python's
predictions for them), prints rows/s lines.
"""
import os
import sys
import time

import numpy as np
import xgboost as xgb

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.RandomState(42)
n, f = 20000, 28
x = rng.normal(size=(n, f)).astype(np.float32)
x[rng.rand(n, f) < 0.05] = np.nan
z = np.nan_to_num(x)
y = (z[:, 0] * z[:, 1] + np.sin(z[:, 2]) + z[:, 3:10].sum(axis=1) * 0.3 + rng.normal(size=n) > 0).astype(np.float32)
model_path = os.path.join(out, "model", "xgboost-model")
if not os.path.exists(model_path):
    os.makedirs(os.path.dirname(model_path), exist_ok=True)
    bst = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1,
                     "tree_method": "hist", "seed": 1, "nthread": os.cpu_count()},
                    xgb.DMatrix(x, label=y), 500)
    with open(model_path, "wb") as fh:
        fh.write(bst.save_raw(raw_format="deprecated"))
bst = xgb.Booster(model_file=model_path)
bst.set_param({"nthread": 1})
rows = rng.normal(size=(1000, f)).astype(np.float32)
rows[rng.rand(1000, f) < 0.05] = np.nan
with open(os.path.join(out, "rows.csv"), "w") as fh:
    for r in rows:
        fh.write(",".join("" if np.isnan(v) else repr(float(v)) for v in r) + "\n")
with open(os.path.join(out, "expected.txt"), "w") as fh:
    fh.write("\n".join(repr(float(v)) for v in bst.inplace_predict(rows)) + "\n")


def rate(batch, seconds=3.0):
    data = rows[:batch]
    bst.inplace_predict(data)  # warm up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(max(1, 200 // batch)):
            bst.inplace_predict(data)
            done += batch
    return done / (time.perf_counter() - start)


for batch in (1, 1000):
    print("python batch=%d rows/s %.0f" % (batch, rate(batch)))
