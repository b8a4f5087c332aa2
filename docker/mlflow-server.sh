#!/bin/sh
# The MLflow tracking server, proxying artifacts (--serve-artifacts): clients (the API, the
# worker) upload and download models over HTTP through mlflow-artifacts:/ URIs, and only this
# server holds the object store's credentials.
#
#   mlflow-server.sh <the arguments of `mlflow server`>
#
# When the artifacts destination is s3://<bucket>/..., the bucket is created first if it
# does not exist: MinIO (docker-compose, the Kubernetes dev overlay) starts empty. The object
# store may still be starting, so connection errors are retried for about a minute. A bucket
# that exists already, or that this server may not create (a managed S3 where the bucket is
# provisioned apart), is left as it is and the server starts.
# S3 settings come from the environment: MLFLOW_S3_ENDPOINT_URL (MinIO; unset for AWS),
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION.
set -eu

# The destination: the --artifacts-destination= argument, else MLFLOW_ARTIFACTS_DESTINATION
# (which `mlflow server` reads too; the Kubernetes manifests set it).
destination=${MLFLOW_ARTIFACTS_DESTINATION:-}
for arg in "$@"; do
    case $arg in
        --artifacts-destination=*) destination=${arg#--artifacts-destination=} ;;
    esac
done

case $destination in
    s3://*)
        python - "$destination" <<'PY'
import os
import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError

bucket = sys.argv[1].removeprefix("s3://").split("/", 1)[0]
s3 = boto3.client("s3", endpoint_url=os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None)
for attempt in range(30):
    try:
        s3.head_bucket(Bucket=bucket)
        print(f"mlflow-server: bucket {bucket!r} exists", flush=True)
        break
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code not in ("404", "NoSuchBucket", "NotFound"):
            print(f"mlflow-server: cannot check bucket {bucket!r} ({code}); starting anyway",
                  flush=True)
            break
        try:
            s3.create_bucket(Bucket=bucket)
            print(f"mlflow-server: created bucket {bucket!r}", flush=True)
        except ClientError as create_exc:
            print(f"mlflow-server: cannot create bucket {bucket!r} ({create_exc}); "
                  "starting anyway", flush=True)
        break
    except BotoCoreError as exc:  # endpoint not reachable yet
        print(f"mlflow-server: object store not reachable ({exc}); retrying", flush=True)
        time.sleep(2)
else:
    sys.exit(f"mlflow-server: the object store never answered for bucket {bucket!r}")
PY
        ;;
esac

exec mlflow server "$@"
