#!/bin/sh
# Register the deployments of prefect.yaml with the Prefect server, then take their runs.
# The work pool(s) come from prefect.yaml (or PREFECT_WORK_POOL); each is created as a
# process pool when missing, so a fresh stack needs no manual step.
set -eu

: "${PREFECT_API_URL:?PREFECT_API_URL must point at the Prefect server, e.g. http://prefect-server:4200/api}"

if [ -n "${PREFECT_WORK_POOL:-}" ]; then
    pools=$PREFECT_WORK_POOL
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
    prefect work-pool inspect "$pool" >/dev/null 2>&1 \
        || prefect work-pool create "$pool" --type process
done

prefect --no-prompt deploy --all

# One worker per container serves the first pool; give another pool its own worker service.
first=${pools%% *}
exec prefect worker start --pool "$first" --type process --with-healthcheck
