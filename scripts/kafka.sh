#!/usr/bin/env bash
# Apache Kafka for the tests and benchmarks: one KRaft node (broker and controller) on loopback.
#
#   scripts/kafka.sh start     fetch the jars once (Maven), format the data directory once,
#                              start the broker, wait until it serves, print its bootstrap address
#   scripts/kafka.sh stop      stop it (SIGTERM, then -9 after 30 s)
#   scripts/kafka.sh kill      kill it with -9 (the data stays, for fault tests)
#   scripts/kafka.sh restart   kill it with -9 if it runs, then start it on the same data
#   scripts/kafka.sh bootstrap print the bootstrap address
#   scripts/kafka.sh log       print the broker's log
#
# Settings (environment):
#   KAFKA_DIR    the node's own directory: config, data, log, pid (default target/kafka)
#   KAFKA_PORT   its loopback port (default 39092); the controller listens on the next one
#   KAFKA_CACHE  where the jars are kept (default ~/.cache/outbox-ce/kafka-$KAFKA_VERSION)
#   KAFKA_HEAP   the JVM's heap (default 1g)
set -euo pipefail

KAFKA_VERSION=4.4.0
LOG4J_VERSION=2.26.1
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${KAFKA_DIR:-$root/target/kafka}"
port="${KAFKA_PORT:-39092}"
controller_port=$((port + 1))
cache="${KAFKA_CACHE:-$HOME/.cache/outbox-ce/kafka-$KAFKA_VERSION}"
heap="${KAFKA_HEAP:-1g}"
bootstrap="127.0.0.1:$port"

say() { echo "kafka.sh: $*" >&2; }

# The broker's jars and their runtime dependencies, from Maven Central, once.
fetch() {
  [ -f "$cache/libs/.complete" ] && return
  say "fetching Apache Kafka $KAFKA_VERSION into $cache"
  mkdir -p "$cache"
  cat > "$cache/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>outbox-cloudevents</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  rm -rf "$cache/libs"
  mvn -q -B -f "$cache/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$cache/libs" >&2
  touch "$cache/libs/.complete"
}

java_cmd() { java "-Xmx$heap" "-Xms$heap" -cp "$cache/libs/*" \
  "-Dlog4j2.configurationFile=$dir/log4j2.properties" "$@"; }

configure() {
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
EOF
  cat > "$dir/log4j2.properties" <<'EOF'
appender.out.type=Console
appender.out.name=out
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=out
EOF
  if [ ! -f "$dir/data/meta.properties" ]; then
    local id
    id=$(java_cmd kafka.tools.StorageTool random-uuid)
    java_cmd kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" > /dev/null
  fi
}

pid() { [ -f "$dir/pid" ] && cat "$dir/pid"; }
running() { local p; p=$(pid) && kill -0 "$p" 2> /dev/null; }

start() {
  if running; then echo "$bootstrap"; return; fi
  fetch
  configure
  local log="$dir/kafka.log"
  : > "$log"
  nohup java "-Xmx$heap" "-Xms$heap" -cp "$cache/libs/*" \
    "-Dlog4j2.configurationFile=$dir/log4j2.properties" \
    kafka.Kafka "$dir/server.properties" >> "$log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  for _ in $(seq 1 600); do
    if grep -q "Kafka Server started" "$log"; then
      echo "$bootstrap"
      return
    fi
    running || { say "the broker exited:"; tail -40 "$log" >&2; exit 1; }
    sleep 0.1
  done
  say "the broker did not start within 60 s:"
  tail -40 "$log" >&2
  exit 1
}

wait_gone() {
  local p=$1 tries=$2
  for _ in $(seq 1 "$tries"); do kill -0 "$p" 2> /dev/null || return 0; sleep 0.1; done
  return 1
}

stop() {
  running || return 0
  local p; p=$(pid)
  kill "$p"
  wait_gone "$p" 300 || { kill -9 "$p" 2> /dev/null || true; wait_gone "$p" 100; }
  rm -f "$dir/pid"
}

kill9() {
  running || return 0
  local p; p=$(pid)
  kill -9 "$p"
  wait_gone "$p" 100
  rm -f "$dir/pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  kill) kill9 ;;
  restart) kill9; start ;;
  bootstrap) echo "$bootstrap" ;;
  log) cat "$dir/kafka.log" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
