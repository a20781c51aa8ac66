"""Feature pipeline steps: validate raw events, build feature partitions."""
