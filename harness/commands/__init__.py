"""The `kata` commands: each runs in the learner's (or instructor's) own process."""
