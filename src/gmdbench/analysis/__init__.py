"""Analyses of trained models: routing of DeepSet-MoE, representations (CKA, projections)."""
