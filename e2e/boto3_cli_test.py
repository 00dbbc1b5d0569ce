#!/usr/bin/python3
"""End-to-end checks of a running berth through boto3 and the AWS CLI.

Usage: boto3_cli_test.py --endpoint-url URL --artifacts DIR --work-dir DIR

DIR (--artifacts) is what sklearn/train.py wrote: model.joblib, rows.csv and
expected.csv. berth must know the image my-sklearn:1 (sklearn/serve.py).

The checks run in order, each a named function that passes or fails on its
own; later checks build on earlier ones (the bucket, the model, the
endpoint). The last line printed is "e2e: N passed, M failed"; the exit code
is non-zero if any check failed.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import traceback

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

AWS_CLI = "/usr/bin/aws"
IMAGE = "my-sklearn:1"
ROLE = "arn:aws:iam::000000000000:role/berth"
BUCKET = "models"
MODEL_KEY = "sklearn/model.tar.gz"
BIG_KEY = "big/random.bin"
BIG_SIZE = 50 * 1024 * 1024  # over the CLI's 8 MiB threshold: multipart

MODEL = "e2e-sklearn"
CONFIG = "e2e-sklearn-config"
ENDPOINT = "e2e-sklearn-endpoint"

# Poll every 50 ms: the default (30 s) is tuned for AWS, not a local server.
FAST_WAITER = {"Delay": 0.05, "MaxAttempts": 600}


class Context:
    """What the checks share: arguments, clients and the test files."""

    def __init__(self, args):
        self.url = args.endpoint_url
        self.artifacts = args.artifacts
        self.work = args.work_dir
        cfg = Config(retries={"max_attempts": 0, "mode": "standard"}, read_timeout=60)
        self.sm = boto3.client("sagemaker", endpoint_url=self.url, config=cfg)
        self.smr = boto3.client("sagemaker-runtime", endpoint_url=self.url, config=cfg)
        self.s3 = boto3.client("s3", endpoint_url=self.url, config=cfg)
        self.rows_path = os.path.join(self.artifacts, "rows.csv")
        with open(self.rows_path, "rb") as f:
            self.rows = f.read()
        with open(os.path.join(self.artifacts, "expected.csv")) as f:
            self.expected = f.read().split()

    def aws(self, *args, stderr=False):
        """Runs the AWS CLI against berth and returns its stdout (its stderr
        if asked for); raises on failure."""
        cmd = [AWS_CLI, "--endpoint-url", self.url, *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd[1:])} exited {p.returncode}\n"
                f"stdout: {p.stdout.strip()}\nstderr: {p.stderr.strip()[-4000:]}"
            )
        return p.stderr if stderr else p.stdout

    def aws_json(self, *args):
        return json.loads(self.aws(*args, "--output", "json"))


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def expect_eq(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def expect_client_error(call, code, status=None):
    """Runs call and returns the ClientError it must raise with code."""
    try:
        result = call()
    except ClientError as e:
        err = e.response["Error"]
        expect_eq("error code", err.get("Code"), code)
        if status is not None:
            expect_eq("HTTP status", e.response["ResponseMetadata"]["HTTPStatusCode"], status)
        if not err.get("Message"):
            raise AssertionError(f"{code} without a message: {e.response}")
        if not e.response["ResponseMetadata"].get("RequestId"):
            raise AssertionError(f"{code} without x-amzn-RequestId: {e.response}")
        return e
    raise AssertionError(f"expected {code}, call succeeded: {result!r}")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def predictions(body):
    return body.decode().split()


# --- (1) AWS CLI: S3 -------------------------------------------------------


@check
def s3_make_bucket(ctx):
    out = ctx.aws("s3", "mb", f"s3://{BUCKET}")
    if f"make_bucket: {BUCKET}" not in out:
        raise AssertionError(f"unexpected output: {out!r}")


@check
def s3_upload_model(ctx):
    tar_path = os.path.join(ctx.work, "model.tar.gz")
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(os.path.join(ctx.artifacts, "model.joblib"), arcname="model.joblib")
    ctx.aws("s3", "cp", "--no-progress", tar_path, f"s3://{BUCKET}/{MODEL_KEY}")
    head = ctx.s3.head_object(Bucket=BUCKET, Key=MODEL_KEY)
    expect_eq("ContentLength", head["ContentLength"], os.path.getsize(tar_path))


@check
def s3_multipart_roundtrip(ctx):
    up = os.path.join(ctx.work, "random.bin")
    down = os.path.join(ctx.work, "random.back")
    with open(up, "wb") as f:
        for _ in range(BIG_SIZE // (1 << 20)):
            f.write(os.urandom(1 << 20))
    # --debug logs each operation the CLI makes; count them to be sure the
    # upload really went multipart.
    log = ctx.aws("--debug", "s3", "cp", "--no-progress", up, f"s3://{BUCKET}/{BIG_KEY}",
                  stderr=True)
    ops = re.findall(r"Making request for OperationModel\(name=(\w+)\)", log)
    expect_eq("CreateMultipartUpload calls", ops.count("CreateMultipartUpload"), 1)
    expect_eq("CompleteMultipartUpload calls", ops.count("CompleteMultipartUpload"), 1)
    if ops.count("UploadPart") < 2:
        raise AssertionError(f"expected several UploadPart calls, got {ops}")
    head = ctx.s3.head_object(Bucket=BUCKET, Key=BIG_KEY)
    expect_eq("ContentLength", head["ContentLength"], BIG_SIZE)
    ctx.aws("s3", "cp", "--no-progress", f"s3://{BUCKET}/{BIG_KEY}", down)
    expect_eq("sha256 after round trip", sha256_file(down), sha256_file(up))
    os.remove(up)
    os.remove(down)


@check
def s3_list(ctx):
    buckets = ctx.aws("s3", "ls").split()
    if BUCKET not in buckets:
        raise AssertionError(f"bucket {BUCKET} not in `aws s3 ls`: {buckets}")
    listing = ctx.aws("s3", "ls", f"s3://{BUCKET}", "--recursive")
    for key in (MODEL_KEY, BIG_KEY):
        if key not in listing:
            raise AssertionError(f"{key} not in listing:\n{listing}")
    if f" {BIG_SIZE} {BIG_KEY}" not in listing:
        raise AssertionError(f"{BIG_KEY} not listed with size {BIG_SIZE}:\n{listing}")


# --- (2) boto3: deploy, invoke, scale --------------------------------------


@check
def create_model(ctx):
    resp = ctx.sm.create_model(
        ModelName=MODEL,
        PrimaryContainer={
            "Image": IMAGE,
            "ModelDataUrl": f"s3://{BUCKET}/{MODEL_KEY}",
            "Environment": {"E2E": "1"},
        },
        ExecutionRoleArn=ROLE,
    )
    expect_eq("ModelArn", resp["ModelArn"],
              f"arn:aws:sagemaker:us-east-1:000000000000:model/{MODEL}")


@check
def create_endpoint_config(ctx):
    resp = ctx.sm.create_endpoint_config(
        EndpointConfigName=CONFIG,
        ProductionVariants=[{
            "VariantName": "AllTraffic",
            "ModelName": MODEL,
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
        }],
    )
    if not resp["EndpointConfigArn"].endswith(f":endpoint-config/{CONFIG}"):
        raise AssertionError(f"EndpointConfigArn {resp['EndpointConfigArn']}")


@check
def create_endpoint_and_wait(ctx):
    start = time.monotonic()
    resp = ctx.sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=CONFIG)
    ctx.sm.get_waiter("endpoint_in_service").wait(EndpointName=ENDPOINT, WaiterConfig=FAST_WAITER)
    print(f"create_endpoint -> InService: {time.monotonic() - start:.2f} s")
    if not resp["EndpointArn"].endswith(f":endpoint/{ENDPOINT}"):
        raise AssertionError(f"EndpointArn {resp['EndpointArn']}")


@check
def invoke_csv(ctx):
    resp = ctx.smr.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv",
                                   Accept="text/csv", Body=ctx.rows)
    expect_eq("predictions", predictions(resp["Body"].read()), ctx.expected)
    expect_eq("ContentType", resp["ContentType"], "text/csv")
    expect_eq("InvokedProductionVariant", resp["InvokedProductionVariant"], "AllTraffic")


@check
def invoke_json(ctx):
    rows = [[float(v) for v in line.split(",")] for line in ctx.rows.decode().split()]
    resp = ctx.smr.invoke_endpoint(EndpointName=ENDPOINT, ContentType="application/json",
                                   Body=json.dumps({"instances": rows}))
    got = json.loads(resp["Body"].read())["predictions"]
    expect_eq("predictions", [str(p) for p in got], ctx.expected)


@check
def invoke_bad_rows_is_model_error(ctx):
    # serve.py answers 400; SageMaker reports that as ModelError (424).
    e = expect_client_error(
        lambda: ctx.smr.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv",
                                        Body=b"1,2\n"),
        "ModelError", 424)
    expect_eq("OriginalStatusCode", e.response.get("OriginalStatusCode"), 400)
    if "4 features" not in e.response.get("OriginalMessage", ""):
        raise AssertionError(f"OriginalMessage lacks the model's message: {e.response}")


@check
def describe_resources(ctx):
    model = ctx.sm.describe_model(ModelName=MODEL)
    expect_eq("Image", model["PrimaryContainer"]["Image"], IMAGE)
    expect_eq("ModelDataUrl", model["PrimaryContainer"]["ModelDataUrl"],
              f"s3://{BUCKET}/{MODEL_KEY}")
    expect_eq("Environment", model["PrimaryContainer"].get("Environment"), {"E2E": "1"})
    expect_eq("ExecutionRoleArn", model["ExecutionRoleArn"], ROLE)

    config = ctx.sm.describe_endpoint_config(EndpointConfigName=CONFIG)
    pv = config["ProductionVariants"][0]
    expect_eq("config ModelName", pv["ModelName"], MODEL)
    expect_eq("config InitialInstanceCount", pv["InitialInstanceCount"], 1)

    ep = ctx.sm.describe_endpoint(EndpointName=ENDPOINT)
    expect_eq("EndpointStatus", ep["EndpointStatus"], "InService")
    expect_eq("EndpointConfigName", ep["EndpointConfigName"], CONFIG)
    v = ep["ProductionVariants"][0]
    expect_eq("VariantName", v["VariantName"], "AllTraffic")
    expect_eq("CurrentInstanceCount", v["CurrentInstanceCount"], 1)
    if ep["LastModifiedTime"] < ep["CreationTime"]:
        raise AssertionError(f"LastModifiedTime before CreationTime: {ep}")


@check
def list_resources(ctx):
    models = ctx.sm.list_models(NameContains="e2e-sklearn")["Models"]
    expect_eq("list_models", [m["ModelName"] for m in models], [MODEL])
    configs = ctx.sm.list_endpoint_configs(NameContains="e2e-sklearn")["EndpointConfigs"]
    expect_eq("list_endpoint_configs", [c["EndpointConfigName"] for c in configs], [CONFIG])
    eps = ctx.sm.list_endpoints(NameContains="e2e-sklearn")["Endpoints"]
    expect_eq("list_endpoints", [(e["EndpointName"], e["EndpointStatus"]) for e in eps],
              [(ENDPOINT, "InService")])


@check
def invalid_model_name_is_rejected(ctx):
    # botocore checks types and lengths, not patterns: this reaches berth.
    expect_client_error(
        lambda: ctx.sm.create_model(ModelName="bad_name", ExecutionRoleArn=ROLE,
                                    PrimaryContainer={"Image": IMAGE}),
        "ValidationException", 400)
    expect_eq("list_models", ctx.sm.list_models(NameContains="bad")["Models"], [])


@check
def duplicate_model_is_rejected(ctx):
    expect_client_error(
        lambda: ctx.sm.create_model(ModelName=MODEL, ExecutionRoleArn=ROLE,
                                    PrimaryContainer={"Image": IMAGE}),
        "ValidationException", 400)


@check
def unknown_endpoint_config_is_rejected(ctx):
    expect_client_error(
        lambda: ctx.sm.create_endpoint(EndpointName="e2e-orphan",
                                       EndpointConfigName="e2e-no-such-config"),
        "ValidationException", 400)
    expect_client_error(lambda: ctx.sm.describe_endpoint(EndpointName="e2e-orphan"),
                        "ValidationException", 400)


@check
def invoke_unknown_endpoint_is_rejected(ctx):
    expect_client_error(
        lambda: ctx.smr.invoke_endpoint(EndpointName="e2e-no-such-endpoint",
                                        ContentType="text/csv", Body=ctx.rows),
        "ValidationError", 400)


@check
def scale_to_two_instances(ctx):
    start = time.monotonic()
    ctx.sm.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}],
    )
    ctx.sm.get_waiter("endpoint_in_service").wait(EndpointName=ENDPOINT, WaiterConfig=FAST_WAITER)
    print(f"update_endpoint_weights_and_capacities -> InService: {time.monotonic() - start:.2f} s")
    v = ctx.sm.describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"][0]
    expect_eq("CurrentInstanceCount", v["CurrentInstanceCount"], 2)
    expect_eq("DesiredInstanceCount", v.get("DesiredInstanceCount"), 2)
    for _ in range(10):
        resp = ctx.smr.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=ctx.rows)
        expect_eq("predictions after scaling", predictions(resp["Body"].read()), ctx.expected)


# --- (3) AWS CLI: sagemaker and sagemaker-runtime --------------------------


@check
def cli_describe_endpoint(ctx):
    ep = ctx.aws_json("sagemaker", "describe-endpoint", "--endpoint-name", ENDPOINT)
    expect_eq("EndpointStatus", ep["EndpointStatus"], "InService")
    expect_eq("CurrentInstanceCount", ep["ProductionVariants"][0]["CurrentInstanceCount"], 2)


@check
def cli_list_endpoints(ctx):
    eps = ctx.aws_json("sagemaker", "list-endpoints")["Endpoints"]
    if ENDPOINT not in [e["EndpointName"] for e in eps]:
        raise AssertionError(f"{ENDPOINT} not in list-endpoints: {eps}")


@check
def cli_invoke_endpoint(ctx):
    out = os.path.join(ctx.work, "out.txt")
    meta = ctx.aws_json("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", ENDPOINT,
                        "--body", f"fileb://{ctx.rows_path}", "--content-type", "text/csv", out)
    expect_eq("ContentType", meta.get("ContentType"), "text/csv")
    with open(out, "rb") as f:
        expect_eq("predictions", predictions(f.read()), ctx.expected)


# --- (4) tear down ---------------------------------------------------------


def bad_clients(ctx, key_id, secret):
    cfg = Config(retries={"max_attempts": 0, "mode": "standard"}, read_timeout=60)
    return [boto3.client(svc, endpoint_url=ctx.url, config=cfg, aws_access_key_id=key_id,
                         aws_secret_access_key=secret) for svc in ("sagemaker", "sagemaker-runtime", "s3")]


@check
def wrong_keys_are_refused(ctx):
    """berth runs with credentials (run.sh): boto3 signing with a wrong
    secret or an unknown key gets each protocol's AWS error."""
    for key_id, secret, codes in (
        (os.environ["AWS_ACCESS_KEY_ID"], "not-the-secret",
         ("InvalidSignatureException", "InvalidSignatureException", "SignatureDoesNotMatch")),
        ("AKIDUNKNOWN", os.environ["AWS_SECRET_ACCESS_KEY"],
         ("UnrecognizedClientException", "UnrecognizedClientException", "InvalidAccessKeyId")),
    ):
        sm, smr, s3 = bad_clients(ctx, key_id, secret)
        expect_client_error(lambda: sm.list_models(), codes[0], 400)
        expect_client_error(lambda: smr.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv",
                                                        Body=ctx.rows), codes[1], 403)
        expect_client_error(lambda: s3.put_object(Bucket=BUCKET, Key="refused", Body=b"x"), codes[2], 403)
    expect_client_error(lambda: ctx.s3.head_object(Bucket=BUCKET, Key="refused"), "404", 404)


