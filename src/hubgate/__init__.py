"""Hubgate: a self-hosted integration hub that speaks the Open Connectors wire API."""
