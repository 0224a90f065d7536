#!/usr/bin/env python3
"""Checks every internal link of the built book offline: each relative href and src of
docs/book/**/*.html names a file that exists, and each #anchor an id in that file; and each
relative link of README.md names a file of the repository (a book page's #anchor checked in
its built page). Links to other sites are not followed (CI has no network). Exit 1 naming
each broken link.

  mdbook build docs && python3 docs/linkcheck.py [docs/book]

Stdlib only: mdbook-linkcheck needs a long cargo build; this takes well under a second.
"""
import html.parser
import os
import re
import sys
import urllib.parse


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for key in ("href", "src"):
            if a.get(key):
                self.links.append((a[key], self.getpos()[0]))


def parse(path, cache):
    if path not in cache:
        p = Page()
        with open(path, encoding="utf-8") as f:
            p.feed(f.read())
        cache[path] = p
    return cache[path]


def readme(book, cache):
    """Broken relative links of README.md (beside docs/), as `README.md:line: link: why`."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(repo, "README.md")
    out = []
    if not os.path.exists(path):
        return out
    src = os.path.join(repo, "docs", "src")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            for link in re.findall(r"\]\(([^)\s]+)\)", line):
                url = urllib.parse.urlsplit(link)
                if url.scheme or link.startswith("#"):
                    continue
                target = os.path.normpath(os.path.join(repo, url.path))
                if not os.path.exists(target):
                    out.append(f"README.md:{n}: {link}: no such file")
                elif url.fragment and target.startswith(src + os.sep) and target.endswith(".md"):
                    page = os.path.join(book, os.path.relpath(target, src))[:-3] + ".html"
                    if not os.path.exists(page) or url.fragment not in parse(page, cache).ids:
                        out.append(f"README.md:{n}: {link}: no anchor #{url.fragment}")
    return out


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(os.path.abspath(__file__)), "book"))
    # Pages mdbook writes for itself (print view, 404, table of contents) repeat others.
    skip = {"print.html", "404.html", "toc.html"}
    cache, broken, checked = {}, [], 0
    for dirpath, _, files in os.walk(root):
        for name in sorted(files):
            if not name.endswith(".html") or name in skip and dirpath == root:
                continue
            page = os.path.join(dirpath, name)
            for link, line in parse(page, cache).links:
                url = urllib.parse.urlsplit(link)
                if url.scheme or link.startswith("//"):
                    continue  # another site (or mailto:): not checked offline
                target = page if not url.path else os.path.normpath(
                    os.path.join(dirpath, urllib.parse.unquote(url.path)))
                checked += 1
                rel = os.path.relpath(page, root)
                if not target.startswith(root + os.sep) and target != root:
                    broken.append(f"{rel}:{line}: {link}: leaves the book")
                    continue
                if os.path.isdir(target):
                    target = os.path.join(target, "index.html")
                if not os.path.exists(target):
                    broken.append(f"{rel}:{line}: {link}: no such file")
                    continue
                if url.fragment and target.endswith(".html"):
                    if urllib.parse.unquote(url.fragment) not in parse(target, cache).ids:
                        broken.append(f"{rel}:{line}: {link}: no anchor #{url.fragment}")
    broken += readme(root, cache)
    for b in broken:
        print(b, file=sys.stderr)
    print(f"linkcheck: {checked} internal links, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
