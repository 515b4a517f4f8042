#!/usr/bin/env python
"""Audit the saved outputs of a book's notebooks (issue 14) and print every violation.

usage: audit.py [ROOT_OR_NOTEBOOK ...]   (default: nbs/ under the current directory, recursively,
skipping files and folders that start with `_` or `.`, as nbdev_test does)

Checks, per notebook and cell:
  long     a single saved text output (text/plain, stream, text/markdown, text/html) > 5,000 chars
  png      a PNG figure under 600 px wide or saved under 150 dpi, both measured as a reader of the
           notebook in Jupyter sees it: for a retina PNG (pixel width twice the `width` metadata, as
           execnb and nbdev_test save them) the logical width and half the pHYs dpi are used
  font     a legend, tick label or rcParams font size under 9 pt written in a code cell
  json     a text output that is a raw JSON dump
  mdtable  a text output (stream or text/plain, with no richer format) that prints a Markdown table
  error    an error output, or a traceback printed to a stream
  widget   a widget output whose only fallback is a widget repr (what GitHub shows, not useful)
  stale    an old plain-text `compare_grads` table (the library now renders it as Markdown)
  empty    a notebook with code cells and no saved output at all
With --advisory, also (not counted): `warning`, a warning printed to stderr, and `texttable`, a
plain-text table printed to a stream (three or more lines of columns; Markdown would render it).
Exit code 1 if a violation is found.
"""
import ast, base64, json, re, struct, sys
from pathlib import Path

MAX_CHARS, MIN_WIDTH, MIN_DPI, MIN_PT = 5000, 600, 150, 9
TEXT_MIMES = ('text/plain', 'text/markdown', 'text/html')


def notebooks(args):
    "Notebooks under `args` (folders searched recursively, `_`/`.`-prefixed names skipped)."
    for a in args or ['nbs']:
        p = Path(a)
        if p.is_file(): yield p; continue
        for f in sorted(p.rglob('*.ipynb')):
            if any(part.startswith(('_', '.')) for part in f.relative_to(p).parts): continue
            yield f


def text(v): return ''.join(v) if isinstance(v, list) else (v or '')


def png_info(b64):
    "(width, height, dpi or None) from a base64 PNG's IHDR and pHYs chunks."
    raw = base64.b64decode(b64)
    assert raw[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    w, h = struct.unpack('>II', raw[16:24]); dpi, i = None, 8
    while i < len(raw):
        n, kind = struct.unpack('>I4s', raw[i:i + 8])
        if kind == b'pHYs':
            ppx, ppy, unit = struct.unpack('>IIB', raw[i + 8:i + 17])
            if unit == 1: dpi = round(ppx * .0254)          # pixels per metre -> per inch
        if kind == b'IDAT': break
        i += 12 + n
    return w, h, dpi


def is_json_dump(s):
    s = s.strip()
    if not s or s[0] not in '{[' or len(s) < 40: return False
    try: v = json.loads(s)
    except ValueError:
        # a dump printed one object a line, or followed by other text
        return bool(re.match(r'\s*[\[{]\s*"[^"\n]+"\s*:', s))
    return isinstance(v, (dict, list))


MD_SEP = re.compile(r'^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$', re.M)
def is_md_table(s): return bool(MD_SEP.search(s)) and s.count('|') >= 6


WIDGET_REPR = re.compile(r'^\s*(interactive|[A-Z]\w*(Box|Slider|Dropdown|Button|Output|Text|Label|'
                         r'Checkbox|ToggleButtons?|Select\w*|Tab|Accordion|Play))\(')
FONT_CALLS = {'legend': ('fontsize', 'title_fontsize'), 'tick_params': ('labelsize',),
              'set_xticks': ('fontsize',), 'set_yticks': ('fontsize',), 'xticks': ('fontsize',),
              'yticks': ('fontsize',), 'set_xticklabels': ('fontsize',),
              'set_yticklabels': ('fontsize',)}
FONT_RC = ('legend.fontsize', 'legend.title_fontsize', 'xtick.labelsize', 'ytick.labelsize',
           'font.size')


def small_fonts(src):
    "(line, what, size) for each legend / tick-label / rcParams font size under MIN_PT in `src`."
    src = '\n'.join('' if l.lstrip().startswith(('%', '!')) else l for l in src.splitlines())
    try: tree = ast.parse(src)
    except SyntaxError: return
    num = lambda n: n.value if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) \
        and not isinstance(n.value, bool) else None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func; name = f.attr if isinstance(f, ast.Attribute) else getattr(f, 'id', '')
            for kw in node.keywords:
                if kw.arg in FONT_CALLS.get(name, ()) and (v := num(kw.value)) is not None \
                        and v < MIN_PT:
                    yield node.lineno, f'{name}({kw.arg}=)', v
                if name == 'legend' and kw.arg == 'prop' and isinstance(kw.value, ast.Dict):
                    for k, v in zip(kw.value.keys, kw.value.values):
                        if getattr(k, 'value', None) == 'size' and (n := num(v)) is not None \
                                and n < MIN_PT: yield node.lineno, 'legend(prop=size)', n
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if getattr(k, 'value', None) in FONT_RC and (n := num(v)) is not None and n < MIN_PT:
                    yield node.lineno, f"rcParams '{k.value}'", n
        if isinstance(node, ast.Assign) and isinstance(t := node.targets[0], ast.Subscript) \
                and getattr(t.slice, 'value', None) in FONT_RC and (n := num(node.value)) is not None \
                and n < MIN_PT: yield node.lineno, f"rcParams '{t.slice.value}'", n


