#!/usr/bin/env python3
"""Writes kibana/weir-dashboard.ndjson: Weir's Kibana 8 saved objects.

Saved objects embed JSON as strings (visState, panelsJSON, searchSourceJSON),
which is unreadable and easy to break by hand; this script holds them as
plain structures. Deterministic: running it again gives the same file.

    python3 kibana/generate.py           # rewrite the NDJSON
    python3 kibana/generate.py --check   # fail if the committed file differs

The objects use legacy aggregation-based visualizations (`visualization`
type with `visState`), which Kibana 8 still renders and migrates. The
fields they use are checked against config/templates/ by the deploy-check
crate (deploy-check/tests/kibana.rs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "weir-dashboard.ndjson"

# Kibana 8 export metadata. Older type versions are fine: Kibana migrates
# imported objects forward from the version they declare.
CORE_VERSION = "8.8.0"
TYPE_VERSIONS = {
    "index-pattern": "8.0.0",
    "visualization": "8.5.0",
    "search": "8.0.0",
    "dashboard": "8.7.0",
}
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"

TWEETS = "weir-tweets"
NEWS = "weir-news"


def compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def saved_object(type_: str, id_: str, attributes: dict, references: list[dict]) -> dict:
    return {
        "attributes": attributes,
        "coreMigrationVersion": CORE_VERSION,
        "id": id_,
        "references": references,
        "type": type_,
        "typeMigrationVersion": TYPE_VERSIONS[type_],
    }


def data_view(id_: str, pattern: str, name: str, time_field: str, formats: dict) -> dict:
    return saved_object("index-pattern", id_, {
        "fieldAttrs": "{}",
        "fieldFormatMap": compact(formats),
        "fields": "[]",
        "name": name,
        "runtimeFieldMap": "{}",
        "sourceFilters": "[]",
        "timeFieldName": time_field,
        "title": pattern,
        "typeMeta": "{}",
    }, [])


def search_source(query: str = "") -> str:
    return compact({
        "query": {"query": query, "language": "kuery"},
        "filter": [],
        "indexRefName": INDEX_REF,
    })


def visualization(id_: str, data_view_id: str, title: str, description: str,
                  vis_type: str, aggs: list[dict], params: dict) -> dict:
    vis_state = {"title": title, "type": vis_type, "aggs": aggs, "params": params}
    return saved_object("visualization", id_, {
        "description": description,
        "kibanaSavedObjectMeta": {"searchSourceJSON": search_source()},
        "title": title,
        "uiStateJSON": "{}",
        "version": 1,
        "visState": compact(vis_state),
    }, [{"id": data_view_id, "name": INDEX_REF, "type": "index-pattern"}])


# --- aggregation builders ---------------------------------------------------

def agg(id_: str, type_: str, schema: str, **params) -> dict:
    return {"id": id_, "enabled": True, "type": type_, "params": params, "schema": schema}


def count(id_: str = "1", label: str | None = None) -> dict:
    return agg(id_, "count", "metric", **({"customLabel": label} if label else {}))


def date_histogram(id_: str, field: str) -> dict:
    return agg(id_, "date_histogram", "segment", field=field, useNormalizedEsInterval=True,
               scaleMetricValues=False, interval="auto", drop_partials=False,
               min_doc_count=1, extended_bounds={})


def terms(id_: str, field: str, schema: str, size: int, label: str, order_by: str = "1") -> dict:
    return agg(id_, "terms", schema, field=field, orderBy=order_by, order="desc", size=size,
               otherBucket=False, otherBucketLabel="Other", missingBucket=False,
               missingBucketLabel="Missing", customLabel=label)


# --- chart parameters ---------------------------------------------------------

def xy_params(chart: str, mode: str, metric_label: str, axis_title: str,
              scale_mode: str = "normal", y_extents: tuple[float, float] | None = None,
              threshold: float | None = None) -> dict:
    scale: dict = {"type": "linear", "mode": scale_mode}
    if y_extents:
        scale.update(setYExtents=True, min=y_extents[0], max=y_extents[1])
    return {
        "type": chart,
        "grid": {"categoryLines": False},
        "categoryAxes": [{
            "id": "CategoryAxis-1", "type": "category", "position": "bottom", "show": True,
            "style": {}, "scale": {"type": "linear"},
            "labels": {"show": True, "filter": True, "truncate": 100}, "title": {},
        }],
        "valueAxes": [{
            "id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value", "position": "left",
            "show": True, "style": {}, "scale": scale,
            "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
            "title": {"text": axis_title},
        }],
        "seriesParams": [{
            "show": True, "type": chart, "mode": mode,
            "data": {"label": metric_label, "id": "1"}, "valueAxis": "ValueAxis-1",
            "drawLinesBetweenPoints": True, "lineWidth": 2, "interpolate": "linear",
            "showCircles": True, "circlesRadius": 3,
        }],
        "addTooltip": True,
        "detailedTooltip": True,
        "palette": {"type": "palette", "name": "default"},
        "addLegend": True,
        "legendPosition": "right",
        "times": [],
        "addTimeMarker": False,
        "labels": {"show": False},
        "thresholdLine": {
            "show": threshold is not None, "value": threshold if threshold is not None else 0,
            "width": 1, "style": "dashed", "color": "#6092C0",
        },
        "fittingFunction": "linear",
        "radiusRatio": 9,
        "isVislibVis": True,
    }


PIE_PARAMS = {
    "type": "pie", "addTooltip": True, "legendDisplay": "show", "legendPosition": "right",
    "nestedLegend": False, "truncateLegend": True, "maxLegendLines": 1, "distinctColors": True,
    "isDonut": True, "emptySizeRatio": 0.3, "palette": {"type": "palette", "name": "default"},
    "labels": {"show": True, "last_level": True, "values": True, "valuesFormat": "percent",
               "percentDecimals": 1, "truncate": 100, "position": "default"},
}

TAGCLOUD_PARAMS = {
    "scale": "linear", "orientation": "single", "minFontSize": 18, "maxFontSize": 72,
    "showLabel": True, "palette": {"type": "palette", "name": "default"},
}

FLAGGED = "hate.label:(hate or offensive)"


def objects() -> list[dict]:
    tweets_view = data_view(TWEETS, "weir-tweets*", "Weir tweets", "created_at",
                            {"hate.score": {"id": "percent", "params": {}}})
    news_view = data_view(NEWS, "weir-news*", "Weir news", "published_at",
                          {"sentiment.score": {"id": "number", "params": {"pattern": "0.00"}}})

    sentiment_over_time = visualization(
        "weir-news-sentiment-over-time", NEWS, "Weir: news sentiment over time",
        "Average VADER compound score (-1..1) of news per interval.", "line",
        [agg("1", "avg", "metric", field="sentiment.score", customLabel="Average sentiment"),
         date_histogram("2", "published_at")],
        xy_params("line", "normal", "Average sentiment", "Sentiment (-1..1)",
                  y_extents=(-1, 1), threshold=0))

    sentiment_by_source = visualization(
        "weir-news-sentiment-by-source", NEWS, "Weir: sentiment by publication",
        "News articles per publication, split by sentiment label.", "histogram",
        [count("1", "Articles"),
         terms("2", "source.name", "segment", 10, "Publication"),
         terms("3", "sentiment.label", "group", 4, "Sentiment")],
        xy_params("histogram", "stacked", "Articles", "Articles"))

    hate_rate = visualization(
        "weir-tweets-hate-rate", TWEETS, "Weir: share of flagged tweets over time",
        "Share of tweets labelled hate or offensive per interval (100% stacked).", "area",
        [count("1", "Tweets"),
         date_histogram("2", "created_at"),
         agg("3", "filters", "group", filters=[
             {"input": {"query": FLAGGED, "language": "kuery"},
              "label": "flagged (hate or offensive)"},
             {"input": {"query": f"not {FLAGGED}", "language": "kuery"},
              "label": "not flagged"},
         ])],
        xy_params("area", "stacked", "Tweets", "Share of tweets", scale_mode="percentage"))

    hate_categories = visualization(
        "weir-tweets-hate-categories", TWEETS, "Weir: hate speech categories",
        "Categories of flagged tweets (expert.ai taxonomy, from the classifier).", "pie",
        [count("1", "Tweets"), terms("2", "hate.categories", "segment", 10, "Category")],
        PIE_PARAMS)

    top_hashtags = visualization(
        "weir-tweets-top-hashtags", TWEETS, "Weir: top hashtags",
        "Most frequent hashtags in tweets.", "tagcloud",
        [count("1", "Tweets"), terms("2", "hashtags", "segment", 30, "Hashtag")],
        TAGCLOUD_PARAMS)

    flagged = saved_object("search", "weir-tweets-flagged", {
        "columns": ["text", "hate.label", "hate.score", "user.screen_name"],
        "description": "Latest tweets the classifier labelled hate or offensive.",
        "kibanaSavedObjectMeta": {"searchSourceJSON": search_source(FLAGGED)},
        "sort": [["created_at", "desc"]],
        "title": "Weir: latest flagged tweets",
    }, [{"id": TWEETS, "name": INDEX_REF, "type": "index-pattern"}])

    # Dashboard grid: 48 columns wide.
    layout = [
        (sentiment_over_time, 0, 0, 24, 15),
        (sentiment_by_source, 24, 0, 24, 15),
        (hate_rate, 0, 15, 24, 15),
        (hate_categories, 24, 15, 24, 15),
        (top_hashtags, 0, 30, 16, 18),
        (flagged, 16, 30, 32, 18),
    ]
    panels, references = [], []
    for number, (obj, x, y, w, h) in enumerate(layout, start=1):
        index = str(number)
        panels.append({
            "version": CORE_VERSION,
            "type": obj["type"],
            "gridData": {"x": x, "y": y, "w": w, "h": h, "i": index},
            "panelIndex": index,
            "embeddableConfig": {"enhancements": {}},
            "panelRefName": f"panel_{index}",
        })
        references.append({"id": obj["id"], "name": f"{index}:panel_{index}", "type": obj["type"]})
    dashboard = saved_object("dashboard", "weir-overview", {
        "description": "Weir: news sentiment and tweet hate-speech signals, as indexed by the "
                       "weir-news and weir-tweets pipelines.",
        "kibanaSavedObjectMeta": {"searchSourceJSON": compact(
            {"query": {"query": "", "language": "kuery"}, "filter": []})},
        "optionsJSON": compact({"useMargins": True, "syncColors": False, "syncCursor": True,
                                "syncTooltips": False, "hidePanelTitles": False}),
        "panelsJSON": compact(panels),
        "refreshInterval": {"pause": False, "value": 30000},
        "timeFrom": "now-7d",
        "timeRestore": True,
        "timeTo": "now",
        "title": "Weir overview",
        "version": 1,
    }, references)

    return [tweets_view, news_view, sentiment_over_time, sentiment_by_source, hate_rate,
            hate_categories, top_hashtags, flagged, dashboard]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the file on disk instead of writing it")
    args = parser.parse_args()
    text = "".join(compact(o) + "\n" for o in objects())
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.name} is out of date; run python3 kibana/generate.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote kibana/{OUT.name} ({text.count(chr(10))} objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
