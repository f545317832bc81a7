"""The worker process that runs the learner's code, and the wire between it and the checker."""
