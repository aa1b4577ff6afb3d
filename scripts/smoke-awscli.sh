#!/usr/bin/env bash
# Smoke test of `sagedeploy local` with real AWS clients: Debian's AWS CLI v2 (/usr/bin/aws) runs
# the registry → model → endpoint config → endpoint → update sequence, uploads the model
# artifacts with `aws s3 cp` and checks real predictions, reads the endpoint's CloudWatch metrics
# and watches alarms being evaluated; then a deployment guardrail: a canary of a model whose
# container answers 500 trips a CloudWatch alarm and the endpoint rolls back (on a second instance
# with --period-scale 0.05, so that the canary's one-hour bake lasts at most 3 minutes); then boto3 (/usr/bin/python3) checks the same endpoint; then
# a model in XGBoost's legacy binary format, as SageMaker training jobs write it, is registered,
# deployed, invoked with CSV and compared with python xgboost. It builds the binary into a
# temporary directory, starts it on a free port over a temporary data directory, and stops it on
# exit. Any failure exits non-zero and says what failed.
#
# Debian's AWS CLI 2.9 and boto3 1.26 predate AWS_ENDPOINT_URL, so the endpoint is passed
# explicitly (--endpoint-url, endpoint_url).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

AWS=${AWS:-/usr/bin/aws}
PY=${PYTHON:-/usr/bin/python3}

fail() { echo "smoke-awscli: FAIL: $*" >&2; exit 1; }
step() { echo "smoke-awscli: $*"; }

[ -x "$AWS" ] || fail "AWS CLI v2 not found at $AWS (install Debian's awscli package; the pyenv 'aws' on PATH is CLI v1)"
"$AWS" --version 2>&1 | grep -q '^aws-cli/2\.' || fail "$AWS is not AWS CLI v2: $("$AWS" --version 2>&1)"
[ -x "$PY" ] || fail "python3 not found at $PY"
"$PY" -c 'import boto3' 2>/dev/null || fail "boto3 is not importable by $PY (install Debian's python3-boto3)"

