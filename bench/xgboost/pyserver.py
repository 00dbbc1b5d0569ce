"""A Python XGBoost server built the way the SageMaker XGBoost container
serves (Flask app under gunicorn, CSV parsed into a DMatrix per request,
one model per worker). Used only as the benchmark baseline.

gunicorn -w N -b 127.0.0.1:PORT --chdir bench/xgboost pyserver:app
with SM_MODEL_DIR pointing at the model directory.
"""
import os

import flask
import numpy as np
import xgboost as xgb

app = flask.Flask(__name__)
booster = xgb.Booster(model_file=os.path.join(os.environ["SM_MODEL_DIR"], "xgboost-model"))
booster.set_param({"nthread": 1})


@app.route("/ping", methods=["GET"])
def ping():
    return flask.Response(status=200)


@app.route("/invocations", methods=["POST"])
def invocations():
    payload = flask.request.data.strip().decode("utf-8")
    rows = [["nan" if v == "" else v for v in line.split(",")] for line in payload.split("\n")]
    dtest = xgb.DMatrix(np.array(rows).astype(np.float64))
    preds = booster.predict(dtest, validate_features=False)
    return flask.Response(response=",".join(map(str, preds.tolist())), status=200, mimetype="text/csv")
