"""Render an ``audit.json`` for people and pipelines; recompute nothing.

``reports.html`` (self-contained HTML for compliance review), ``reports.markdown`` (PR comment),
``reports.pdf`` (the HTML printed by headless Chromium, for sign-off), ``reports.signoff`` (the sign-off
block), ``reports.figures`` (the plots and their captions), ``reports.summary`` (shared plain-language
sentences), ``reports.policy`` + ``reports.gate`` (``dpaudit gate`` for CI). Importing this package
imports nothing heavy; each renderer is imported on use.
"""
