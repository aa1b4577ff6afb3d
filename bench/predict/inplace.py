"""The python side of bench/predict: xgboost's own C++ predictor on the rows Go measures.

Run by bench/predict as `python3 inplace.py MODEL ROWS N STRIDE`: ROWS holds N rows of STRIDE
little-endian float32 (NaN = missing). It first writes the predictions of all N rows (float32,
as inplace_predict returns them) to ROWS + ".py", then prints "ready", and for every line
"run SECONDS" on stdin calls inplace_predict on the N rows for at least that long and prints
the median microseconds per row of the calls, in wall time and in this thread's CPU time (with
one thread, xgboost predicts on the calling thread).
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
    walls, cpus = [], []
    deadline = time.perf_counter() + seconds
    while True:
        start, cpu0 = time.perf_counter(), time.thread_time()
        booster.inplace_predict(rows, missing=np.nan)
        end, cpu1 = time.perf_counter(), time.thread_time()
        walls.append(end - start)
        cpus.append(cpu1 - cpu0)
        if end >= deadline and len(walls) >= 3:
            break
    # CPU time: the sum over the calls, as one call can be shorter than the clock's resolution.
    print(f"{statistics.median(walls) / n * 1e6:.6f} {sum(cpus) / len(cpus) / n * 1e6:.6f}", flush=True)
