# Benchmarks are scripts (python tests/bench/bench_media.py), never collected as tests: they take
# minutes, need gigabytes of RAM and their figures are only meaningful on a quiet machine.
collect_ignore_glob = ["*.py"]
