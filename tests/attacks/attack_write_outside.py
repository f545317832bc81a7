"""Files outside the scratch folder: canaries in /tmp, /var/tmp, /dev/shm, $HOME and the grader's
checkout (next to its virtual environment): the first step of any attack that persists."""
import os
import sys
from pathlib import Path

places = {"tmp": "/tmp", "var-tmp": "/var/tmp", "dev-shm": "/dev/shm", "home": os.path.expanduser("~"),
          "grader-root": str(Path(sys.executable).parent.parent.parent)}
for where, folder in places.items():
    try:
        (Path(folder) / f"kata-attack-canary-{where}").write_text("written by the learner's code\n")
    except OSError:
        pass


def apply_causal_mask(scores):
    return scores