@check
def cli_wrong_secret_is_refused(ctx):
    env = dict(os.environ, AWS_SECRET_ACCESS_KEY="not-the-secret")
    for args, code in ((["s3", "ls"], "SignatureDoesNotMatch"),
                       (["sagemaker", "list-endpoints"], "InvalidSignatureException")):
        p = subprocess.run([AWS_CLI, "--endpoint-url", ctx.url, *args], capture_output=True, text=True,
                           timeout=120, env=env)
        if p.returncode == 0 or code not in p.stderr:
            raise AssertionError(f"aws {' '.join(args)} with a wrong secret: exit {p.returncode}, "
                                 f"stderr {p.stderr.strip()[-500:]!r}, want {code}")


@check
def s3_presigned_url_with_curl(ctx):
    """An `aws s3 presign` URL fetched with curl (no AWS client at all)."""
    url = ctx.aws("s3", "presign", f"s3://{BUCKET}/{MODEL_KEY}", "--expires-in", "300").strip()
    out = os.path.join(ctx.work, "presigned.tar.gz")
    subprocess.run(["curl", "-fsS", "-o", out, url], check=True, timeout=60)
    expect_eq("presigned download", sha256_file(out), sha256_file(os.path.join(ctx.work, "model.tar.gz")))
    tampered = url.replace(MODEL_KEY, "sklearn/other.tar.gz")
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", tampered],
                       capture_output=True, text=True, timeout=60)
    expect_eq("presigned URL for another key: HTTP status", p.stdout, "403")
    # boto3's presigned PUT and GET, with curl: boto3's default (signature
    # version 2 for S3 URLs) and s3v4. curl -T sends no Content-Type, as
    # signed.
    s3v4 = boto3.client("s3", endpoint_url=ctx.url, config=Config(signature_version="s3v4"))
    for name, client in (("default", ctx.s3), ("s3v4", s3v4)):
        key = f"presigned/{name}.csv"
        put_url = client.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
        subprocess.run(["curl", "-fsS", "-T", ctx.rows_path, put_url], check=True, timeout=60, capture_output=True)
        get_url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
        p = subprocess.run(["curl", "-fsS", get_url], check=True, timeout=60, capture_output=True)
        expect_eq(f"object through {name} presigned PUT and GET", p.stdout, ctx.rows)
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", get_url.replace(key, key + "x")],
                           capture_output=True, text=True, timeout=60)
        expect_eq(f"{name} presigned URL for another key: HTTP status", p.stdout, "403")