work=$(mktemp -d /tmp/sagedeploy-smoke.XXXXXX)
pid=""
gpid=""
cleanup() {
  status=$?
  touch "$work/stop-traffic" 2>/dev/null || true
  for p in "$pid" "$gpid"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  for log in server.log guard-server.log; do
    if [ "$status" -ne 0 ] && [ -f "$work/$log" ]; then
      echo "---- sagedeploy local $log (last 40 lines) ----" >&2
      tail -n 40 "$work/$log" >&2 || true
    fi
  done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

step "building sagedeploy"
go build -o "$work/sagedeploy" ./cmd/sagedeploy || fail "go build ./cmd/sagedeploy failed"

step "starting sagedeploy local on a free port"
"$work/sagedeploy" local --addr 127.0.0.1:0 --data-dir "$work/data" --output json >"$work/ready.json" 2>"$work/server.log" &
pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/ready.json" ] && break
  kill -0 "$pid" 2>/dev/null || fail "sagedeploy local exited at start: $(cat "$work/server.log")"
  sleep 0.1
done
[ -s "$work/ready.json" ] || fail "sagedeploy local printed no startup line within 10s"
url=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$work/ready.json") || fail "startup line is not JSON: $(cat "$work/ready.json")"
step "local SageMaker at $url"

# Dummy credentials and a clean configuration: the developer's ~/.aws must not matter.
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_CONFIG_FILE="$work/aws-config" AWS_SHARED_CREDENTIALS_FILE="$work/aws-credentials" AWS_PAGER=""
unset AWS_PROFILE AWS_SESSION_TOKEN || true
aws() { "$AWS" --endpoint-url "$url" --output json "$@"; }
q() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

image=683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1
role=arn:aws:iam::000000000000:role/SageMakerExecution
art="$root/examples/abalone"
[ -f "$art/model-v1/model.tar.gz" ] && [ -f "$art/model-v2/model.tar.gz" ] || fail "model artifacts missing under $art"

step "uploading model artifacts with aws s3 cp"
aws s3 mb s3://smoke-models >/dev/null || fail "aws s3 mb"
for v in 1 2; do
  aws s3 cp "$art/model-v$v/model.tar.gz" "s3://smoke-models/abalone/v$v/model.tar.gz" >/dev/null || fail "aws s3 cp model v$v"
done
listed=$(aws s3 ls s3://smoke-models --recursive) || fail "aws s3 ls"
echo "$listed" | grep -q 'abalone/v2/model.tar.gz' || fail "uploaded artifact not listed: $listed"
aws s3 cp s3://smoke-models/abalone/v1/model.tar.gz "$work/roundtrip.tar.gz" >/dev/null || fail "aws s3 cp download"
cmp -s "$work/roundtrip.tar.gz" "$art/model-v1/model.tar.gz" || fail "downloaded artifact differs from the uploaded one"

step "registering two versions in model package group abalone"
arn=$(aws sagemaker create-model-package-group --model-package-group-name abalone --model-package-group-description "smoke test" | q 'd["ModelPackageGroupArn"]') \
  || fail "create-model-package-group"
[ "$arn" = "arn:aws:sagemaker:us-east-1:000000000000:model-package-group/abalone" ] || fail "group ARN is $arn"
for v in 1 2; do
  spec="{\"Containers\":[{\"Image\":\"$image\",\"ModelDataUrl\":\"s3://smoke-models/abalone/v$v/model.tar.gz\"}],\"SupportedContentTypes\":[\"text/csv\"],\"SupportedResponseMIMETypes\":[\"text/csv\"]}"
  arn=$(aws sagemaker create-model-package --model-package-group-name abalone --inference-specification "$spec" | q 'd["ModelPackageArn"]') \
    || fail "create-model-package v$v"
  [ "$arn" = "arn:aws:sagemaker:us-east-1:000000000000:model-package/abalone/$v" ] || fail "version $v ARN is $arn"
done
status=$(aws sagemaker describe-model-package --model-package-name abalone/2 | q 'd["ModelApprovalStatus"]') || fail "describe-model-package"
[ "$status" = PendingManualApproval ] || fail "a new version should await approval, it is $status"
if aws sagemaker create-model --model-name unapproved --execution-role-arn "$role" \
    --primary-container ModelPackageName=arn:aws:sagemaker:us-east-1:000000000000:model-package/abalone/1 >/dev/null 2>"$work/err"; then
  fail "create-model accepted an unapproved model package"
fi
grep -q 'ValidationException' "$work/err" || fail "unapproved package: expected ValidationException, got: $(cat "$work/err")"
for v in 1 2; do
  aws sagemaker update-model-package --model-package-arn "arn:aws:sagemaker:us-east-1:000000000000:model-package/abalone/$v" \
    --model-approval-status Approved --approval-description "smoke" >/dev/null || fail "update-model-package v$v"
done
count=$(aws sagemaker list-model-packages --model-package-group-name abalone --model-approval-status Approved | q 'len(d["ModelPackageSummaryList"])') \
  || fail "list-model-packages"
[ "$count" = 2 ] || fail "expected 2 approved versions, listed $count"

step "creating models and endpoint configurations from the registry"
for v in 1 2; do
  aws sagemaker create-model --model-name "abalone-v$v" --execution-role-arn "$role" \
    --primary-container "ModelPackageName=arn:aws:sagemaker:us-east-1:000000000000:model-package/abalone/$v" >/dev/null || fail "create-model v$v"
  aws sagemaker create-endpoint-config --endpoint-config-name "abalone-v$v" \
    --production-variants "VariantName=AllTraffic,ModelName=abalone-v$v,InstanceType=ml.m5.large,InitialInstanceCount=1" >/dev/null \
    || fail "create-endpoint-config v$v"
done

# predict VERSION: invoke the endpoint with the sample rows and compare with the reference
# predictions of that model version.
predict() {
  aws sagemaker-runtime invoke-endpoint --endpoint-name abalone-dev --content-type text/csv --accept text/csv \
    --body "fileb://$art/sample.csv" "$work/pred.csv" >/dev/null || fail "invoke-endpoint"
  "$PY" - "$work/pred.csv" "$art/model-v$1/expected.csv" <<'EOF' || fail "predictions differ from model v$1's reference"
import sys
got = [float(x) for x in open(sys.argv[1]).read().replace("\n", ",").split(",") if x.strip()]
want = [float(x) for x in open(sys.argv[2]).read().split()]
if len(got) != len(want) or any(abs(a - b) > 1e-4 * max(1, abs(b)) for a, b in zip(got, want)):
    sys.exit(f"got {got}\nwant {want}")
EOF
}

step "creating endpoint abalone-dev and waiting for InService"
aws sagemaker create-endpoint --endpoint-name abalone-dev --endpoint-config-name abalone-v1 >/dev/null || fail "create-endpoint"
aws sagemaker wait endpoint-in-service --endpoint-name abalone-dev || fail "wait endpoint-in-service after create"
predict 1

step "updating abalone-dev to version 2"
aws sagemaker update-endpoint --endpoint-name abalone-dev --endpoint-config-name abalone-v2 >/dev/null || fail "update-endpoint"
if aws sagemaker update-endpoint --endpoint-name abalone-dev --endpoint-config-name abalone-v1 >/dev/null 2>"$work/err"; then
  # The update may already have finished on a fast machine; then this second update is legal.
  aws sagemaker wait endpoint-in-service --endpoint-name abalone-dev || fail "wait after second update"
  aws sagemaker update-endpoint --endpoint-name abalone-dev --endpoint-config-name abalone-v2 >/dev/null || fail "update-endpoint back to v2"
else
  grep -q 'Cannot update in-progress endpoint' "$work/err" || fail "second update: expected 'Cannot update in-progress endpoint', got: $(cat "$work/err")"
fi
aws sagemaker wait endpoint-in-service --endpoint-name abalone-dev || fail "wait endpoint-in-service after update"

step "describing abalone-dev"
aws sagemaker describe-endpoint --endpoint-name abalone-dev >"$work/describe.json" || fail "describe-endpoint"
"$PY" - "$work/describe.json" <<'EOF' || fail "describe-endpoint after update is wrong: $(cat "$work/describe.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["EndpointStatus"] == "InService", d["EndpointStatus"]
assert d["EndpointConfigName"] == "abalone-v2", d["EndpointConfigName"]
assert d["EndpointArn"] == "arn:aws:sagemaker:us-east-1:000000000000:endpoint/abalone-dev", d["EndpointArn"]
assert "FailureReason" not in d, d.get("FailureReason")
v = d["ProductionVariants"][0]
assert v["VariantName"] == "AllTraffic" and v["CurrentInstanceCount"] == 1 and v["DesiredInstanceCount"] == 1, v
assert d["LastModifiedTime"] >= d["CreationTime"]
EOF
predict 2

if aws sagemaker describe-endpoint --endpoint-name no-such-endpoint >/dev/null 2>"$work/err"; then
  fail "describe-endpoint of a missing endpoint succeeded"
fi
grep -q 'Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/no-such-endpoint"' "$work/err" \
  || fail "missing endpoint: unexpected error: $(cat "$work/err")"

step "CloudWatch: endpoint metrics and alarms with aws cloudwatch"
dims="Name=EndpointName,Value=abalone-dev Name=VariantName,Value=AllTraffic"
from=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ); to=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
# shellcheck disable=SC2086 # dims is two words on purpose
sum=$(aws cloudwatch get-metric-statistics --namespace AWS/SageMaker --metric-name Invocations --dimensions $dims \
  --start-time "$from" --end-time "$to" --period 3600 --statistics Sum | q 'int(sum(p["Sum"] for p in d["Datapoints"]))') \
  || fail "get-metric-statistics"
[ "$sum" -ge 2 ] || fail "get-metric-statistics: $sum Invocations recorded for abalone-dev, want at least the 2 predictions made"
# shellcheck disable=SC2086
aws cloudwatch put-metric-alarm --alarm-name abalone-dev-5xx --namespace AWS/SageMaker --metric-name Invocation5XXErrors \
  --dimensions $dims --statistic Sum --period 10 --evaluation-periods 1 --threshold 1 \
  --comparison-operator GreaterThanOrEqualToThreshold --treat-missing-data notBreaching >/dev/null || fail "put-metric-alarm abalone-dev-5xx"
aws cloudwatch put-metric-alarm --alarm-name smoke-silence --namespace Smoke --metric-name Heartbeat --statistic SampleCount \
  --period 10 --evaluation-periods 1 --threshold 1 --comparison-operator LessThanThreshold --treat-missing-data breaching >/dev/null \
  || fail "put-metric-alarm smoke-silence"
if aws cloudwatch put-metric-alarm --alarm-name bad --namespace Smoke --metric-name X --statistic Sum --period 45 \
    --evaluation-periods 1 --threshold 1 --comparison-operator GreaterThanThreshold >/dev/null 2>"$work/err"; then
  fail "put-metric-alarm accepted a 45-second period"
fi
grep -q 'InvalidParameterValue' "$work/err" || fail "45-second period: expected InvalidParameterValue, got: $(cat "$work/err")"
# Alarms are evaluated every 10 seconds: no errors keeps one OK, no heartbeats puts the other in ALARM.
aws cloudwatch wait alarm-exists --alarm-names abalone-dev-5xx --state-value OK || fail "abalone-dev-5xx did not become OK"
aws cloudwatch wait alarm-exists --alarm-names smoke-silence --state-value ALARM || fail "smoke-silence did not go to ALARM"
aws cloudwatch describe-alarms --alarm-names smoke-silence >"$work/alarms.json" || fail "describe-alarms"
"$PY" - "$work/alarms.json" <<'EOF' || fail "describe-alarms is wrong: $(cat "$work/alarms.json")"
import json, sys
a = json.load(open(sys.argv[1]))["MetricAlarms"][0]
assert a["StateValue"] == "ALARM" and a["StateReason"].startswith("Threshold Crossed"), a
assert a["AlarmArn"] == "arn:aws:cloudwatch:us-east-1:000000000000:alarm:smoke-silence", a["AlarmArn"]
assert a["TreatMissingData"] == "breaching" and a["Period"] == 10 and a["Statistic"] == "SampleCount", a
EOF
aws cloudwatch delete-alarms --alarm-names smoke-silence || fail "delete-alarms"
left=$(aws cloudwatch describe-alarms | q '[a["AlarmName"] for a in d["MetricAlarms"]]') || fail "describe-alarms after delete"
[ "$left" = "['abalone-dev-5xx']" ] || fail "after delete-alarms the alarms are $left"

step "checking the same endpoint with boto3"
"$PY" - "$url" "$art" <<'EOF' || fail "boto3 check"
import datetime
import sys
import boto3
from botocore.exceptions import ClientError

url, art = sys.argv[1], sys.argv[2]
session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
sm = session.client("sagemaker", endpoint_url=url)
rt = session.client("sagemaker-runtime", endpoint_url=url)
sts = session.client("sts", endpoint_url=url)

d = sm.describe_endpoint(EndpointName="abalone-dev")
assert d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == "abalone-v2", d
sm.get_waiter("endpoint_in_service").wait(EndpointName="abalone-dev")

names = [e["EndpointName"] for e in sm.list_endpoints(NameContains="abalone")["Endpoints"]]
assert names == ["abalone-dev"], names
pages = list(sm.get_paginator("list_models").paginate(PaginationConfig={"PageSize": 1}))
assert len(pages) == 2 and [m["ModelName"] for p in pages for m in p["Models"]] == ["abalone-v2", "abalone-v1"], pages

body = open(f"{art}/sample.csv", "rb").read()
out = rt.invoke_endpoint(EndpointName="abalone-dev", ContentType="text/csv", Body=body)
got = [float(x) for x in out["Body"].read().decode().replace("\n", ",").split(",") if x.strip()]
want = [float(x) for x in open(f"{art}/model-v2/expected.csv").read().split()]
assert len(got) == len(want) and all(abs(a - b) <= 1e-4 * max(1, abs(b)) for a, b in zip(got, want)), (got, want)

try:
    sm.create_endpoint(EndpointName="abalone-dev", EndpointConfigName="abalone-v1")
    raise SystemExit("creating an existing endpoint succeeded")
except ClientError as e:
    assert e.response["Error"]["Code"] == "ValidationException", e.response
    assert "Cannot create already existing endpoint" in e.response["Error"]["Message"], e.response

cw = session.client("cloudwatch", endpoint_url=url)
alarm = cw.describe_alarms(AlarmNames=["abalone-dev-5xx"])["MetricAlarms"][0]
assert alarm["StateValue"] == "OK" and alarm["Threshold"] == 1.0, alarm
now = datetime.datetime.now(datetime.timezone.utc)
stats = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="ModelLatency", Period=3600, Statistics=["Maximum"],
    Dimensions=[{"Name": "EndpointName", "Value": "abalone-dev"}, {"Name": "VariantName", "Value": "AllTraffic"}],
    StartTime=now - datetime.timedelta(hours=2), EndTime=now + datetime.timedelta(hours=1))
