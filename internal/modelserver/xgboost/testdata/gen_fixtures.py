#!/usr/bin/env python3
"""Generate XGBoost reference fixtures for berth's pure-Go evaluator.

Run with Debian's python3-xgboost (1.7):

    /usr/bin/python3 gen_fixtures.py            # from this directory

For every case it trains a small model with a fixed seed, saves it as JSON
(model.json), UBJSON (model.ubj) and the legacy binary format
(xgboost-model, no extension, as SageMaker writes it), and writes:

  model.pkl      (some cases) pickle.dump of the Booster
  rows.csv       test rows, no header, no label; empty field = missing
  expected.json  {"objective", "num_class", "predict": [...], "margin": [...],
                  "predict_shape": [...]} computed by xgboost on the same
                  float32 rows (NaN = missing)

Rows are written with repr(float(x)) of float32 values so that parsing them
back gives bit-identical float32 inputs.
"""
import json
import os
import pickle
import shutil

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
NFEAT = 6
NROWS_TRAIN = 400
NROWS_TEST = 60


def make_x(rng, n, nfeat=NFEAT, missing=0.15):
    x = rng.normal(size=(n, nfeat)).astype(np.float32)
    mask = rng.rand(n, nfeat) < missing
    x[mask] = np.nan
    return x


def signal(x):
    z = np.nan_to_num(x, nan=0.0)
    return 1.5 * z[:, 0] - z[:, 1] + 0.5 * z[:, 2] * z[:, 3] + 0.3 * z[:, 4]


def labels(objective, rng, x, num_class):
    s = signal(x)
    if objective in ("reg:squarederror", "reg:pseudohubererror",
                     "reg:absoluteerror"):
        return s + 0.1 * rng.normal(size=len(s))
    if objective == "reg:squaredlogerror":
        return np.exp(0.3 * s)
    if objective == "reg:logistic":
        return 1.0 / (1.0 + np.exp(-s))
    if objective.startswith("binary:"):
        return (s + 0.3 * rng.normal(size=len(s)) > 0).astype(np.float32)
    if objective.startswith("multi:"):
        return np.digitize(s, np.quantile(s, [1 / 3, 2 / 3])).astype(np.float32)
    if objective in ("count:poisson",):
        return rng.poisson(np.exp(0.4 * s)).astype(np.float32)
    if objective in ("reg:tweedie",):
        return (rng.poisson(np.exp(0.4 * s)) * rng.gamma(2.0, 1.0, size=len(s))).astype(np.float32)
    if objective in ("reg:gamma",):
        return rng.gamma(2.0, np.exp(0.3 * s) / 2.0).astype(np.float32) + 1e-3
    if objective.startswith("rank:"):
        return np.clip(np.round(s + 2), 0, 4).astype(np.float32)
    raise ValueError(objective)


# name, params, rounds, extra
CASES = [
    ("reg_squarederror", {"objective": "reg:squarederror"}, 8, {}),
    ("reg_squarederror_base", {"objective": "reg:squarederror", "base_score": 1.25}, 6, {}),
    ("reg_logistic", {"objective": "reg:logistic"}, 8, {}),
    ("binary_logistic", {"objective": "binary:logistic"}, 8, {}),
    ("binary_logistic_base", {"objective": "binary:logistic", "base_score": 0.3}, 6, {}),
    ("binary_logitraw", {"objective": "binary:logitraw"}, 8, {}),
    ("binary_hinge", {"objective": "binary:hinge"}, 6, {}),
    ("multi_softmax", {"objective": "multi:softmax", "num_class": 3}, 5, {}),
    ("multi_softprob", {"objective": "multi:softprob", "num_class": 3}, 5, {}),
    ("count_poisson", {"objective": "count:poisson"}, 8, {}),
    ("reg_tweedie", {"objective": "reg:tweedie", "tweedie_variance_power": 1.4}, 8, {}),
    ("reg_gamma", {"objective": "reg:gamma"}, 8, {}),
    ("reg_pseudohubererror", {"objective": "reg:pseudohubererror"}, 6, {}),
    ("reg_absoluteerror", {"objective": "reg:absoluteerror"}, 6, {}),
    ("reg_squaredlogerror", {"objective": "reg:squaredlogerror"}, 6, {}),
    ("rank_pairwise", {"objective": "rank:pairwise"}, 8, {"groups": True}),
    ("rank_ndcg", {"objective": "rank:ndcg"}, 8, {"groups": True}),
    ("dart_binary", {"objective": "binary:logistic", "booster": "dart",
                     "rate_drop": 0.3, "skip_drop": 0.0}, 8, {}),
    ("gblinear_reg", {"objective": "reg:squarederror", "booster": "gblinear"}, 8, {}),
    ("gblinear_multi", {"objective": "multi:softprob", "num_class": 3,
                        "booster": "gblinear"}, 6, {}),
    ("forest_multi", {"objective": "multi:softprob", "num_class": 3,
                      "num_parallel_tree": 3, "subsample": 0.8,
                      "colsample_bynode": 0.8}, 2, {}),
    ("categorical", {"objective": "reg:squarederror", "tree_method": "hist",
                     "max_cat_to_onehot": 1}, 8, {"categorical": True}),
]

