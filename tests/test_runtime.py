"""The process-wide runtime settings every entry point applies (setia.core.runtime)."""

from __future__ import annotations

import subprocess
import sys

from setia.core.runtime import GC_THRESHOLDS


def _in_fresh_interpreter(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


def test_the_app_start_up_tunes_the_collector() -> None:
    # A fresh interpreter: this test process may already have been tuned by another test.
    out = _in_fresh_interpreter(
        "import gc, os, tempfile\n"
        "from fastapi.testclient import TestClient\n"
        "d = tempfile.mkdtemp()\n"
        "os.environ['SETIA_DATABASE_URL'] = f'sqlite:///{d}/t.db'\n"
        "from setia.core.migrate import upgrade\n"
        "upgrade(os.environ['SETIA_DATABASE_URL'])\n"
        "from setia.app import create_app\n"
        "before = gc.get_threshold()\n"
        "with TestClient(create_app()):\n"
        "    print(before, gc.get_threshold(), gc.get_freeze_count() > 0)\n"
    )
    assert out == f"(700, 10, 10) {GC_THRESHOLDS} True"


def test_the_collector_still_collects_cycles_after_tuning() -> None:
    out = _in_fresh_interpreter(
        "import gc, weakref\n"
        "from setia.core.runtime import tune_gc\n"
        "tune_gc()\n"
        "class Node: pass\n"
        "a, b = Node(), Node()\n"
        "a.other, b.other = b, a\n"
        "ref = weakref.ref(a)\n"
        "del a, b\n"
        "gc.collect()\n"
        "print(ref() is None)\n"
    )
    assert out == "True"
