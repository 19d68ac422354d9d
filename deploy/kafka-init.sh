#!/usr/bin/env bash
# One-shot (compose service `kafka-init`): creates Weir's topics. Broker-side
# auto-creation is off in the stack, so this is where partition counts are set.
# Idempotent: existing topics are left alone.
set -euo pipefail

bootstrap=${KAFKA_BOOTSTRAP:-kafka:9092}
topics=/opt/kafka/bin/kafka-topics.sh

create() {
  local topic=$1 partitions=$2
  shift 2
  "$topics" --bootstrap-server "$bootstrap" --create --if-not-exists \
    --topic "$topic" --partitions "$partitions" --replication-factor 1 "$@"
}

# Input topics: 4 partitions, so up to 4 Weir hosts can share the work.
create tweets 4
create news 4
# Dead letters (Weir's default names, <pipeline>-dlq): kept for two weeks.
create tweets-dlq 1 --config retention.ms=1209600000
create news-dlq 1 --config retention.ms=1209600000

"$topics" --bootstrap-server "$bootstrap" --describe --topic 'tweets|news|tweets-dlq|news-dlq'