OLD_COMPARE = re.compile(r'^\s*name\s+shape\s+max\|ref\|\s+rel\. error\s+ok \(tol', re.M)
ADVISORY = ('warning', 'texttable')


def text_table_rows(s):
    "The longest run of lines with three or more columns separated by two or more spaces."
    run = best = 0
    for l in s.splitlines():
        cols = re.split(r'\s{2,}', l.strip())
        if len(cols) >= 3 and not l.lstrip().startswith(('[', '(', '{')): run += 1; best = max(best, run)
        else: run = 0
    return best


def audit_nb(f):
    "Yield (cell index, check, message) for every violation and advisory in notebook `f`."
    nb = json.loads(Path(f).read_text()); n_out = n_code = 0
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] != 'code': continue
        n_code += 1; src = text(c['source'])
        lines = src.splitlines()
        for ln, what, size in small_fonts(src):
            yield i, 'font', f"{what} {size:g} pt < {MIN_PT}: {lines[ln - 1].strip()[:70]}"
        for o in c.get('outputs', []):
            n_out += 1; ot = o['output_type']
            if ot == 'error':
                yield i, 'error', f"{o.get('ename')}: {o.get('evalue', '')[:80]}"; continue
            if ot == 'stream':
                s = text(o.get('text'))
                if len(s) > MAX_CHARS: yield i, 'long', f'{o["name"]} stream: {len(s):,} chars'
                if 'Traceback (most recent call last)' in s:
                    yield i, 'error', f'traceback printed to {o["name"]}'
                if is_json_dump(s): yield i, 'json', f'{o["name"]} stream is a JSON dump: {s[:60]!r}'
                if is_md_table(s): yield i, 'mdtable', f'{o["name"]} stream prints a Markdown table'
                if OLD_COMPARE.search(s): yield i, 'stale', 'an old plain-text compare_grads table'
                elif not is_md_table(s) and text_table_rows(s) >= 3:
                    yield i, 'texttable', f'{o["name"]} stream prints a plain-text table: {s[:50]!r}'
                if o['name'] == 'stderr' and re.search(r'\w*Warning\b', s):
                    yield i, 'warning', f'stderr: {s.strip().splitlines()[0][:90]!r}'
                continue
            d, meta = o.get('data', {}), o.get('metadata', {})
            for k in TEXT_MIMES:
                if k in d and len(text(d[k])) > MAX_CHARS:
                    yield i, 'long', f'{k}: {len(text(d[k])):,} chars'
            plain, rich = text(d.get('text/plain')), any(k in d for k in TEXT_MIMES[1:])
            if 'text/plain' in d and not rich and not any(k.startswith('image/') for k in d):
                if is_json_dump(plain): yield i, 'json', f'text/plain is a JSON dump: {plain[:60]!r}'
                if is_md_table(plain): yield i, 'mdtable', 'text/plain prints a Markdown table'
            if any('widget' in k for k in d) and not rich and WIDGET_REPR.match(plain):
                yield i, 'widget', f'widget fallback is a repr: {plain[:60]!r}'
            if 'image/png' in d:
                w, h, dpi = png_info(text(d['image/png']))
                mw = (meta.get('image/png') or {}).get('width')
                scale = w / mw if mw else 1                # 2 for a retina PNG
                lw, ldpi = w / scale, (dpi / scale if dpi else None)
                if lw < MIN_WIDTH: yield i, 'png', f'figure {lw:.0f} px wide < {MIN_WIDTH}'
                if ldpi is None: yield i, 'png', 'PNG has no dpi (pHYs) chunk'
                elif ldpi < MIN_DPI - .5: yield i, 'png', f'figure saved at {ldpi:.0f} dpi < {MIN_DPI}'
            for k in d:
                if k.startswith('image/') and k != 'image/png':
                    yield i, 'png', f'unchecked image type {k}'
    if n_code and not n_out: yield -1, 'empty', 'no saved outputs: notebook not executed?'


def main(args):
    advisory = '--advisory' in args; args = [a for a in args if a != '--advisory']
    total, notes, files = 0, 0, list(notebooks(args))
    for f in files:
        for i, check, msg in audit_nb(f):
            if check in ADVISORY:
                notes += 1
                if advisory: print(f'{f} [cell {i}] (advisory) {check}: {msg}')
                continue
            print(f'{f} [cell {i}] {check}: {msg}'); total += 1
    print(f'{total} violation(s) in {len(files)} notebook(s); {notes} advisory note(s)'
          + ('' if advisory else ' (--advisory lists them)'))
    return 1 if total else 0


if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