# cases also saved as a Python pickle, with the pickle protocol to use
PICKLED = {"binary_logistic": 4, "multi_softprob": 3}


def fmt(v):
    if np.isnan(v):
        return ""
    return repr(float(v))


def write_rows(path, x):
    with open(path, "w") as f:
        for row in x:
            f.write(",".join(fmt(v) for v in row) + "\n")


def main():
    for name, params, rounds, extra in CASES:
        seed = sum(ord(c) for c in name)
        rng = np.random.RandomState(seed)
        p = {"max_depth": 4, "eta": 0.3, "seed": seed, "nthread": 1,
             "tree_method": "hist"}
        p.update(params)
        num_class = int(p.get("num_class", 0))
        xtr = make_x(rng, NROWS_TRAIN)
        xte = make_x(rng, NROWS_TEST)
        ft = None
        if extra.get("categorical"):
            # feature 5 is categorical with 7 levels (one unseen: 7)
            xtr[:, 5] = rng.randint(0, 7, size=NROWS_TRAIN)
            xte[:, 5] = rng.randint(0, 8, size=NROWS_TEST)
            xte[rng.rand(NROWS_TEST) < 0.1, 5] = np.nan
            ft = ["q"] * (NFEAT - 1) + ["c"]
        y = labels(p["objective"], rng, xtr, num_class)
        if extra.get("categorical"):
            y = y + np.where(np.isin(xtr[:, 5], [1, 4, 6]), 2.0, -1.0)
        dtr = xgb.DMatrix(xtr, label=y, missing=np.nan, feature_types=ft,
                          enable_categorical=ft is not None)
        if extra.get("groups"):
            dtr.set_group([20] * (NROWS_TRAIN // 20))
        bst = xgb.train(p, dtr, rounds)
        out = os.path.join(HERE, name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        bst.save_model(os.path.join(out, "model.json"))
        bst.save_model(os.path.join(out, "model.ubj"))
        if not extra.get("categorical"):
            # The legacy binary format cannot hold categorical splits.
            with open(os.path.join(out, "xgboost-model"), "wb") as f:
                f.write(bst.save_raw(raw_format="deprecated"))
        if name in PICKLED:
            # Older SageMaker containers pickled the Booster.
            with open(os.path.join(out, "model.pkl"), "wb") as f:
                pickle.dump(bst, f, protocol=PICKLED[name])
        write_rows(os.path.join(out, "rows.csv"), xte)
        dte = xgb.DMatrix(xte, missing=np.nan, feature_types=ft,
                          enable_categorical=ft is not None)
        pred = bst.predict(dte)
        margin = bst.predict(dte, output_margin=True)
        exp = {
            "objective": p["objective"],
            "num_class": num_class,
            "predict_shape": list(pred.shape),
            "predict": [float(v) for v in pred.ravel()],
            "margin": [float(v) for v in margin.ravel()],
        }
        with open(os.path.join(out, "expected.json"), "w") as f:
            json.dump(exp, f)
        print(name, pred.shape)


if __name__ == "__main__":
    main()
