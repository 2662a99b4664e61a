"""Print one line "N passed, M failed" over every session .ci/run ran.

pytest sessions count their test cases (JUnit XML in the reports folder);
sessions without a JUnit file (lint, typecheck, build, demo) count as one check
each, from nox's JSON report.  Exit 1 if anything failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("reports", type=Path)
    parser.add_argument("--extra-failed", type=int, default=0)
    args = parser.parse_args()
    passed = failed = skipped = 0
    junit_sessions = set()
    for xml_file in sorted(args.reports.glob("*.xml")):
        junit_sessions.add(xml_file.stem)
        root = ET.parse(xml_file).getroot()
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        for suite in suites:
            tests = int(suite.get("tests", 0))
            fails = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skips = int(suite.get("skipped", 0))
            passed += tests - fails - skips
            failed += fails
            skipped += skips
    nox_report = args.reports / "nox.json"
    if nox_report.is_file():
        for session in json.loads(nox_report.read_text()).get("sessions", []):
            name = session.get("name", "")
            result = session.get("result", "")
            has_junit = any(
                j == name or j == f"tests-{_param(session)}"  # integration, fuzz; tests(...)
                for j in junit_sessions
            )
            if has_junit:
                continue  # its test cases are counted from the JUnit file
            if result == "success":
                passed += 1
            elif result in ("failed", "aborted"):
                failed += 1  # a session that failed outside its test cases
                print(f"session failed: {session.get('signatures') or name}", file=sys.stderr)
    else:
        print("no nox report found", file=sys.stderr)
        failed += 1
    failed += args.extra_failed
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


def _param(session: dict) -> str:
    args = session.get("args") or {}
    return str(args.get("package", ""))


if __name__ == "__main__":
    raise SystemExit(main())
