"""Pure, vectorised statistics for experiments: every function takes and returns numpy arrays or
plain values and never touches the database. Conventions follow GrowthBook's gbstats so that the
numbers agree with it (see tests/experiments/test_gbstats_agreement.py)."""
