#!/usr/bin/env python3
"""Sorts the rows of the engine's dispatch table (crates/vtpm-engine/src/
commands/mod.rs) by command code, as dispatch::lookup's binary search needs.
Run after adding rows anywhere in the table."""
import re, sys, pathlib

root = pathlib.Path(__file__).resolve().parents[2]
table = root / "crates/vtpm-engine/src/commands/mod.rs"
consts = (root / "crates/vtpm-wire/src/constants.rs").read_text()
codes = {m.group(1): int(m.group(2).replace("_", ""), 16)
         for m in re.finditer(r"^\s+(\w+) = 0x([0-9A-Fa-f_]+),", consts, re.M)
         if m.group(2).replace("_", "").startswith("0000")}
src = table.read_text()
start = src.index("pub static TABLE: &[CommandDef] = &[\n") + len("pub static TABLE: &[CommandDef] = &[\n")
end = src.index("\n];", start)
body = src[start:end]
rows = re.findall(r"    def\(.*?\n?.*?\),(?=\n|$)", body, re.S)
rows = re.findall(r"    def\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\),", body, re.S)
def code(row):
    name = re.search(r"Cc::(\w+)", row).group(1)
    return codes[name]
rows.sort(key=code)
table.write_text(src[:start] + "\n".join(rows) + src[end:])
print(f"{len(rows)} rows sorted")
