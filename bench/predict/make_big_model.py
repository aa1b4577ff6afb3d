#!/usr/bin/python3
"""Write the big standard case of bench/predict: 1000 trees of depth 8 over 50 features.

    /usr/bin/python3 bench/predict/make_big_model.py [OUT]    # default /tmp/sagedeploy-big-model.ubj

The data are random (seeded) with a target that depends on every feature non-linearly, and
min_child_weight/lambda are low, so the trees grow close to full depth (~400k nodes in all, 6 MB
in the Go walker's layout): a model that does not fit in the processor's caches, which is the
point of the case. Training takes ~3.5 CPU-minutes (nthread=2): ~2 min on a quiet 2-core machine.
"""
import json
import sys

import numpy as np
import xgboost as xgb

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sagedeploy-big-model.ubj"
rng = np.random.default_rng(16)
n, features = 20000, 50
x = rng.normal(size=(n, features)).astype(np.float32)
x[rng.random(size=x.shape) < 0.05] = np.nan  # missing values, so default directions matter
y = np.nansum(np.sin(x * rng.uniform(0.5, 3, features)) * rng.normal(size=features), axis=1)
y += rng.normal(scale=0.5, size=n)
params = {"max_depth": 8, "eta": 0.05, "min_child_weight": 0, "lambda": 0.01,
          "tree_method": "hist", "max_bin": 256, "subsample": 0.8, "nthread": 2,
          "objective": "reg:squarederror"}
booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=1000)
booster.save_model(out)
trees = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
nodes = sum(int(t["tree_param"]["num_nodes"]) for t in trees)
print(f"wrote {out}: 1000 trees of depth <= 8, {features} features, {nodes} nodes")