assert stats["Datapoints"] and all(p["Unit"] == "Microseconds" and p["Maximum"] > 0 for p in stats["Datapoints"]), stats

ident = sts.get_caller_identity()
assert ident["Account"] == "000000000000", ident
print("boto3: ok")
EOF

step "deploying a legacy-binary model (xgboost-model as SageMaker training writes it)"
# The model is python xgboost 1.7.4's booster.save_model("xgboost-model") (legacy binary, "binf"),
# committed with python's predictions for every abalone row (xgboost/testdata/formats/make.py).
fmt="$root/xgboost/testdata/formats"
mkdir -p "$work/legacy"
cp "$fmt/reg.legacy.bin" "$work/legacy/xgboost-model"
[ "$(head -c 4 "$work/legacy/xgboost-model")" = binf ] || fail "reg.legacy.bin does not start with binf"
tar czf "$work/legacy.tar.gz" -C "$work/legacy" xgboost-model || fail "tar the legacy model"
aws s3 cp "$work/legacy.tar.gz" s3://smoke-models/abalone-legacy/v1/model.tar.gz >/dev/null || fail "aws s3 cp legacy model"
aws sagemaker create-model-package-group --model-package-group-name abalone-legacy >/dev/null || fail "create-model-package-group abalone-legacy"
spec="{\"Containers\":[{\"Image\":\"$image\",\"ModelDataUrl\":\"s3://smoke-models/abalone-legacy/v1/model.tar.gz\"}],\"SupportedContentTypes\":[\"text/csv\"],\"SupportedResponseMIMETypes\":[\"text/csv\"]}"
legacy_arn=$(aws sagemaker create-model-package --model-package-group-name abalone-legacy --inference-specification "$spec" | q 'd["ModelPackageArn"]') \
  || fail "create-model-package abalone-legacy"
