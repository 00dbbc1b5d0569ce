#!/usr/bin/python3
"""A minimal SageMaker-contract model server for a scikit-learn estimator.

It loads $SM_MODEL_DIR/model.joblib and listens on
127.0.0.1:$SAGEMAKER_BIND_TO_PORT (default 8080) with:

  GET  /ping         200 once the model is loaded
  POST /invocations  predictions for the request body:
                       text/csv          rows of numbers, no header
                                         -> one prediction per line
                       application/json  {"instances": [[...], ...]}
                                         -> {"predictions": [...]}
                     malformed input gets 400 with a plain-text message,
                     any other content type 415.

Only the standard library's http.server, plus numpy, joblib and sklearn.
"""

import csv
import io
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import joblib
import numpy as np


class BadInput(Exception):
    """The request body cannot be turned into a feature matrix."""


def load_model():
    path = os.path.join(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"), "model.joblib")
    return joblib.load(path)


MODEL = load_model()
N_FEATURES = getattr(MODEL, "n_features_in_", None)


def to_matrix(rows):
    """Converts a list of rows to a float matrix of the model's width."""
    if not rows:
        raise BadInput("no rows in request")
    try:
        x = np.array(rows, dtype=float)
    except (TypeError, ValueError) as e:
        raise BadInput(f"rows must be lists of numbers of equal length: {e}") from None
    if x.ndim != 2:
        raise BadInput("rows must be lists of numbers of equal length")
    if N_FEATURES is not None and x.shape[1] != N_FEATURES:
        raise BadInput(f"each row needs {N_FEATURES} features, got {x.shape[1]}")
    return x


def parse_csv(body):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("CSV body is not UTF-8") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    return to_matrix(rows)


def parse_json(body):
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise BadInput(f"invalid JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("instances"), list):
        raise BadInput('JSON body must be {"instances": [[...], ...]}')
    return to_matrix(doc["instances"])


def plain(value):
    """A prediction as a JSON/CSV-friendly Python scalar."""
    return value.item() if hasattr(value, "item") else value


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/ping":
            self.reply(200, "text/plain", b"")
        else:
            self.reply(404, "text/plain", b"not found\n")

    def do_POST(self):
        if self.path != "/invocations":
            self.reply(404, "text/plain", b"not found\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        ctype = (self.headers.get("Content-Type") or "text/csv").split(";")[0].strip().lower()
        try:
            if ctype == "text/csv":
                preds = MODEL.predict(parse_csv(body))
                out = "".join(f"{plain(p)}\n" for p in preds).encode()
            elif ctype == "application/json":
                preds = [plain(p) for p in MODEL.predict(parse_json(body))]
                out = json.dumps({"predictions": preds}).encode()
            else:
                self.reply(415, "text/plain", f"unsupported content type {ctype!r}\n".encode())
                return
        except BadInput as e:
            self.reply(400, "text/plain", f"{e}\n".encode())
            return
        self.reply(200, ctype, out)

    def reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("serve.py: " + (fmt % args) + "\n")


def main():
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
