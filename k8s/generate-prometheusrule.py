#!/usr/bin/env python3
"""Kept for old habits: runs deploy/generate.py, which now writes every target generated from
alerts/*.yml (this PrometheusRule, GMP Rules, Cloud Monitoring alert policies)."""
import os, runpy, sys

here = os.path.dirname(os.path.abspath(__file__))
sys.argv = [os.path.join(here, "..", "deploy", "generate.py")] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