aws sagemaker update-model-package --model-package-arn "$legacy_arn" --model-approval-status Approved >/dev/null || fail "approve abalone-legacy/1"
aws sagemaker create-model --model-name abalone-legacy-v1 --execution-role-arn "$role" \
  --primary-container "ModelPackageName=$legacy_arn" >/dev/null || fail "create-model abalone-legacy-v1"
aws sagemaker create-endpoint-config --endpoint-config-name abalone-legacy-v1 \
  --production-variants "VariantName=AllTraffic,ModelName=abalone-legacy-v1,InstanceType=ml.m5.large,InitialInstanceCount=1" >/dev/null \
  || fail "create-endpoint-config abalone-legacy-v1"
aws sagemaker create-endpoint --endpoint-name abalone-legacy-dev --endpoint-config-name abalone-legacy-v1 >/dev/null || fail "create-endpoint abalone-legacy-dev"
aws sagemaker wait endpoint-in-service --endpoint-name abalone-legacy-dev \
  || fail "legacy model endpoint did not reach InService: $(aws sagemaker describe-endpoint --endpoint-name abalone-legacy-dev | q 'd.get("FailureReason")')"
# The first 50 abalone rows as the model's features: Sex one-hot (F, I, M), then the measurements.
"$PY" - "$art/abalone.csv" "$work/legacy-rows.csv" <<'EOF' || fail "build the legacy model's request rows"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))[1:51]
with open(sys.argv[2], "w") as f:
    for r in rows:
        f.write(",".join(["1" if r[0] == s else "0" for s in "FIM"] + r[1:8]) + "\n")
