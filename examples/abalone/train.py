#!/usr/bin/python3
"""Train the two abalone model versions that sagedeploy's examples, tests and benchmarks deploy.

Run from anywhere with Debian's python (it has xgboost 1.7.4):

    /usr/bin/python3 examples/abalone/train.py

It reads abalone.csv beside this script and (re)writes, deterministically:

    model-v1/model.tar.gz    5 rounds, max_depth 2, eta 0.3, saved as JSON
    model-v2/model.tar.gz   80 rounds, max_depth 6, eta 0.1, min_child_weight 10,
                            subsample 0.7, saved as UBJSON
    model-vN/expected.csv   xgboost's predictions for sample.csv, one per line
    sample.csv              10 rows of features (no label, no header): a text/csv payload

Each model.tar.gz holds exactly one file, `xgboost-model`, as SageMaker's XGBoost training job
ships it. The regression is the one of SageMaker's XGBoost abalone example: Rings on the other
columns, Sex one-hot encoded. Feature order (10 features):

    Sex_F, Sex_I, Sex_M, Length, Diameter, Height,
    Whole_weight, Shucked_weight, Viscera_weight, Shell_weight
"""

import csv
import gzip
import io
import os
import sys
import tarfile

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 7
HOLDOUT_FRACTION = 0.2

VERSIONS = {
    # version: (params, rounds, raw format of xgboost-model)
    # v1: a quick first baseline, few small trees (underfits on purpose).
    1: ({"max_depth": 2, "eta": 0.3}, 5, "json"),
    # v2: the tuned model: more, deeper trees with a smaller step and row subsampling.
    2: ({"max_depth": 6, "eta": 0.1, "min_child_weight": 10, "subsample": 0.7}, 80, "ubj"),
}


def load():
    """Return (feature strings, features float64, rings) in file order."""
    with open(os.path.join(HERE, "abalone.csv"), newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        assert header[0] == "Sex" and header[-1] == "Rings", header
        texts, rings = [], []
        for rec in reader:
            sex = rec[0]
            if sex not in ("F", "I", "M"):
                sys.exit("abalone.csv: unknown Sex %r" % sex)
            onehot = ["1" if sex == s else "0" for s in ("F", "I", "M")]
            texts.append(onehot + rec[1:8])
            rings.append(float(rec[8]))
    x = np.array([[float(v) for v in row] for row in texts], dtype=np.float64)
    return texts, x, np.array(rings, dtype=np.float64)


def split(n):
    """Deterministic 80/20 split; the held-out rows are the last 20% of a seeded permutation."""
    perm = np.random.RandomState(SEED).permutation(n)
    cut = int(round(n * (1 - HOLDOUT_FRACTION)))
    return np.sort(perm[:cut]), np.sort(perm[cut:])


def tar_gz(path, name, payload):
    """Write a reproducible gzip tar holding one file (fixed mtime, owner and mode)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        info.mtime = 0
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(payload))
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
            gz.write(raw.getvalue())


def main():
    texts, x, y = load()
    train_idx, test_idx = split(len(y))
    # No feature names in the model, as when SageMaker trains from CSV or libsvm files: a
    # model with names makes xgboost refuse unnamed input, which is what requests carry.
    dtrain = xgb.DMatrix(x[train_idx], label=y[train_idx])
    dtest = xgb.DMatrix(x[test_idx], label=y[test_idx])

    sample_rows = list(range(10))  # the first 10 data lines of abalone.csv
    with open(os.path.join(HERE, "sample.csv"), "w", newline="") as f:
        for i in sample_rows:
            f.write(",".join(texts[i]) + "\n")
    dsample = xgb.DMatrix(x[sample_rows])

    results = {}
    for version, (extra, rounds, fmt) in VERSIONS.items():
        params = {"objective": "reg:squarederror", "seed": SEED, "nthread": 1,
                  "tree_method": "exact"}
        params.update(extra)
        booster = xgb.train(params, dtrain, num_boost_round=rounds)
        pred = booster.predict(dtest)
        rmse = float(np.sqrt(np.mean((pred.astype(np.float64) - y[test_idx]) ** 2)))
        mae = float(np.mean(np.abs(pred.astype(np.float64) - y[test_idx])))
        results[version] = (rmse, mae)

        out = os.path.join(HERE, "model-v%d" % version)
        os.makedirs(out, exist_ok=True)
        tar_gz(os.path.join(out, "model.tar.gz"), "xgboost-model",
               bytes(booster.save_raw(raw_format=fmt)))
        with open(os.path.join(out, "expected.csv"), "w") as f:
            for p in booster.predict(dsample):
                f.write("%.9g\n" % p)
        print("v%d: %d rounds, %s, held-out RMSE %.4f MAE %.4f (%d train / %d held-out rows)"
              % (version, rounds, fmt, rmse, mae, len(train_idx), len(test_idx)))

    if not results[2][0] < results[1][0]:
        sys.exit("v2 is not better than v1 on the held-out rows: %r" % results)


if __name__ == "__main__":
    main()
