#!/usr/bin/python3
"""Make the test fixtures of package xgboost with the reference implementation.

Run with Debian's python (xgboost 1.7.4, numpy):

    /usr/bin/python3 xgboost/testdata/make_fixtures.py

For every fixture in FIXTURES it trains a small model on the abalone data
(examples/abalone/abalone.csv), saves it as JSON (<name>.json) and UBJSON (<name>.ubj), loads
each file back, checks that both give the same predictions as the trained booster, and writes
those predictions for every abalone row to <name>.expected.txt: one row per line, float32 values
printed with 9 significant digits (enough to round-trip a float32), comma-separated when the
model has several outputs per row. fixtures.json lists the fixtures for the Go tests.

Inputs (built the same way by the Go test from package examples/abalone):
  all10     Sex_F, Sex_I, Sex_M, Length, Diameter, Height, Whole_weight, Shucked_weight,
            Viscera_weight, Shell_weight
  measure8  Length .. Shell_weight, Rings (to predict Sex)
  sexcat8   Sex as a category code (F=0, I=1, M=2), Length .. Shell_weight
categorical-edges.csv adds rows whose category code is negative, fractional or unseen.
An input marked "missing" has the cells listed in missing-cells.csv (row,column; 0-based; about
10% of all10 cells, drawn with a fixed seed) set to NaN, both for training and prediction.

It also writes pickle.pkl (a pickled Booster) and legacy.bin (the legacy binary format), whose
truncations Load must refuse (formats/make.py makes the full set of those formats), and
config.json (booster.save_config(), a configuration, not a model), which Load must refuse. Everything is deterministic (fixed seeds, nthread=1).
"""

import csv
import json
import os
import pickle
import sys

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "examples", "abalone", "abalone.csv")
SEED = 11
MISSING_FRACTION = 0.1

# name: (params, rounds, features, label, input)
FIXTURES = {
    "squarederror": ({"objective": "reg:squarederror", "max_depth": 4, "base_score": 10},
                     10, "all10", "rings", "full"),
    "logistic": ({"objective": "reg:logistic", "max_depth": 3, "base_score": 0.3},
                 8, "all10", "rings_gt_9", "full"),
    "binary_logistic": ({"objective": "binary:logistic", "max_depth": 4, "base_score": 0.35},
                        8, "all10", "rings_gt_9", "full"),
    "binary_logitraw": ({"objective": "binary:logitraw", "max_depth": 3, "base_score": 0.6},
                        8, "all10", "rings_gt_9", "full"),
    "count_poisson": ({"objective": "count:poisson", "max_depth": 3}, 10, "all10", "rings", "full"),
    "multi_softprob": ({"objective": "multi:softprob", "num_class": 3, "max_depth": 3},
                       6, "measure8", "sex", "full"),
    "multi_softmax": ({"objective": "multi:softmax", "num_class": 3, "max_depth": 3,
                       "num_parallel_tree": 2, "subsample": 0.8, "colsample_bynode": 0.8},
                      4, "measure8", "sex", "full"),
    "missing": ({"objective": "reg:squarederror", "max_depth": 5}, 10, "all10", "rings", "missing"),
    "dart": ({"booster": "dart", "objective": "reg:squarederror", "max_depth": 3,
              "rate_drop": 0.3, "skip_drop": 0.0}, 10, "all10", "rings", "full"),
    "gblinear": ({"booster": "gblinear", "objective": "reg:squarederror", "base_score": 9},
                 10, "all10", "rings", "missing"),
    "gblinear_softprob": ({"booster": "gblinear", "objective": "multi:softprob", "num_class": 3},
                          10, "measure8", "sex", "full"),
    "categorical": ({"objective": "reg:squarederror", "max_depth": 4, "tree_method": "hist",
                     "max_cat_to_onehot": 1}, 8, "sexcat8", "rings", "full"),
    "gamma": ({"objective": "reg:gamma", "max_depth": 3}, 8, "all10", "rings", "full"),
    "tweedie": ({"objective": "reg:tweedie", "max_depth": 3}, 8, "all10", "rings", "full"),
    "hinge": ({"objective": "binary:hinge", "max_depth": 3}, 6, "all10", "rings_gt_9", "full"),
    "pseudohuber": ({"objective": "reg:pseudohubererror", "max_depth": 3, "base_score": 9},
                    8, "all10", "rings", "full"),
    "absoluteerror": ({"objective": "reg:absoluteerror", "max_depth": 3}, 8, "all10", "rings", "full"),
    "squaredlogerror": ({"objective": "reg:squaredlogerror", "max_depth": 3}, 8, "all10", "rings", "full"),
    "cox": ({"objective": "survival:cox", "max_depth": 3}, 6, "all10", "rings", "full"),
}