EOF
aws sagemaker-runtime invoke-endpoint --endpoint-name abalone-legacy-dev --content-type text/csv --accept text/csv \
  --body "fileb://$work/legacy-rows.csv" "$work/legacy-pred.csv" >/dev/null || fail "invoke-endpoint abalone-legacy-dev"
"$PY" - "$work/legacy-pred.csv" "$fmt/reg.expected.txt" "$work/legacy/xgboost-model" "$work/legacy-rows.csv" <<'EOF' \
  || fail "the legacy model's predictions differ from python xgboost's"
import sys
got = [float(x) for x in open(sys.argv[1]).read().split()]
want = [float(x) for x in open(sys.argv[2]).read().split()[:50]]
try:  # python xgboost itself on the same file and rows, when it is installed
    import numpy as np
    import xgboost as xgb
    live = xgb.Booster(model_file=sys.argv[3]).predict(xgb.DMatrix(np.loadtxt(sys.argv[4], delimiter=",")))
    assert all(abs(a - float(b)) <= 1e-5 for a, b in zip(want, live)), "committed predictions differ from python's"
    print("smoke-awscli: python xgboost %s predicts the same" % xgb.__version__)
except ImportError:
    print("smoke-awscli: python xgboost not installed; compared with its committed predictions")
if len(got) != 50 or any(abs(a - b) > 1e-5 for a, b in zip(got, want)):
    sys.exit(f"got {got}\nwant {want}")