@check
def transform_job_completed(ctx):
    # Batch transform over the same rows, split into lines and packed into
    # mini-batches; the boto3 waiter polls DescribeTransformJob.
    ctx.s3.put_object(Bucket=BUCKET, Key="batch-in/rows.csv", Body=ctx.rows)
    name = "e2e-sklearn-transform"
    resp = ctx.sm.create_transform_job(
        TransformJobName=name,
        ModelName=MODEL,
        BatchStrategy="MultiRecord",
        MaxPayloadInMB=1,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                            "S3Uri": f"s3://{BUCKET}/batch-in/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/batch-out/", "AssembleWith": "Line",
                         "Accept": "text/csv"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    if not resp["TransformJobArn"].endswith(f":transform-job/{name}"):
        raise AssertionError(f"TransformJobArn {resp['TransformJobArn']}")
    ctx.sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName=name, WaiterConfig=FAST_WAITER)
    job = ctx.sm.describe_transform_job(TransformJobName=name)
    expect_eq("TransformJobStatus", job["TransformJobStatus"], "Completed")
    out = ctx.s3.get_object(Bucket=BUCKET, Key="batch-out/rows.csv.out")["Body"].read()
    expect_eq("predictions", predictions(out), ctx.expected)
    listed = ctx.sm.list_transform_jobs(NameContains="e2e-sklearn", StatusEquals="Completed")
    expect_eq("listed jobs", [j["TransformJobName"] for j in listed["TransformJobSummaries"]], [name])


