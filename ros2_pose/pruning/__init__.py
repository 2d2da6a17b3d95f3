"""Model compression: norm-based filter pruning that yields a smaller network of the same class."""
