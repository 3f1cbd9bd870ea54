"""CLI commands, one module per part of the package."""
