#!/usr/bin/env bash
# Team mode's cost next to local: the same Panorama reboot (48 generated appliances, the
# offline ones left out by preflight) at the quota, each on a fresh simulator, then the team
# run's DynamoDB requests by operation, read from moto's recorder.
# Needs moto >= 5.2.6 with its server extra (MOTO_SERVER, PYTHON with boto3). Loopback only.
set -u
FD=${FD:-$(cd "$(dirname "$0")/.." && pwd)/target/release/fleetdeck}
MOTO_SERVER=${MOTO_SERVER:-moto_server}
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
cd "$work"
pkill -f "moto.server -H 127.0.0.1 -p 5601" ; pkill -f "sim --listen 127.0.0.1:4590"; sleep 0.5
MOTO_ENABLE_RECORDING=True MOTO_RECORDER_FILEPATH=$work/recording.jsonl $MOTO_SERVER -H 127.0.0.1 -p 5601 > moto.log 2>&1 &
sleep 3
$PYTHON - <<'PY'
import boto3
iam = boto3.client('iam', endpoint_url='http://127.0.0.1:5601', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')
iam.create_user(UserName='ci')
k = iam.create_access_key(UserName='ci')['AccessKey']
open('creds','w').write(f"[ci]\naws_access_key_id = {k['AccessKeyId']}\naws_secret_access_key = {k['SecretAccessKey']}\n")
PY
export AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null FLEETDECK_CONFIG=/nonexistent
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:5601 AWS_ENDPOINT_URL_STS=http://127.0.0.1:5601
export AWS_SHARED_CREDENTIALS_FILE=$work/creds FLEETDECK_TEAM_PROFILE=ci
$FD team init --team bench --lease 2m
export AWS_ACCESS_KEY_ID=AKIDFLEETDECKSIM0001 AWS_SECRET_ACCESS_KEY=fleetdeck/sim/secret/key/not/for/aws
one() {
  local label=$1; shift
  pkill -f "sim --listen 127.0.0.1:4590"; sleep 0.5
  $FD sim --listen 127.0.0.1:4590 --devices 48 --seed 7 > sim-$label.log 2>&1 &
  sleep 2
  export XDG_STATE_HOME=$work/state-$label-$RANDOM
  local t0=$(date +%s.%N)
  $FD run --endpoint-url http://127.0.0.1:4590 --action reboot --filter svc:panorama --yes --output json "$@" > out-$label.json 2> err-$label.log
  local rc=$?
  local t1=$(date +%s.%N)
  echo "$label rc=$rc seconds=$(echo "$t1 - $t0" | bc) sent=$(grep -c '"state"' out-$label.json)"
}
for i in 1; do
  one local-$i
  curl -s -X POST http://127.0.0.1:5601/moto-api/recorder/reset-recording >/dev/null
  curl -s -X POST http://127.0.0.1:5601/moto-api/recorder/start-recording >/dev/null
  one team-$i --team bench
  curl -s -X POST http://127.0.0.1:5601/moto-api/recorder/stop-recording >/dev/null
  curl -s http://127.0.0.1:5601/moto-api/recorder/download-recording > rec-$i.jsonl
  $PYTHON - "$i" <<'PY'
import json, sys, collections
c = collections.Counter(); items = collections.Counter()
for line in open(f"rec-{sys.argv[1]}.jsonl"):
    line=line.strip()
    if not line: continue
    r = json.loads(line)
    h = {k.lower(): v for k, v in (r.get("headers") or {}).items()}
    t = h.get("x-amz-target", "")
    op = t.split(".")[-1] if t else "sts:" + (r.get("body") or "").split("&")[0]
    c[op] += 1
    if op == "TransactWriteItems":
        body = r.get("body") or "{}"
        try: items[op] += len(json.loads(body).get("TransactItems", []))
        except Exception: pass
print("requests:", dict(c), "transact items:", dict(items))
PY
done