EOF

# Each AWS CLI call takes a second or more, so the canary takes half the traffic and fails all of
# it: a few calls trip the alarm long before the bake ends.
step "guardrail: a canary that trips a CloudWatch alarm is rolled back (second instance, --period-scale 0.05)"
flaky_image=123456789012.dkr.ecr.us-east-1.amazonaws.com/flaky-model:2
"$work/sagedeploy" local --addr 127.0.0.1:0 --data-dir "$work/guard-data" --output json --period-scale 0.05 \
  --image-map "$flaky_image=FAIL_EVERY=1 $PY $root/localsm/testdata/flaky_server.py" >"$work/guard-ready.json" 2>"$work/guard-server.log" &
gpid=$!
for _ in $(seq 1 100); do
  [ -s "$work/guard-ready.json" ] && break
  kill -0 "$gpid" 2>/dev/null || fail "the guardrail sagedeploy local exited at start: $(cat "$work/guard-server.log")"
  sleep 0.1
done
gurl=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$work/guard-ready.json") || fail "guardrail startup line is not JSON"
gaws() { "$AWS" --endpoint-url "$gurl" --output json "$@"; }
gaws s3 mb s3://guard-models >/dev/null || fail "aws s3 mb guard-models"
gaws s3 cp "$art/model-v1/model.tar.gz" s3://guard-models/scorer/v1/model.tar.gz >/dev/null || fail "aws s3 cp scorer v1"
gaws sagemaker create-model --model-name scorer-v1 --execution-role-arn "$role" \
  --primary-container "Image=$image,ModelDataUrl=s3://guard-models/scorer/v1/model.tar.gz" >/dev/null || fail "create-model scorer-v1"
gaws sagemaker create-model --model-name scorer-v2 --execution-role-arn "$role" --primary-container "Image=$flaky_image" >/dev/null \
  || fail "create-model scorer-v2"
gaws sagemaker create-endpoint-config --endpoint-config-name scorer-v1 \
  --production-variants "VariantName=Blue,ModelName=scorer-v1,InstanceType=ml.m5.large,InitialInstanceCount=1" >/dev/null || fail "create-endpoint-config scorer-v1"
gaws sagemaker create-endpoint-config --endpoint-config-name scorer-v2 \
  --production-variants "VariantName=Green,ModelName=scorer-v2,InstanceType=ml.m5.large,InitialInstanceCount=1" >/dev/null || fail "create-endpoint-config scorer-v2"
gaws sagemaker create-endpoint --endpoint-name scorer-prod --endpoint-config-name scorer-v1 >/dev/null || fail "create-endpoint scorer-prod"
gaws sagemaker wait endpoint-in-service --endpoint-name scorer-prod || fail "scorer-prod did not reach InService"
gaws cloudwatch put-metric-alarm --alarm-name scorer-prod-green-5xx --namespace AWS/SageMaker --metric-name Invocation5XXErrors \
  --dimensions Name=EndpointName,Value=scorer-prod Name=VariantName,Value=Green --statistic Sum --period 10 --evaluation-periods 1 \
  --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold --treat-missing-data notBreaching >/dev/null \
  || fail "put-metric-alarm scorer-prod-green-5xx"

# Traffic: one line per invocation in traffic.log, "ok VARIANT" or "fail VARIANT".
rm -f "$work/stop-traffic"
(
  while [ ! -e "$work/stop-traffic" ]; do
    if out=$(gaws sagemaker-runtime invoke-endpoint --endpoint-name scorer-prod --content-type text/csv \
        --body "fileb://$art/sample.csv" "$work/traffic-out" 2>&1); then
      echo "ok $(echo "$out" | q 'd.get("InvokedProductionVariant", "unknown")')"
    else
      variant=$(echo "$out" | sed -n 's/.*(variant \([A-Za-z0-9-]*\)).*/\1/p' | head -1)
      echo "fail ${variant:-unknown} $(echo "$out" | tr '\n' ' ')"
    fi
  done >"$work/traffic.log"
) &
traffic=$!
deploy_config='{"BlueGreenUpdatePolicy":{"TrafficRoutingConfiguration":{"Type":"CANARY","CanarySize":{"Type":"CAPACITY_PERCENT","Value":50},"WaitIntervalInSeconds":3600},"MaximumExecutionTimeoutInSeconds":3600},"AutoRollbackConfiguration":{"Alarms":[{"AlarmName":"scorer-prod-green-5xx"}]}}'
gaws sagemaker update-endpoint --endpoint-name scorer-prod --endpoint-config-name scorer-v2 --deployment-config "$deploy_config" >/dev/null \
  || fail "update-endpoint scorer-prod to scorer-v2 with a guardrail"
