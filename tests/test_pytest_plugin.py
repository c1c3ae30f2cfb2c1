"""The pytest plugin installed with Tidings costs nothing until a test asks for ``tidings``.

Loading it (as pytest does, through the ``pytest11`` entry point) sets no global Dramatiq
broker and installs no SQLAlchemy listeners; each check runs in a fresh interpreter.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SAMPLE = Path(__file__).parent / "kit"

_LOAD = """
import importlib.metadata, sys
[plugin] = importlib.metadata.entry_points(group="pytest11", name="tidings")
plugin.load()
"""


def _after_loading_the_plugin(check: str) -> str:
    """What ``check`` prints in a fresh interpreter that loaded the plugin the way pytest does."""
    result = subprocess.run([sys.executable, "-c", _LOAD + check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_loading_the_plugin_leaves_dramatiqs_global_broker_unset() -> None:
    assert _after_loading_the_plugin("import dramatiq.broker; print(dramatiq.broker.global_broker)") == "None"


def test_loading_the_plugin_adds_no_listener_to_sqlalchemys_session() -> None:
    check = """
from sqlalchemy.orm import Session, SessionEvents
session = Session()
print(sorted(n for n in dir(SessionEvents) if not n.startswith("_") and list(getattr(session.dispatch, n, ()))))
"""
    assert _after_loading_the_plugin(check) == "[]"


def test_loading_the_plugin_imports_none_of_tidings_packages() -> None:
    check = "print([m for m in ('workflow', 'notifiers', 'jobs') if m in sys.modules])"
    assert _after_loading_the_plugin(check) == "[]"


def test_a_pytest_run_whose_tests_do_not_ask_for_tidings_leaves_dramatiqs_broker_alone(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_other="""
        import sys

        import dramatiq.broker

        def test_nothing_of_tidings_was_loaded():
            assert dramatiq.broker.global_broker is None
            assert "jobs" not in sys.modules
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)


def test_a_transition_fired_in_a_fixture_set_up_before_tidings_is_delivered(pytester: pytest.Pytester) -> None:
    shutil.copy(SAMPLE / "sample_app.py", pytester.path / "sample_app.py")
    shutil.copy(SAMPLE / "sample_test.py", pytester.path / "test_sample.py")
    pytester.makepyfile(test_order="""
        import pytest
        from test_sample import engine, session, signup

        @pytest.fixture
        def activated(session, signup):
            signup.activate()  # fired before the tidings fixture is set up, committed after
            return signup

        def test_the_commit_after_tidings_is_set_up_delivers_it(session, activated, tidings):
            session.commit()
            tidings.assert_notified("ann@example.com", trigger="activate", count=1)
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "test_order.py")
    result.assert_outcomes(passed=1)
