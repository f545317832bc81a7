"""Running suites: the runner, its fork server, process limits and the verdict cache (the `kata` process)."""
