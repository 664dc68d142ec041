#!/usr/bin/env python3
"""Prints the table of docs/architecture.md "Where each rule is enforced".

"enforced in": the library source files that name the rule as `RuleId::X`
(a refusal, a decision check or an audit event). "tests naming it": the test
files (under a `tests` or `contract` directory, or a `tests.rs` or `testing.rs`
module) whose test names
(`fn x1_...`, `fn finding_n_x1_...`, also in a `both_backends!` list) or assertions (`RuleId::X1`, `"X1"`)
name it.

    python3 scripts/rule-table.py > /tmp/table.md
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
RULES = (
    [f"S{i}" for i in range(1, 10)]
    + [f"V{i}" for i in range(1, 12)]
    + [f"R{i}" for i in range(1, 10)]
    + [f"A{i}" for i in range(1, 8)]
    + [f"L{i}" for i in range(1, 13)]
)


def label(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT)
    parts = rel.parts
    if parts[0] == "crates" and len(parts) > 2 and parts[2] == "src":
        return f"{parts[1]}: {'/'.join(parts[3:])}"
    if parts[0] == "crates":
        return "/".join(parts[1:])
    return str(rel)


def is_test(path: pathlib.Path) -> bool:
    rel = path.relative_to(ROOT).parts
    # The store's contract suite and test fixtures are test code too.
    return "tests" in rel or "contract" in rel or path.name in ("tests.rs", "testing.rs")


def names_in_tests(text: str, rule: str) -> bool:
    low = rule.lower()
    return bool(
        re.search(rf"RuleId::{rule}\b", text)
        or re.search(rf'"{rule}"', text)
        or re.search(rf"fn (?:\w+_)?{low}_\w+", text)
        # Tests run on both backends are named in a `both_backends!` list.
        or re.search(rf"(?m)^\s*(?:both_backends!\(\s*)?(?:\w+_)?{low}_\w+,", text)
    )


def main() -> int:
    enforced = {rule: set() for rule in RULES}
    tested = {rule: set() for rule in RULES}
    for path in sorted(ROOT.glob("crates/**/*.rs")) + sorted(ROOT.glob("tests/**/*.rs")):
        if "target" in path.relative_to(ROOT).parts:
            continue
        text = path.read_text(encoding="utf-8")
        for rule in RULES:
            if is_test(path):
                if names_in_tests(text, rule):
                    tested[rule].add(label(path))
            elif re.search(rf"RuleId::{rule}\b", text) and path.name != "rule_id.rs":
                enforced[rule].add(label(path))
    print("| rule | enforced in | tests naming it |")
    print("| --- | --- | --- |")
    for rule in RULES:
        if rule.startswith("L") and not enforced[rule] and not tested[rule]:
            continue
        where = ", ".join(f"`{f}`" for f in sorted(enforced[rule])) or "—"
        tests = ", ".join(f"`{f}`" for f in sorted(tested[rule])) or "—"
        print(f"| {rule} | {where} | {tests} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
