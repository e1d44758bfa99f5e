"""Data in: labels, hostile-zip checks, import, split, TFRecords, the plate renderer and the sample data."""
