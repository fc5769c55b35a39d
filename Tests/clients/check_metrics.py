"""Parses a node's /metrics with the Prometheus client library's own parser and prints
what a scraper would see of the request-duration histogram, as JSON.

usage: check_metrics.py METRICS_FILE
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
durations = families["gateway_http_request_duration_seconds"]
buckets = [(s.labels["le"], s.value) for s in durations.samples if s.name.endswith("_bucket")]
count = next(s.value for s in durations.samples if s.name.endswith("_count"))
total = next(s.value for s in durations.samples if s.name.endswith("_sum"))
values = [v for _, v in buckets]
print(json.dumps({
    "type": durations.type,
    "buckets": len(buckets),
    "lastBound": buckets[-1][0],
    "cumulative": values == sorted(values),
    "infEqualsCount": values[-1] == count,
    "count": count,
    "sumPositive": total > 0,
}, sort_keys=True))
