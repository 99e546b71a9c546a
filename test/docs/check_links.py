#!/usr/bin/env python3
"""Checks that every relative link and #anchor in README.md, CHANGELOG.md and docs/*.md resolves.

Anchors are computed as GitHub does: the heading text lower-cased, punctuation other than '-' and '_' removed,
spaces turned into '-', and '-1', '-2', ... appended to repeated headings. Links inside code blocks and inline code
are ignored. Usage: python3 test/docs/check_links.py [files...]   (exit status 1 when a link is broken)
"""
import glob
import os
import re
import sys
import unicodedata

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))


def strip_code(text):
    """The text without fenced code blocks and inline code spans (line count preserved)."""
    out, fence = [], None
    for line in text.split('\n'):
        m = re.match(r'^\s*(```+|~~~+)', line)
        if m:
            if fence is None:
                fence = m.group(1)[:3]
            elif m.group(1).startswith(fence):
                fence = None
            out.append('')
            continue
        out.append('' if fence else re.sub(r'(`+)(.+?)\1', '', line))
    return '\n'.join(out)


def slug(heading):
    h = heading.strip().lower()
    h = re.sub(r'<[^>]+>', '', h)                       # inline HTML
    h = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', h)     # links keep their text
    keep = []
    for ch in h:
        cat = unicodedata.category(ch)
        if ch in '-_ ' or cat[0] in 'LN' or cat == 'Mn':
            keep.append(ch)
    return ''.join(keep).replace(' ', '-')


_anchor_cache = {}


def anchors(path):
    if path not in _anchor_cache:
        seen, result = {}, set()
        text = open(path, encoding='utf-8').read()
        fence = None
        for line in text.split('\n'):
            m = re.match(r'^\s*(```+|~~~+)', line)
            if m:
                fence = None if fence and m.group(1).startswith(fence) else (fence or m.group(1)[:3])
                continue
            if fence:
                continue
            m = re.match(r'^(#{1,6})\s+(.*?)\s*#*\s*$', line)
            if m:
                s = slug(m.group(2))
                n = seen.get(s, 0)
                result.add(s if n == 0 else f'{s}-{n}')
                seen[s] = n + 1
        for m in re.finditer(r'<a\s+(?:name|id)="([^"]+)"', text):
            result.add(m.group(1))
        _anchor_cache[path] = result
    return _anchor_cache[path]


LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')


def check(path):
    errors = 0
    text = strip_code(open(path, encoding='utf-8').read())
    for lineno, line in enumerate(text.split('\n'), 1):
        for m in LINK.finditer(line):
            target = m.group(1)
            if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I):   # http:, https:, mailto: ...
                continue
            file_part, _, anchor = target.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            rel = os.path.relpath(path, ROOT)
            if not os.path.exists(dest):
                print(f'{rel}:{lineno}: broken link {target}: {os.path.relpath(dest, ROOT)} does not exist')
                errors += 1
                continue
            if anchor:
                if not dest.endswith('.md') or os.path.isdir(dest):
                    continue
                if anchor not in anchors(dest):
                    print(f'{rel}:{lineno}: broken anchor {target}: no heading #{anchor} in {os.path.relpath(dest, ROOT)}')
                    errors += 1
    return errors


def main(argv):
    files = argv or ([os.path.join(ROOT, 'README.md'), os.path.join(ROOT, 'CHANGELOG.md')]
                     + sorted(glob.glob(os.path.join(ROOT, 'docs', '*.md'))))
    files = [f for f in files if os.path.exists(f)]
    errors = sum(check(os.path.abspath(f)) for f in files)
    print(f'{len(files)} files checked, {errors} broken link(s)')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
