"""Running evaluator work on many processes or machines (Ray); plain shards need nothing here."""
