"""The chaos harness: the real pipeline in subprocesses, under faults, kills and bad input,
and what the databases hold afterwards (`harness.run_chaos`)."""
