"""Data: sampling geometries, labelling them, storing and splitting datasets."""
