"""The python side of bench/predict: xgboost's own C++ predictor on the rows Go measures.

Run by bench/predict as `python3 inplace.py MODEL ROWS N STRIDE`: ROWS holds N rows of STRIDE
little-endian float32 (NaN = missing). It first writes the predictions of all N rows (float32,
as inplace_predict returns them) to ROWS + ".py", then prints "ready", and for every line
"run SECONDS" on stdin calls inplace_predict on the N rows for at least that long and prints
the median microseconds per row of the calls.
"""
import statistics
import sys
import time

import numpy as np
import xgboost as xgb

model, rows_path, n, stride = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
booster = xgb.Booster(model_file=model)
booster.set_param({"nthread": 1})  # one thread, as our predictor answers one request
rows = np.fromfile(rows_path, dtype="<f4").reshape(n, stride)

preds = booster.inplace_predict(rows, missing=np.nan)
np.asarray(preds, dtype="<f4").tofile(rows_path + ".py")
print("ready", flush=True)
for line in sys.stdin:
    seconds = float(line.split()[1])
    times = []
    deadline = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        booster.inplace_predict(rows, missing=np.nan)
        end = time.perf_counter()
        times.append(end - start)
        if end >= deadline and len(times) >= 3:
            break
    print(f"{statistics.median(times) / n * 1e6:.6f}", flush=True)
