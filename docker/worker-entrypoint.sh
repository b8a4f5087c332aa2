#!/bin/sh
# Register the deployments of prefect.yaml with the Prefect server, then take their runs.
#
# Without PREFECT_WORK_POOL, the pool(s) are the ones prefect.yaml's deployments name (the
# "ia-continu" process pool: docker-compose). With PREFECT_WORK_POOL set to another pool
# declared under prefect.yaml's definitions.work_pools (Kubernetes: "ia-continu-k8s", type
# kubernetes), every deployment is registered on that pool instead: a copy of prefect.yaml
# with each deployment's work_pool replaced is deployed (`prefect deploy --all` ignores --pool
# when it deploys several deployments). PREFECT_WORK_POOL_TYPE is the pool's type (process by
# default); a missing pool is created, so a fresh stack needs no manual step.
#
# Kubernetes pools: flow runs are Jobs. Their pods get their settings the way the worker's
# own pod does, by reference: the pool's base job template gains envFrom the Secrets and
# ConfigMaps listed in IA_CONTINU_JOB_ENV_FROM ("secret:<name> configmap:<name>": names, not
# values).
set -eu

: "${PREFECT_API_URL:?PREFECT_API_URL must point at the Prefect server, e.g. http://prefect-server:4200/api}"
pool_type=${PREFECT_WORK_POOL_TYPE:-process}
prefect_file=prefect.yaml

if [ -n "${PREFECT_WORK_POOL:-}" ]; then
    pools=$PREFECT_WORK_POOL
    prefect_file=$(python - "$PREFECT_WORK_POOL" <<'PY'
import sys
import tempfile

import yaml

pool = sys.argv[1]
spec = yaml.safe_load(open("prefect.yaml")) or {}
deployments = spec.get("deployments") or []
if all(((d or {}).get("work_pool") or {}).get("name") == pool for d in deployments):
    print("prefect.yaml")
    raise SystemExit
defined = (spec.get("definitions") or {}).get("work_pools") or {}
target = next((p for p in defined.values() if (p or {}).get("name") == pool), {"name": pool})
for deployment in deployments:
    deployment["work_pool"] = dict(target)
# Beside prefect.yaml: entrypoints and the pull step resolve from the working directory.
with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=".prefect-", dir=".", delete=False) as out:
    yaml.safe_dump(spec, out, sort_keys=False)
print(out.name)
PY
)
else
    pools=$(python -c '
import yaml
spec = yaml.safe_load(open("prefect.yaml")) or {}
names = []
for d in spec.get("deployments") or []:
    name = ((d or {}).get("work_pool") or {}).get("name")
    if name and name not in names:
        names.append(name)
print(" ".join(names))
')
fi
if [ -z "$pools" ]; then
    echo "no work pool named in prefect.yaml and PREFECT_WORK_POOL unset" >&2
    exit 1
fi

for pool in $pools; do
    if prefect work-pool inspect "$pool" >/dev/null 2>&1; then
        continue
    fi
    if [ "$pool_type" = kubernetes ]; then
        template=$(mktemp)
        prefect work-pool get-default-base-job-template --type kubernetes --file "$template"
        python - "$template" <<'PY'
import json
import os
import sys

path = sys.argv[1]
template = json.load(open(path))
pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
container = pod["containers"][0]
# What the "restricted" Pod Security Standard asks (the prod namespace enforces it); the
# image runs as its non-root user.
pod["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
container["securityContext"] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
kinds = {"secret": "secretRef", "configmap": "configMapRef"}
refs = []
for source in os.environ.get("IA_CONTINU_JOB_ENV_FROM", "").split():
    kind, _, name = source.partition(":")
    if kind not in kinds or not name:
        sys.exit(f"IA_CONTINU_JOB_ENV_FROM: {source!r} is not secret:<name> or configmap:<name>")
    refs.append({kinds[kind]: {"name": name}})
container["envFrom"] = refs
json.dump(template, open(path, "w"))
PY
        prefect work-pool create "$pool" --type kubernetes --base-job-template "$template"
    else
        prefect work-pool create "$pool" --type "$pool_type"
    fi
done

prefect --no-prompt deploy --all --prefect-file "$prefect_file"

# One worker per container serves the first pool; give another pool its own worker service.
first=${pools%% *}
exec prefect worker start --pool "$first" --type "$pool_type" --with-healthcheck
