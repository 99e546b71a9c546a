#!/usr/bin/env python3
# layout/install_order.py: checks that no source file of the install script references an object a later file creates.
#
# Reads the generated install script (default: retail_mid--<default_version>.sql, built by `make`), splits it at the
# banners the Makefile writes before each source (`-- ===== src/<area>/<file>.sql =====`), collects the objects each
# file creates (CREATE [OR REPLACE] FUNCTION|PROCEDURE|AGGREGATE|VIEW|TABLE|TYPE|OPERATOR|... retail_mid.<name>) and
# then every reference `retail_mid.<name>` in the code, plpgsql bodies and dynamic SQL included (a function that
# calls a later one installs fine and fails only when it runs). Comments, the text of COMMENT ON and the messages
# of RAISE are prose, not references. Objects are matched by name (all overloads of a function are one name).
# Exits 1 with the list of forward references, 0 when there is none.
import re
import sys
from pathlib import Path

SCHEMA = "retail_mid"
NAME = r"(?:[A-Za-z_][A-Za-z0-9_$]*|[-+*/<>=~!@#%^&|`?]+)"
CREATE_RE = re.compile(
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:UNIQUE\s+)?(?:MATERIALIZED\s+)?"
    r"(FUNCTION|PROCEDURE|AGGREGATE|VIEW|TABLE|TYPE|OPERATOR|SEQUENCE|DOMAIN|INDEX)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?" + SCHEMA + r"\.(" + NAME + r")",
    re.IGNORECASE)
REF_RE = re.compile(r"(?<![A-Za-z0-9_$.])" + SCHEMA + r"\.(" + NAME + r")")
BANNER_RE = re.compile(r"^-- ===== (src/\S+\.sql) =====$", re.MULTILINE)
COMMENT_ON_RE = re.compile(r"\bCOMMENT\s+ON\b[^;']*?\bIS\s*$", re.IGNORECASE)
RAISE_RE = re.compile(r"\bRAISE\b", re.IGNORECASE)


def code_only(text):
    """The text with comments blanked, and the literals that are prose blanked: the text of COMMENT ON ... IS '...'
    (its target stays) and the messages, details and hints of RAISE. Other string literals are kept: they may be
    dynamic SQL or a regclass. Line numbers are kept."""
    out = []
    stmt = []  # the current statement (since the last semicolon outside literals)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            j = i + 1
            while j < n:
                if text[j] == "'" and j + 1 < n and text[j + 1] == "'":
                    j += 2
                elif text[j] == "'":
                    break
                else:
                    j += 1
            j = min(j + 1, n)
            literal = text[i:j]
            # the statement so far decides whether this literal is prose: the text of a COMMENT ON, or a message,
            # detail or hint of a RAISE
            so_far = "".join(stmt)
            if COMMENT_ON_RE.search(so_far[-400:]) or RAISE_RE.search(so_far):
                literal = "'" + re.sub(r"[^\n]", " ", literal[1:-1]) + "'"
            out.append(literal)
            stmt.append("''")
            i = j
        else:
            out.append(c)
            if c == ";":
                stmt = []
            else:
                stmt.append(c)
            i += 1
    return "".join(out)


def main():
    root = Path(__file__).resolve().parents[2]
    if len(sys.argv) > 1:
        script = Path(sys.argv[1])
    else:
        control = (root / "retail_mid.control").read_text()
        version = re.search(r"^default_version\s*=\s*'([^']+)'", control, re.MULTILINE).group(1)
        script = root / f"retail_mid--{version}.sql"
    if not script.exists():
        print(f"install_order: {script} does not exist (run make first)")
        return 2
    text = script.read_text()
    banners = list(BANNER_RE.finditer(text))
    if not banners:
        print(f"install_order: no '-- ===== src/... =====' banners in {script}")
        return 2
    files = []  # (source file, first line number of its section, code text)
    for k, m in enumerate(banners):
        end = banners[k + 1].start() if k + 1 < len(banners) else len(text)
        files.append((m.group(1), text.count("\n", 0, m.end()) + 2, code_only(text[m.end() + 1:end])))

    creator = {}  # name -> index of the first file creating it
    for idx, (_, _, code) in enumerate(files):
        for m in CREATE_RE.finditer(code):
            creator.setdefault(m.group(2), idx)

    problems = []
    for idx, (src, first_line, code) in enumerate(files):
        seen = set()
        for m in REF_RE.finditer(code):
            name = m.group(1)
            owner = creator.get(name)
            if owner is None or owner <= idx or name in seen:
                continue
            seen.add(name)
            line = code.count("\n", 0, m.start())
            problems.append((src, line + 1, name, files[owner][0]))

    print(f"install_order: {len(files)} source files, {len(creator)} objects created in {script.name}")
    for k, (src, _, _) in enumerate(files):
        print(f"  {k + 1:2d}. {src}")
    if problems:
        print(f"install_order: {len(problems)} forward reference(s): a file uses an object a later file creates")
        for src, line, name, owner in problems:
            print(f"  {src}:{line}: {SCHEMA}.{name} is created later, by {owner}")
        return 1
    print("install_order: no forward references")
    return 0


if __name__ == "__main__":
    sys.exit(main())
