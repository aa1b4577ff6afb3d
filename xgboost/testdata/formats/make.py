#!/usr/bin/python3
"""Make the model-format fixtures of package xgboost with python xgboost 1.7.4 (Debian's).

    /usr/bin/python3 xgboost/testdata/formats/make.py [OUTDIR]

OUTDIR defaults to this script's directory. The Go test TestFormatsFromFreshPython runs this
script into a temporary directory to check the loader against freshly written files too.

It trains small models on the abalone data (examples/abalone/abalone.csv), with the same
feature sets as ../make_fixtures.py (all10, measure8), through the scikit-learn wrappers, and
saves each one in the formats SageMaker training jobs and users produce:

  <task>.legacy.bin        booster.save_raw("deprecated"): XGBoost's legacy binary ("binf")
  <task>.nomagic.bin       the same without the 4-byte "binf" magic: the layout of xgboost
                           before 0.82, which 1.7 still loads but can no longer write, so it is
                           made by stripping the magic (the script checks python loads it)
  <task>.booster-p2.pkl    pickle.dump(booster, protocol=2)
  <task>.booster-p3.pkl    pickle.dump(booster, protocol=3)
  <task>.booster-p5.pkl    pickle.dump(booster, protocol=5)
  <task>.sklearn.pkl       pickle.dump(XGBRegressor/XGBClassifier/XGBRanker) (default protocol, 4)
  <task>.sklearn.joblib    joblib.dump of the same (uncompressed)

Every file is loaded back with python and must predict exactly as the trained booster does;
<task>.expected.txt holds those predictions (booster.predict, which is what SageMaker's XGBoost
container answers) for all 4177 rows, float32 with 9 significant digits, comma-separated when
there are several outputs. manifest.json lists files, tasks and what the Go side must see.
"""

import csv
import io
import json
import os
import pickle
import sys

import joblib
import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "examples", "abalone", "abalone.csv")
SEED = 11


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


def tasks(sex, x, rings):
    all10 = np.hstack([np.eye(3)[sex], x])
    measure8 = np.hstack([x, rings[:, None]])
    common = {"n_estimators": 4, "max_depth": 3, "random_state": SEED, "n_jobs": 1}
    qid = np.arange(len(rings)) // 50
    return {
        # name: (estimator, features, label, fit kwargs, feature set)
        "reg": (xgb.XGBRegressor(objective="reg:squarederror", **common), all10, rings, {}, "all10"),
        "binary": (xgb.XGBClassifier(objective="binary:logistic", **common), all10,
                   (rings > 9).astype(int), {}, "all10"),
        "multi": (xgb.XGBClassifier(objective="multi:softprob", **common), measure8, sex, {}, "measure8"),
        "rank": (xgb.XGBRanker(objective="rank:pairwise", **common), all10, rings, {"qid": qid}, "all10"),
        "dart": (xgb.XGBRegressor(booster="dart", rate_drop=0.3, skip_drop=0.0, **common), all10,
                 rings, {}, "all10"),
    }


def write_predictions(path, pred):
    pred = np.asarray(pred, dtype=np.float32)
    with open(path, "w") as f:
        for row in pred.reshape(len(pred), -1):
            f.write(",".join("%.9g" % v for v in row) + "\n")


def files_of(est):
    booster = est.get_booster()
    legacy = bytes(booster.save_raw(raw_format="deprecated"))
    if legacy[:4] != b"binf":
        sys.exit("save_raw('deprecated') did not write the binf magic")
    buf = io.BytesIO()
    joblib.dump(est, buf)
    return {
        "legacy.bin": legacy,
        "nomagic.bin": legacy[4:],
        "booster-p2.pkl": pickle.dumps(booster, protocol=2),
        "booster-p3.pkl": pickle.dumps(booster, protocol=3),
        "booster-p5.pkl": pickle.dumps(booster, protocol=5),
        "sklearn.pkl": pickle.dumps(est),
        "sklearn.joblib": buf.getvalue(),
    }


def reload(path, kind):
    if kind.endswith(".bin"):
        return xgb.Booster(model_file=path)
    if kind.endswith(".joblib"):
        obj = joblib.load(path)
    else:
        with open(path, "rb") as f:
            obj = pickle.load(f)
    return obj if isinstance(obj, xgb.Booster) else obj.get_booster()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else HERE
    os.makedirs(out, exist_ok=True)
    sex, x, rings = load()
    manifest = []
    for name, (est, data, label, kw, feat) in tasks(sex, x, rings).items():
        est.fit(data, label, **kw)
        booster = est.get_booster()
        dpred = xgb.DMatrix(data)
        want = booster.predict(dpred)
        write_predictions(os.path.join(out, name + ".expected.txt"), want)
        cfg = json.loads(booster.save_config())["learner"]
        for kind, raw in files_of(est).items():
            if name == "dart" and not kind.endswith(".bin"):
                continue  # dart is here for its legacy layout (the weights of the trees)
            path = os.path.join(out, "%s.%s" % (name, kind))
            with open(path, "wb") as f:
                f.write(raw)
            again = reload(path, kind).predict(dpred)
            if not np.array_equal(again, want):
                sys.exit("%s: python predicts differently after loading it back" % path)
            manifest.append({
                "file": "%s.%s" % (name, kind), "task": name, "features": feat,
                "objective": cfg["objective"]["name"], "booster": cfg["gradient_booster"]["name"],
                "num_features": data.shape[1], "output_size": 1 if want.ndim == 1 else want.shape[1],
            })
        print("%-7s %-16s %s" % (name, cfg["objective"]["name"], cfg["gradient_booster"]["name"]))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
