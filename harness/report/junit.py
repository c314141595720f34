"""junit.xml: one test case per guarantee, so CI systems show delivery results next to unit tests."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

__all__ = ["render_junit"]


def render_junit(doc: dict[str, Any]) -> str:
    name = f"delivery: {doc.get('scenario') or 'ledger'} on {doc.get('target') or '?'}"
    suite = ET.Element("testsuite", name=name)
    cases: list[tuple[str, str | None, str | None]] = []  # (name, failure, error)
    cases.append(("run complete and judgeable", None,
                  None if doc.get("complete") and not (doc.get("counts") or {}).get("unseen")
                  else (doc.get("reason") or "run incomplete")))
    for check in (doc.get("gate") or {}).get("checks", []):
        failure = None if check["passed"] else f"{check['name']} = {check['observed']} exceeds {check['limit']}"
        cases.append((f"{check['name']} <= {check['limit']}", failure, None))
    claim = (doc.get("details") or {}).get("claim") or {}
    if claim:
        held = claim.get("held")
        cases.append((f"claim {claim.get('delivery')}{' ordered' if claim.get('ordered') else ''} holds",
                      ", ".join(claim.get("violations") or []) if held is False else None,
                      "not judgeable" if held not in (True, False) else None))
    for case_name, failure, error in cases:
        case = ET.SubElement(suite, "testcase", classname=name, name=case_name)
        if failure:
            ET.SubElement(case, "failure", message=failure).text = failure
        elif error:
            ET.SubElement(case, "error", message=error).text = error
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for _, f, _ in cases if f)))
    suite.set("errors", str(sum(1 for _, f, e in cases if e and not f)))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
