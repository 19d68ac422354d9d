#!/bin/sh
# The producer commands of the compose stack, in one place.
# Usage (compose services producer-tweets / producer-news): produce.sh tweets|news
#
# `weir produce` is the producer subcommand of the weir binary. The flags
# below are the ones this stack assumes; adjust them here if they change.
set -eu

brokers=${KAFKA_BROKERS:-kafka:9092}

case "${1:-}" in
  tweets)
    case "${TWEETS_SOURCE:-sample}" in
      sample)
        exec weir produce jsonl --file /samples/tweets.jsonl --topic tweets --retime \
          --brokers "$brokers" --rate "${TWEETS_RATE:-50}" ;;
      x)
        : "${X_BEARER_TOKEN:?TWEETS_SOURCE=x needs X_BEARER_TOKEN (see .env.example)}"
        exec weir produce x --query "${X_QUERY:-news lang:en}" --topic tweets \
          --brokers "$brokers" ;;
      *)
        echo "produce.sh: TWEETS_SOURCE must be sample or x, not ${TWEETS_SOURCE}" >&2
        exit 2 ;;
    esac ;;
  news)
    case "${NEWS_SOURCE:-sample}" in
      sample)
        exec weir produce jsonl --file /samples/news.jsonl --topic news --retime \
          --brokers "$brokers" --rate "${NEWS_RATE:-5}" ;;
      newsapi)
        : "${NEWSAPI_KEY:?NEWS_SOURCE=newsapi needs NEWSAPI_KEY (see .env.example)}"
        exec weir produce newsapi --query "${NEWSAPI_QUERY:-technology}" --topic news \
          --brokers "$brokers" ;;
      *)
        echo "produce.sh: NEWS_SOURCE must be sample or newsapi, not ${NEWS_SOURCE}" >&2
        exit 2 ;;
    esac ;;
  *)
    echo "usage: produce.sh tweets|news" >&2
    exit 2 ;;
esac
