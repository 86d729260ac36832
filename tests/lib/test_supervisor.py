import io
import os
import signal
import sys
import threading
import time

from bosun.lib.supervisor import Role, Supervisor

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
# Ignores SIGTERM, so only SIGKILL after the grace period stops it.
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(60)",
]


def run_in_thread(supervisor: Supervisor) -> threading.Thread:
    thread = threading.Thread(target=supervisor.run)
    thread.start()
    return thread


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_each_line_is_prefixed_with_its_role_and_a_stop_request_stops_every_child():
    out = io.StringIO()
    supervisor = Supervisor([Role("web", SLEEPER), Role("worker", SLEEPER)], out=out)
    thread = run_in_thread(supervisor)
    assert wait_for(lambda: out.getvalue().count("| up") == 2), out.getvalue()
    assert "web    | up" in out.getvalue()
    assert "worker | up" in out.getvalue()

    started = time.monotonic()
    supervisor.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5
    assert all(child.poll() is not None for _, child in supervisor._children)
    assert supervisor.exit_code == 0


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period():
    out = io.StringIO()
    supervisor = Supervisor([Role("stubborn", STUBBORN)], out=out, stop_grace=0.5)
    thread = run_in_thread(supervisor)
    assert wait_for(lambda: "| up" in out.getvalue())
    supervisor.stop()
    thread.join(10)
    assert "stubborn did not stop in 0s; killing it" in out.getvalue()
    ((_, child),) = supervisor._children
    assert child.returncode == -signal.SIGKILL


def test_when_one_child_dies_the_others_are_stopped_and_the_exit_code_says_so():
    out = io.StringIO()
    crashing = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    supervisor = Supervisor([Role("web", SLEEPER), Role("worker", crashing)], out=out)
    code = supervisor.run()
    assert code == 3
    assert "worker exited with code 3; stopping the others" in out.getvalue()
    assert all(child.poll() is not None for _, child in supervisor._children)


def test_an_optional_child_that_ends_is_reported_and_the_others_keep_running():
    out = io.StringIO()
    ending = [sys.executable, "-c", "import sys; sys.exit(3)"]
    supervisor = Supervisor([Role("web", SLEEPER), Role("agent", ending, optional=True)], out=out)
    thread = run_in_thread(supervisor)
    assert wait_for(lambda: "agent exited with code 3; the rest goes on" in out.getvalue())
    time.sleep(0.5)
    web = supervisor._children[0][1]
    assert web.poll() is None
    supervisor.stop()
    thread.join(10)
    assert supervisor.exit_code == 0


def test_children_run_in_their_own_process_group():
    supervisor = Supervisor([Role("web", SLEEPER)], out=io.StringIO())
    thread = run_in_thread(supervisor)
    assert wait_for(lambda: bool(supervisor._children))
    ((_, child),) = supervisor._children
    assert os.getpgid(child.pid) == child.pid
    supervisor.stop()
    thread.join(10)
