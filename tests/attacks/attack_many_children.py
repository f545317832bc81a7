"""Processes that outlive the grade: 50 children that ignore SIGTERM and sleep forever, half of
them in a session of their own (os.setsid), out of reach of a kill of the process group."""
import subprocess

MARKER = "kata-attack-marker"
SLEEPER = 'trap "" TERM HUP INT; while :; do sleep 3600; done'

for number in range(50):
    subprocess.Popen(["sh", "-c", SLEEPER, MARKER], start_new_session=number % 2 == 0,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def apply_causal_mask(scores):
    return scores
