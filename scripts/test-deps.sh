#!/usr/bin/env bash
# Test dependencies for the end-to-end client tests (node/tests/e2e_clients.rs):
#   kcat (Debian's package, linking Debian's librdkafka 2.0.x) and a Python venv at .venv
#   with confluent-kafka (wheel with a recent librdkafka) and kafka-python (pure Python);
#   promtool for node/tests/admin_metrics.rs; iptables for node/tests/e2e_cluster.rs;
#   kafkajs (Node.js) in node/tests/clients/js/node_modules and librdkafka's test suite (built
#   by scripts/rdkafka-tests.sh) for node/tests/e2e_cluster_clients.rs.
# Idempotent: installs only what is missing. Unattended (CI: root, no stdin).
# scripts/test.sh calls it; run it by hand before `cargo test` of node/tests/e2e_clients.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

# The versions the tests were written against (change deliberately, then rerun the tests).
CONFLUENT_KAFKA_VERSION=2.16.1
KAFKA_PYTHON_VERSION=3.0.12
# kafka-python's codecs (confluent-kafka bundles its own): lz4, zstd, snappy.
LZ4_VERSION=4.4.5
ZSTANDARD_VERSION=0.25.0
PYTHON_SNAPPY_VERSION=0.7.3
KAFKAJS_VERSION=2.2.4

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    $SUDO apt-get update </dev/null
    APT_UPDATED=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" </dev/null
}

if ! command -v kcat >/dev/null 2>&1; then
  echo "test-deps: installing kcat" >&2
  apt_install kcat
fi

# iptables (node/tests/e2e_cluster.rs cuts the network between cluster nodes with it).
if ! command -v iptables >/dev/null 2>&1; then
  echo "test-deps: installing iptables" >&2
  apt_install iptables
fi

# promtool (node/tests/admin_metrics.rs checks /metrics with `promtool check metrics`): Debian's
# `prometheus` package ships it as /usr/bin/promtool, but installing that package also
# installs and may start a Prometheus server. Only the promtool binary (static, no
# dependencies) is taken from the package, into /usr/local/bin.
if ! command -v promtool >/dev/null 2>&1; then
  echo "test-deps: installing promtool (from Debian's prometheus package)" >&2
  if [ "$APT_UPDATED" = 0 ]; then
    $SUDO apt-get update </dev/null
    APT_UPDATED=1
  fi
  deb_dir="$(mktemp -d)"
  # apt downloads as its sandbox user when run as root: let it write there.
  if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$deb_dir"; fi
  (cd "$deb_dir" && apt-get download prometheus </dev/null)
  dpkg-deb --fsys-tarfile "$deb_dir"/prometheus_*.deb | tar -x -C "$deb_dir" ./usr/bin/promtool
  $SUDO install -m 755 "$deb_dir/usr/bin/promtool" /usr/local/bin/promtool
  rm -rf "$deb_dir"
fi

PY=${PYTHON:-python3}
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  echo "test-deps: creating $VENV" >&2
  if ! "$PY" -m venv "$VENV"; then
    # Debian's python3 ships venv separately.
    apt_install python3-venv
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
  fi
fi

if ! "$VENV/bin/python" - "$CONFLUENT_KAFKA_VERSION" "$KAFKA_PYTHON_VERSION" "$LZ4_VERSION" "$ZSTANDARD_VERSION" >/dev/null 2>&1 <<'PY'
import sys
import confluent_kafka, kafka, lz4, zstandard, snappy
want = tuple(sys.argv[1:5])
sys.exit(0 if (confluent_kafka.__version__, kafka.__version__, lz4.__version__, zstandard.__version__) == want else 1)
PY
then
  echo "test-deps: installing confluent-kafka $CONFLUENT_KAFKA_VERSION, kafka-python $KAFKA_PYTHON_VERSION and its codecs into $VENV" >&2
  # PIP_FIND_LINKS (local wheels), if set, is honoured by pip.
  "$VENV/bin/python" -m pip install --quiet --no-input \
    "confluent-kafka==$CONFLUENT_KAFKA_VERSION" "kafka-python==$KAFKA_PYTHON_VERSION" \
    "lz4==$LZ4_VERSION" "zstandard==$ZSTANDARD_VERSION" "python-snappy==$PYTHON_SNAPPY_VERSION" </dev/null
fi

# kafkajs (node/tests/e2e_cluster_clients.rs runs node/tests/clients/js/roundtrip.js with it):
# Node.js from Debian when there is none, and kafkajs (no dependencies of its own) into
# node/tests/clients/js/node_modules, without a package.json or lock file.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "test-deps: installing Node.js" >&2
  apt_install nodejs npm
fi
JS=node/tests/clients/js
if [ "$(node -e 'try { console.log(require(process.argv[1]).version) } catch (e) {}' \
      "$PWD/$JS/node_modules/kafkajs/package.json")" != "$KAFKAJS_VERSION" ]; then
  echo "test-deps: installing kafkajs $KAFKAJS_VERSION into $JS/node_modules" >&2
  npm install --prefix "$JS" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    "kafkajs@$KAFKAJS_VERSION" </dev/null
fi

# librdkafka's own test suite (node/tests/e2e_cluster_clients.rs runs its transaction and
# idempotence tests against a cluster): built once into ~/.cache/sluice-rdkafka-tests.
RDKAFKA_BUILD_ONLY=1 RDKAFKA_MAKE_JOBS="${RDKAFKA_MAKE_JOBS:-2}" bash scripts/rdkafka-tests.sh

echo "test-deps: kcat: $(kcat -V 2>&1 | grep -m1 '^Version' || kcat -V 2>&1 | head -n 1)"
echo "test-deps: $(promtool --version 2>&1 | head -n 1)"
"$VENV/bin/python" - <<'PY'
import confluent_kafka, kafka, sys
print("test-deps: python", sys.version.split()[0])
print("test-deps: confluent-kafka", confluent_kafka.__version__,
      "librdkafka", confluent_kafka.libversion()[0])
print("test-deps: kafka-python", kafka.__version__)
PY
echo "test-deps: node $(node --version), kafkajs $(node -e 'console.log(require(process.argv[1]).version)' "$PWD/$JS/node_modules/kafkajs/package.json")"
