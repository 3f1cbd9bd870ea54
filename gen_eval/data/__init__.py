"""Data formats, label spaces and the embedded shapes data set (torch-free)."""
