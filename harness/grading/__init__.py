"""`kata grade`: grading a learner's files and writing the reports."""
