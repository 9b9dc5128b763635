#!/usr/bin/env python3
"""Resolves every conflict hunk in the given files by keeping both sides
(ours, then theirs), for the dispatch table and module lists where branches
only add rows. Table rows cut in the middle by a hunk boundary are closed
and reopened; run scripts/dev/sort-command-table.py afterwards."""
import re
import sys

for path in sys.argv[1:]:
    out, state, ours, theirs = [], None, [], []
    for line in open(path):
        if line.startswith("<<<<<<< "):
            state, ours, theirs = "ours", [], []
        elif line.startswith("||||||| ") and state == "ours":
            state = "base"
        elif line.startswith("=======") and state in ("ours", "base"):
            state = "theirs"
        elif line.startswith(">>>>>>> ") and state == "theirs":
            out += ours + [l for l in theirs if l not in ours or not l.strip().startswith(("pub mod", "mod "))]
            state = None
        elif state == "ours":
            ours.append(line)
        elif state == "theirs":
            theirs.append(line)
        elif state != "base":
            out.append(line)
    text = re.sub(r"(        run::<[^>]+>,\n)(        Cc::)", r"\1    ),\n    def(\n\2", "".join(out))
    open(path, "w").write(text)
