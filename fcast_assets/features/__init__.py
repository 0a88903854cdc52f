"""Features for the lottery series: generators registered as data (``generators.yaml`` -> ``feature_generator`` /
``feature_def``), hist_ / fut_ / stat_ / anomaly / embedding generators and the gold Delta tables per game."""