guard_status=Updating
for _ in $(seq 1 600); do
  guard_status=$(gaws sagemaker describe-endpoint --endpoint-name scorer-prod | q 'd["EndpointStatus"]') || fail "describe-endpoint scorer-prod"
  [ "$guard_status" = Updating ] || break
  sleep 0.2
done
touch "$work/stop-traffic"
wait "$traffic" || true
gaws sagemaker describe-endpoint --endpoint-name scorer-prod >"$work/guard-describe.json" || fail "describe-endpoint after the rollback"
"$PY" - "$work/guard-describe.json" "$work/traffic.log" <<'EOF' || fail "guardrail rollback is wrong: $(cat "$work/guard-describe.json")"
import collections, json, sys
d = json.load(open(sys.argv[1]))
assert d["EndpointStatus"] == "InService", d["EndpointStatus"]
assert d["EndpointConfigName"] == "scorer-v1", "the endpoint should serve scorer-v1 again, it serves " + d["EndpointConfigName"]
reason = d.get("FailureReason", "")
assert "rolled back" in reason and "scorer-prod-green-5xx" in reason, reason
assert [v["VariantName"] for v in d["ProductionVariants"]] == ["Blue"], d["ProductionVariants"]
lines = [l.split(" ", 2) for l in open(sys.argv[2]).read().splitlines() if l]
counts = collections.Counter((l[0], l[1]) for l in lines)
print("smoke-awscli: invocations during the canary:", dict(counts))
assert counts[("fail", "Green")] > 0, "no request failed on the canary, so the alarm cannot have fired from its errors"
bad = [l for l in lines if l[0] == "fail" and l[1] != "Green"]
assert not bad, "requests failed outside the canary: %s" % bad[:3]
assert counts[("ok", "Blue")] > 0, "v1 answered nothing during the deployment"
EOF
from=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ); to=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
errors=$(gaws cloudwatch get-metric-statistics --namespace AWS/SageMaker --metric-name Invocation5XXErrors \
  --dimensions Name=EndpointName,Value=scorer-prod Name=VariantName,Value=Green --start-time "$from" --end-time "$to" \
  --period 3600 --statistics Sum | q 'int(sum(p["Sum"] for p in d["Datapoints"]))') || fail "get-metric-statistics Invocation5XXErrors"
[ "$errors" -ge 1 ] || fail "get-metric-statistics: $errors Invocation5XXErrors recorded for the canary, want at least 1"
gaws cloudwatch describe-alarms --alarm-names scorer-prod-green-5xx >"$work/guard-alarm.json" || fail "describe-alarms scorer-prod-green-5xx"
"$PY" - "$work/guard-alarm.json" <<'EOF' || fail "describe-alarms scorer-prod-green-5xx is wrong: $(cat "$work/guard-alarm.json")"
import json, sys
a = json.load(open(sys.argv[1]))["MetricAlarms"][0]
assert a["MetricName"] == "Invocation5XXErrors" and a["StateValue"] in ("OK", "ALARM"), a
EOF
variant=$(gaws sagemaker-runtime invoke-endpoint --endpoint-name scorer-prod --content-type text/csv \
  --body "fileb://$art/sample.csv" "$work/traffic-out" | q 'd["InvokedProductionVariant"]') || fail "invoke scorer-prod after the rollback"
[ "$variant" = Blue ] || fail "after the rollback variant $variant answered, want Blue"
kill -TERM "$gpid"
wait "$gpid" || fail "the guardrail sagedeploy local exited with an error after SIGTERM: $(tail -5 "$work/guard-server.log")"
gpid=""

step "stopping sagedeploy local"
kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then fail "sagedeploy local did not stop within 10s of SIGTERM"; fi
wait "$pid" || fail "sagedeploy local exited with an error after SIGTERM: $(tail -5 "$work/server.log")"
pid=""
grep -q 'op=CreateEndpoint' "$work/server.log" || fail "the server log does not record the CreateEndpoint call"
step "PASS"
