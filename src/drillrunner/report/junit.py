"""junit.xml: one test case per check, so CI systems show drills as tests."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from drillrunner.report.view import RunView


def render(run: RunView) -> bytes:
    suites = ET.Element("testsuites", name=f"drill {run.run_id}")
    for s in run.scenarios:
        suite = ET.SubElement(suites, "testsuite", name=s.name, time=f"{s.seconds:.3f}")
        cases = s.checks or [{"check": "scenario", "verdict": "UNKNOWN",
                              "summary": f"{s.outcome}: {s.reason}"}]
        failures = errors = 0
        for c in cases:
            case = ET.SubElement(suite, "testcase", classname=s.name, name=c["check"])
            if c["verdict"] == "FAIL":
                failures += 1
                ET.SubElement(case, "failure", message=c["summary"]).text = c["summary"]
            elif c["verdict"] != "PASS":
                errors += 1  # UNKNOWN is no pass: CI must not show it green
                ET.SubElement(case, "error", message=c["summary"]).text = c["summary"]
            ET.SubElement(case, "system-out").text = f"outcome {s.outcome}: {s.reason}"
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
    ET.indent(suites)
    return bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True))


def write_junit(run: RunView, bundle: Path) -> Path:
    path = bundle / "junit.xml"
    path.write_bytes(render(run))
    return path
