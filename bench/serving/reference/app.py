"""Reference serving stack for bench/serving: what a user would otherwise run.

Flask app with the SageMaker serving contract (GET /ping, POST /invocations with text/csv rows,
one prediction per line), predicting with Debian's python3-xgboost, run under gunicorn with one
worker per core — the shape of SageMaker's own XGBoost container. MODEL_PATH names the model file.
"""
import os

import numpy as np
import xgboost as xgb
from flask import Flask, Response, request

booster = xgb.Booster()
booster.load_model(os.environ["MODEL_PATH"])
# One thread per worker, workers = cores. Left to its default, xgboost builds each DMatrix with
# an OpenMP team of every core, which costs ~10 ms a request here (threads spinning against the
# other workers) instead of ~0.3 ms: the reference would look far slower than it can be.
booster.set_param({"nthread": 1})

app = Flask(__name__)


@app.get("/ping")
def ping():
    return Response("", status=200)


@app.post("/invocations")
def invocations():
    if request.content_type is None or not request.content_type.startswith("text/csv"):
        return Response("unsupported content type", status=415)
    text = request.get_data(as_text=True)
    rows = [line for line in text.splitlines() if line.strip()]
    data = np.array([[float(v) if v != "" else np.nan for v in r.split(",")] for r in rows], dtype=np.float32)
    preds = booster.predict(xgb.DMatrix(data, nthread=1))
    return Response("\n".join(repr(float(p)) for p in preds) + "\n", mimetype="text/csv")
