"""Data only: Grafana dashboards (dashboards/*.json) and the PrometheusRule spec (rules.yaml); docs/monitoring.md."""
