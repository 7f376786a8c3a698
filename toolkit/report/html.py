"""The report's markdown as one self-contained HTML page: the subset the report writes (headings, paragraphs, lists,
tables, fenced code, inline code, bold, images on their own line), with every picture embedded as a data: URI."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

STYLE = """body{font-family:"WenQuanYi Micro Hei","Noto Sans CJK SC",sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;margin:1em 0;font-size:.9em}
td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left}th{background:#eef}
pre{background:#f4f4f4;padding:.6em;overflow-x:auto;font-size:.85em}code{background:#f4f4f4}
img{max-width:100%;display:block;margin:1em 0;border:1px solid #ddd}h2{border-bottom:2px solid #ccd;margin-top:2em}"""
IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)$")


def inline(text: str) -> str:
    """Escape, then `code` and **bold**."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        else:
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(part)))
    return "".join(out)


def image(alt: str, src: str, base: Path) -> str:
    path = (base / src).resolve()
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def to_html(markdown: str, base: Path, title: str) -> str:
    """``markdown`` as an HTML page; image paths are read relative to ``base`` and embedded."""
    lines = markdown.splitlines()
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
        elif stripped.startswith("```"):
            block, i = [], i + 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            out.append(f"<pre><code>{html.escape(chr(10).join(block))}</code></pre>")
            i += 1
        elif re.match(r"^#{1,6} ", stripped):
            level = len(stripped) - len(stripped.lstrip("#"))
            out.append(f"<h{level}>{inline(stripped[level:].strip())}</h{level}>")
            i += 1
        elif IMAGE.match(stripped):
            alt, src = IMAGE.match(stripped).groups()
            out.append(image(alt, src, base))
            i += 1
        elif stripped.startswith("|") and i + 1 < len(lines) and re.match(r"^\|(\s*:?-+:?\s*\|)+\s*$",
                                                                          lines[i + 1].strip()):
            head = "".join(f"<th>{inline(c)}</th>" for c in cells(stripped))
            rows, i = [], i + 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in cells(lines[i])) + "</tr>")
                i += 1
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
        elif re.match(r"^[-*] ", stripped):
            items = []
            while i < len(lines) and re.match(r"^[-*] ", lines[i].strip()):
                items.append(f"<li>{inline(lines[i].strip()[2:])}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
        else:
            para = []
            block_start = r"^(#{1,6} |```|\||[-*] |!\[)"
            while i < len(lines) and lines[i].strip() and not re.match(block_start, lines[i].strip()):
                para.append(lines[i].strip())
                i += 1
            if not para:  # a line that looks like a block start but is not one (a lone "|")
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{inline(' '.join(para))}</p>")
    body = "\n".join(out)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")
