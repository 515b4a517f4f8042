#!/usr/bin/env python
"""Write README.md from nbs/index.ipynb without Quarto (nbdev_readme needs it).

Drops `#| hide`/`#| export` cells, strips `#|` directive lines, keeps saved outputs (images go to
README_files/), and points relative notebook links into nbs/.  `--check` writes nothing and exits 1
when README.md (or an image) would change.
"""
import re, sys, pathlib
import nbformat
from nbconvert import MarkdownExporter

ROOT = pathlib.Path(__file__).resolve().parent.parent
SKIP = re.compile(r'^#\|\s*(hide|export|exporti|exports|default_exp)\b')

def render():
    nb = nbformat.read(ROOT / 'nbs' / 'index.ipynb', as_version=4)
    cells = []
    for c in nb.cells:
        lines = c.source.split('\n')
        if c.cell_type == 'code':
            if any(SKIP.match(l) for l in lines): continue
            c.source = '\n'.join(l for l in lines if not l.startswith('#|')).strip('\n')
        elif c.cell_type == 'markdown':
            c.source = re.sub(r'\]\((?!https?:|/|#|nbs/)([^)\s]+\.ipynb)\)', r'](nbs/\1)', c.source)
        cells.append(c)
    nb.cells = cells
    nb.metadata['language_info'] = {'name': 'python'}   # fenced code blocks tagged python
    body, res = MarkdownExporter().from_notebook_node(nb, resources={'output_files_dir': 'README_files'})
    body = '<!-- generated from nbs/index.ipynb by .ci/make_readme.py: edit the notebook, not this file -->\n\n' + body.strip() + '\n'
    return body, res.get('outputs', {})

def main(check=False):
    body, images = render()
    want = {ROOT / 'README.md': body.encode()} | {ROOT / k: v for k, v in images.items()}
    have_imgs = set((ROOT / 'README_files').glob('*')) if (ROOT / 'README_files').exists() else set()
    stale = [f for f, data in want.items() if not f.exists() or f.read_bytes() != data] + sorted(have_imgs - set(want))
    if check:
        for f in stale: print(f"out of date: {f.relative_to(ROOT)}")
        return 1 if stale else 0
    for f in sorted(have_imgs - set(want)): f.unlink()
    for f, data in want.items(): f.parent.mkdir(exist_ok=True); f.write_bytes(data)
    return 0

if __name__ == '__main__': sys.exit(main('--check' in sys.argv[1:]))
