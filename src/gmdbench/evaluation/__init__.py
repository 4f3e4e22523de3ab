"""Evaluation: metric definitions (DESIGN.md section 6) and predictions per split."""
