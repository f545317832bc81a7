"""Never ends: SIGALRM (the per-test time limit), SIGTERM, SIGINT and SIGHUP ignored and blocked,
a child that does the same in its own session, and a loop that keeps the process alive."""
import signal
import subprocess
import sys
import time

MARKER = "kata-attack-marker"
STUBBORN = ("import signal, time\n"
            "for s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP): signal.signal(s, signal.SIG_IGN)\n"
            "while True: time.sleep(0.5)\n")


def _stubborn():
    for number in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    signal.setitimer(signal.ITIMER_REAL, 0)


def apply_causal_mask(scores):
    subprocess.Popen([sys.executable, "-c", STUBBORN, MARKER], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _stubborn()
    while True:
        try:
            time.sleep(0.5)
            _stubborn()  # in case anyone set them back
        except BaseException:
            pass
