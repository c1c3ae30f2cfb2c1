"""Without OpenTelemetry installed, a transition keeps no trace context and the worker's spans are no-ops."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_without_opentelemetry_there_is_no_traceparent_and_spans_do_nothing() -> None:
    script = textwrap.dedent("""
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed: importing it raises ImportError
        from workflow.tracing import traceparent
        from jobs.tracing import span
        with span("deliver", "tidings", ["00-" + "1" * 32 + "-" + "2" * 16 + "-01"], channel="email"):
            pass
        print(traceparent(), traceparent())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "None None"), done.stderr
