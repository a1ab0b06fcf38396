"""Tools run from a clone of the repository, never installed: the stress harness (`trust`,
behind `attune trust`), the service benchmark (`bench`, behind `cmt bench`), the page and
encoder benchmarks, the move classifier's training and scoring. They may import the test
tools (hypothesis, schemathesis) and the tests' fakes (tests/fakes.py)."""
