"""Root conftest: the kata harness's pytest plugin (flags --reference, --swap, --device)."""
pytest_plugins = ["harness.checker.pytest_plugin", "harness.checker.time_limits"]