@check
def delete_endpoint_and_wait(ctx):
    start = time.monotonic()
    ctx.sm.delete_endpoint(EndpointName=ENDPOINT)
    ctx.sm.get_waiter("endpoint_deleted").wait(EndpointName=ENDPOINT, WaiterConfig=FAST_WAITER)
    print(f"delete_endpoint -> deleted: {time.monotonic() - start:.2f} s")
    expect_client_error(
        lambda: ctx.smr.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv",
                                        Body=ctx.rows),
        "ValidationError", 400)


@check
def delete_config_and_model(ctx):
    ctx.sm.delete_endpoint_config(EndpointConfigName=CONFIG)
    ctx.sm.delete_model(ModelName=MODEL)
    expect_client_error(lambda: ctx.sm.describe_endpoint_config(EndpointConfigName=CONFIG),
                        "ValidationException", 400)
    expect_client_error(lambda: ctx.sm.describe_model(ModelName=MODEL),
                        "ValidationException", 400)
    expect_eq("list_models", ctx.sm.list_models(NameContains="e2e-sklearn")["Models"], [])
    expect_eq("list_endpoints", ctx.sm.list_endpoints(NameContains="e2e-sklearn")["Endpoints"], [])


def isolate_aws_environment():
    """Test credentials and no user profile, for boto3 and the CLI alike."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
        os.environ.pop(name, None)
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--artifacts", required=True, help="directory train.py wrote")
    parser.add_argument("--work-dir", required=True, help="scratch directory")
    args = parser.parse_args()
    isolate_aws_environment()
    ctx = Context(args)

    passed, failed = 0, []
    for fn in CHECKS:
        start = time.monotonic()
        try:
            fn(ctx)
        except Exception as e:  # each check fails on its own, the rest still run
            failed.append(fn.__name__)
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}")
            if not isinstance(e, (AssertionError, ClientError)):
                traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"ok   {fn.__name__} ({time.monotonic() - start:.2f} s)")
        sys.stdout.flush()

    if failed:
        print(f"failed checks: {', '.join(failed)}")
    print(f"e2e: {passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
