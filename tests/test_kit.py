"""The test kit, as its users meet it: a plugin installed with Tidings, run in a fresh pytest."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SAMPLE = Path(__file__).parent / "kit"


@pytest.fixture
def user_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A folder holding the sample application and its user's test file, and nothing of ours."""
    shutil.copy(SAMPLE / "sample_app.py", pytester.path / "sample_app.py")
    shutil.copy(SAMPLE / "sample_test.py", pytester.path / "test_sample.py")
    return pytester


def test_a_users_test_file_passes_with_only_the_installed_fixtures(user_project: pytest.Pytester) -> None:
    result = user_project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=5)


def test_a_failing_assertion_lists_what_was_sent_instead(user_project: pytest.Pytester) -> None:
    user_project.makepyfile(test_failing="""
        from test_sample import engine, session, signup

        def test_the_wrong_address(session, signup, tidings):
            signup.activate()
            session.commit()
            tidings.assert_notified("bob@example.com", trigger="activate")
    """)
    result = user_project.runpytest_subprocess("-p", "no:randomly", "test_failing.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*Expected at least one notification(s) matching to='bob@example.com', trigger='activate'; found 0.*",
        "*Sent:*",
        "*SampleSignup 1 'activate' -> member <ann@example.com> by email: 'Welcome, Ann'*",
    ])


def test_an_actor_exception_surfaces_in_the_test_with_its_traceback(user_project: pytest.Pytester) -> None:
    user_project.makepyfile(test_exploding="""
        from test_sample import engine, session, signup

        def test_a_notifier_that_raises(session, signup, tidings):
            signup.close(reason="bug")
            session.commit()
            tidings.run()
    """)
    result = user_project.runpytest_subprocess("-p", "no:randomly", "--durations=0", "test_exploding.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(['*raise RuntimeError("the goodbye template service is down")*',
                                 "*sample_app.py:*: RuntimeError*"])
    durations = [float(d) for d in re.findall(r"([\d.]+)s call", result.stdout.str())]
    print(f"[figures] the actor's exception reached the test after {max(durations):.2f} s")


def test_random_order_twice_gives_the_same_results(user_project: pytest.Pytester) -> None:
    outcomes = []
    for seed in ("1", "2"):
        result = user_project.runpytest_subprocess("-p", "randomly", f"--randomly-seed={seed}", "-v")
        result.stdout.fnmatch_lines([f"*randomly-seed={seed}*"])
        outcomes.append(result.parseoutcomes())
    assert outcomes[0] == outcomes[1] == {"passed": 5}