def load():
    sex, x, rings = [], [], []
    with open(DATA, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for rec in reader:
            sex.append("FIM".index(rec[0]))
            x.append([float(v) for v in rec[1:8]])
            rings.append(float(rec[8]))
    return np.array(sex), np.array(x, dtype=np.float64), np.array(rings, dtype=np.float64)


def features(kind, sex, x, rings):
    if kind == "all10":
        return np.hstack([np.eye(3)[sex], x])
    if kind == "measure8":
        return np.hstack([x, rings[:, None]])
    if kind == "sexcat8":
        return np.hstack([sex[:, None].astype(np.float64), x])
    raise ValueError(kind)


def labels(kind, sex, rings):
    return {"rings": rings, "rings_gt_9": (rings > 9).astype(np.float64), "sex": sex.astype(np.float64)}[kind]


def dmatrix(kind, x, label=None):
    if kind == "sexcat8":
        return xgb.DMatrix(x, label=label, feature_types=["c"] + ["q"] * 7, enable_categorical=True)
    return xgb.DMatrix(x, label=label)


def write_predictions(path, pred):
    pred = np.asarray(pred, dtype=np.float32)
    with open(path, "w") as f:
        for row in pred.reshape(len(pred), -1):
            f.write(",".join("%.9g" % v for v in row) + "\n")


def write_category_edges(booster, x):
    """Predict rows whose category code is not a plain valid code: categorical-edges.csv holds
    the 8 features then the prediction."""
    codes = [0, 1, 2, -1, -0.5, 0.5, 1.5, 2.9, 3, 7, 64, 1e9, np.nan]
    rows = np.array([[c] + list(x[i % 20]) for i, c in enumerate(codes)], dtype=np.float64)
    pred = booster.predict(dmatrix("sexcat8", rows))
    with open(os.path.join(HERE, "categorical-edges.csv"), "w") as f:
        for row, p in zip(rows.astype(np.float32), pred):
            f.write(",".join("%.9g" % v for v in row) + ",%.9g\n" % p)


def main():
    sex, x, rings = load()
    n = len(rings)
    mask = np.random.RandomState(SEED).rand(n, 10) < MISSING_FRACTION
    with open(os.path.join(HERE, "missing-cells.csv"), "w") as f:
        for r, c in zip(*np.nonzero(mask)):
            f.write("%d,%d\n" % (r, c))

    manifest = []
    for name, (extra, rounds, feat, label, inp) in FIXTURES.items():
        data = features(feat, sex, x, rings)
        if inp == "missing":
            data = data.copy()
            data[mask] = np.nan
        params = {"seed": SEED, "nthread": 1}
        params.update(extra)
        booster = xgb.train(params, dmatrix(feat, data, labels(label, sex, rings)), num_boost_round=rounds)
        dpred = dmatrix(feat, data)
        want = booster.predict(dpred)
        for ext, fmt in (("json", "json"), ("ubj", "ubj")):
            raw = bytes(booster.save_raw(raw_format=fmt))
            path = os.path.join(HERE, "%s.%s" % (name, ext))
            with open(path, "wb") as f:
                f.write(raw)
            again = xgb.Booster(model_file=path).predict(dpred)
            if not np.array_equal(again, want):
                sys.exit("%s: the %s file predicts differently from the trained booster" % (name, ext))
        write_predictions(os.path.join(HERE, name + ".expected.txt"), want)
        cfg = json.loads(booster.save_config())["learner"]
        manifest.append({
            "name": name, "objective": cfg["objective"]["name"],
            "booster": cfg["gradient_booster"]["name"], "features": feat, "input": inp,
            "num_features": data.shape[1], "output_size": 1 if want.ndim == 1 else want.shape[1],
        })
        print("%-18s %-22s %s" % (name, cfg["objective"]["name"], cfg["gradient_booster"]["name"]))
        if name == "categorical":
            write_category_edges(booster, x)
    with open(os.path.join(HERE, "fixtures.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")

    # Formats Load must refuse with a helpful message.
    tiny = xgb.train({"objective": "reg:squarederror", "max_depth": 1, "seed": SEED, "nthread": 1},
                     xgb.DMatrix(features("all10", sex, x, rings)[:200], label=rings[:200]), 1)
    with open(os.path.join(HERE, "pickle.pkl"), "wb") as f:
        pickle.dump(tiny, f, protocol=4)
    with open(os.path.join(HERE, "legacy.bin"), "wb") as f:
        f.write(bytes(tiny.save_raw(raw_format="deprecated")))
    with open(os.path.join(HERE, "config.json"), "w") as f:
        f.write(tiny.save_config())


if __name__ == "__main__":
    main()
