#!/usr/bin/env python
"""The interactive chapters in a real JupyterLab, driven by a real browser (Playwright + Debian's chromium).

What a reader sees, checked end to end, on a temporary copy of `nbs/` (the repository is never touched):

1. JupyterLab starts from this environment on 127.0.0.1, a free port, a random token, isolated
   config/data/runtime/settings folders; chromium (headless) opens it.
2. Every notebook in `nbs/` (the tested ones: names not starting with `_` or `.`) is opened and must render
   completely: no saved error output, every markdown cell rendered, all TeX typeset by MathJax (no raw `$...$`
   left, no MathJax error node, no undefined macro).
3. Every notebook with a saved widget output (today chapter 07, the explorer) is run in the real kernel, cell
   by cell up to and including its last widget cell (`#| slow` cells are skipped), and every control of every
   widget is moved with the keyboard or the mouse. After each move: the figure on the page must change (a new,
   fully loaded image), the controls' readouts must show the kernel's values, the image must be byte-identical
   to a fresh render of the widget's function at those values, and the numbers in it must move the way the
   chapter says (for `plot_gradient_flow`: the fitted rate against log rho, the bound (39)). A screenshot of
   each widget state is saved under `.ci/artifacts/browser/`.
4. Every process started (server, kernels, browser) is stopped, even on failure, and checked gone.

`--break` injects a broken callback into the temporary copy (it raises once rho > 1), to show the test fails.
Prints one line per check and ends with `browser checks: N ok, M failed`; exit status 0 only if all passed.
"""
import argparse, base64, json, math, os, re, secrets, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'

# ---------------------------------------------------------------------------------------------- reporting
RESULTS, T0 = [], time.monotonic()   # (ok, name, detail); the start

def check(ok, name, detail=''):
    RESULTS.append((bool(ok), name, detail))
    print(f"  {'ok  ' if ok else 'FAIL'} {time.monotonic() - T0:5.1f}s {name}" + (f" -- {detail}" if detail else ''), flush=True)
    return bool(ok)

# ---------------------------------------------------------------------------------------- the notebooks
def tested_notebooks(nbs):
    "Notebooks `nbdev_test` runs: recursively, skipping names that start with `_` or `.`."
    return sorted(p for p in nbs.rglob('*.ipynb')
                  if not any(part.startswith(('_', '.')) for part in p.relative_to(nbs).parts))

def widget_cells(nb):
    "Indices of code cells with a saved widget output."
    return [i for i, c in enumerate(nb['cells']) if c['cell_type'] == 'code'
            and any(WIDGET_MIME in o.get('data', {}) for o in c.get('outputs', []))]

BREAK_CELL = '''\
# injected by .ci/browser_test.py --break: the widget's callback raises once rho > 1
import functools as _ft
_g = explorer.__globals__; _orig = _g['plot_gradient_flow']
@_ft.wraps(_orig)
def _broken(*args, **kwargs):
    if kwargs.get('rho', 0) > 1: raise RuntimeError('deliberately broken callback (--break)')
    return _orig(*args, **kwargs)
_g['plot_gradient_flow'] = _broken'''

def prepare_run_copy(path, brk):
    """Rewrite the temporary copy of a widget notebook for running: `#| slow` cells become raw cells (not
    run), with `brk` a breaking cell goes in front of the first widget cell. Returns the last widget cell."""
    nb = json.loads(path.read_text())
    for c in nb['cells']:
        if c['cell_type'] == 'code' and ''.join(c['source']).lstrip().startswith('#| slow'):
            c['cell_type'] = 'raw'; c.pop('outputs', None); c.pop('execution_count', None)
    if brk:
        first = widget_cells(nb)[0]
        nb['cells'].insert(first, dict(cell_type='code', execution_count=None, metadata={}, outputs=[],
                                       source=BREAK_CELL, id='bptt-break'))
    path.write_text(json.dumps(nb, indent=1))
    return widget_cells(nb)[-1]

# ------------------------------------------------------------------------------------ processes we own
def descendants(pid):
    "Every live process below `pid` (from /proc), children first-level included."
    kids = {}
    for d in Path('/proc').iterdir():
        if d.name.isdigit():
            try: ppid = int((d / 'stat').read_text().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError): continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []): out.append(k); todo.append(k)
    return out

def alive(pid):
    try:
        st = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
        return st != 'Z'
    except OSError: return False

def stop_all(pids, grace=10.0):
    "SIGTERM, wait (polling /proc) at most `grace` s, then SIGKILL what is left."
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in pids:
            try: os.kill(p, sig)
            except ProcessLookupError: pass
        end = time.monotonic() + grace
        while time.monotonic() < end and any(alive(p) for p in pids): time.sleep(0.05)
        if not any(alive(p) for p in pids): return

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def start_jupyter(tmp, root_dir, log):
    "JupyterLab on 127.0.0.1 with a token, everything it reads or writes under `tmp`. Returns (proc, url, token)."
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(('JUPYTER', 'IPYTHON', 'MPLBACKEND'))}
    for k, d in dict(JUPYTER_CONFIG_DIR='config', JUPYTER_DATA_DIR='data', JUPYTER_RUNTIME_DIR='runtime',
                     IPYTHONDIR='ipython', JUPYTERLAB_SETTINGS_DIR='settings',
                     JUPYTERLAB_WORKSPACES_DIR='workspaces', MPLCONFIGDIR='mpl').items():
        env[k] = str(tmp / d); (tmp / d).mkdir(exist_ok=True)
    # no news/update pop-ups; every cell in the DOM (no virtual scrolling), so the whole chapter renders
    settings = {'@jupyterlab/apputils-extension/notification.jupyterlab-settings':
                    {'fetchNews': 'false', 'checkForUpdates': False},
                '@jupyterlab/notebook-extension/tracker.jupyterlab-settings': {'windowingMode': 'none'}}
    for name, value in settings.items():
        f = tmp / 'settings' / name; f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(value))
    for attempt in range(3):
        port = free_port()
        cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
               '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}',
               f'--ServerApp.root_dir={root_dir}', '--LabApp.expose_app_in_browser=True',
               '--ServerApp.terminals_enabled=False']
        if os.geteuid() == 0: cmd.append('--allow-root')
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f'http://127.0.0.1:{port}'
        end = time.monotonic() + 60
        while time.monotonic() < end and proc.poll() is None:
            try:
                with urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=2) as r:
                    if r.status == 200: return proc, url, token
            except OSError: time.sleep(0.1)
        stop_all([proc.pid] + descendants(proc.pid))   # port taken between free_port() and bind: try another
    raise RuntimeError(f'JupyterLab did not start (see {log.name})')

# ------------------------------------------------------------------------------------------ in the page
JS_OPEN = '''async ({path, kernelId}) => {
  const app = window.jupyterapp;
  const args = {path, factory: 'Notebook'};
  if (kernelId) args.kernel = {id: kernelId};
  const w = await app.commands.execute('docmanager:open', args);
  await w.context.ready; await w.sessionContext.ready;
  (window.__bptt = window.__bptt || {})[path] = w;
  app.shell.activateById(w.id);
  return w.sessionContext.session ? w.sessionContext.session.kernel.id : null;
}'''

# true once every cell is in the DOM, every markdown cell rendered and no raw TeX is left (MathJax done)
JS_RENDERED = '''(path) => {
  const w = (window.__bptt || {})[path]; if (!w || !w.context.isReady) return false;
  const nb = w.content;
  if (nb.widgets.length !== nb.model.cells.length) return false;
  for (const cell of nb.widgets) {
    if (cell.model.type === 'markdown' && (!cell.rendered || !cell.node.querySelector('.jp-RenderedMarkdown'))) return false;
  }
  for (const el of nb.node.querySelectorAll('.jp-RenderedMarkdown')) {
    const c = el.cloneNode(true);
    c.querySelectorAll('code, pre, mjx-container, .MathJax').forEach(e => e.remove());
    if (/\\$[^$]+\\$|\\\\\\(|\\\\\\[/.test(c.textContent)) return false;
  }
  return true;
}'''

JS_RENDER_REPORT = '''(path) => {
  const w = window.__bptt[path], nb = w.content, out = {errors: [], mathErrors: [], rawTex: [], cells: nb.model.cells.length,
    math: nb.node.querySelectorAll('mjx-container').length, images: 0, badImages: 0};
  nb.widgets.forEach((cell, i) => {
    if (cell.model.type !== 'code') return;
    for (let j = 0; j < cell.model.outputs.length; j++) {
      const o = cell.model.outputs.get(j);
      if (o.type === 'error') out.errors.push(`cell ${i}: ${o.toJSON().ename}: ${o.toJSON().evalue}`);
    }
  });
  nb.node.querySelectorAll('mjx-merror, [data-mjx-error], mjx-mtext[style*="red"]').forEach(e =>
    out.mathErrors.push((e.getAttribute('data-mjx-error') || '') + ' ' + e.textContent.slice(0, 80)));
  nb.node.querySelectorAll('.jp-RenderedMarkdown').forEach(el => {
    const c = el.cloneNode(true); c.querySelectorAll('code, pre, mjx-container, .MathJax').forEach(e => e.remove());
    const m = c.textContent.match(/\\$[^$]+\\$|\\\\\\(|\\\\\\[/); if (m) out.rawTex.push(m[0].slice(0, 80));
  });
  nb.node.querySelectorAll('.jp-OutputArea-output img').forEach(img => {
    out.images++; if (!img.complete || img.naturalWidth === 0) out.badImages++; });
  return out;
}'''

JS_IMAGES_LOADED = '''(path) => [...window.__bptt[path].content.node.querySelectorAll('.jp-OutputArea-output img')]
  .every(img => img.complete)'''

JS_RUN_UPTO = '''async ({path, upto}) => {
  const app = window.jupyterapp, w = window.__bptt[path], nb = w.content;
  app.shell.activateById(w.id);
  nb.activeCellIndex = upto;
  await app.commands.execute('notebook:run-all-above');
  nb.activeCellIndex = upto;
  await app.commands.execute('notebook:run-cell');
}'''

# true once every widget output up to cell `upto` has its view in the DOM (widget views render asynchronously)
JS_WIDGETS_SHOWN = '''({path, upto}) => {
  const nb = window.__bptt[path].content;
  return nb.widgets.slice(0, upto + 1).every(cell => cell.model.type !== 'code' ||
    [...Array(cell.model.outputs.length).keys()].every(j => {
      const d = cell.model.outputs.get(j).toJSON().data || {};
      if (!d['application/vnd.jupyter.widget-view+json']) return true;
      const node = cell.outputArea.widgets[j] && cell.outputArea.widgets[j].node;
      return !!node && !!node.querySelector('.widget-interact, .widget-box, .widget-inline-hbox');
    }));
}'''

JS_IDLE = '''(path) => { const k = window.__bptt[path].sessionContext.session?.kernel; return !!k && k.status === 'idle'; }'''

JS_RUN_REPORT = '''({path, upto}) => {
  const nb = window.__bptt[path].content, out = {errors: [], notRun: [], models: []};
  nb.widgets.slice(0, upto + 1).forEach((cell, i) => {
    if (cell.model.type !== 'code') return;
    if (cell.model.executionCount === null) out.notRun.push(i);
    for (let j = 0; j < cell.model.outputs.length; j++) {
      const o = cell.model.outputs.get(j), d = o.toJSON();
      if (o.type === 'error') out.errors.push(`cell ${i}: ${d.ename}: ${d.evalue}`);
      const v = (d.data || {})['application/vnd.jupyter.widget-view+json'];
      if (v) {
        const node = cell.outputArea.widgets[j] && cell.outputArea.widgets[j].node;
        const root = node && node.querySelector('.widget-interact');
        if (root) root.setAttribute('data-bptt-model', v.model_id);
        out.models.push({cell: i, model_id: v.model_id, interact: !!root});
      }
    }
  });
  return out;
}'''

# a request to the notebook's own kernel, outside any cell: its outputs go nowhere on the page
JS_EXEC = '''async ({path, code}) => {
  const kernel = window.__bptt[path].sessionContext.session.kernel;
  const fut = kernel.requestExecute({code, silent: false, store_history: false});
  const res = {text: '', pngs: [], errors: []};
  fut.onIOPub = (msg) => {
    const t = msg.header.msg_type, c = msg.content;
    if (t === 'stream') res.text += c.text;
    else if ((t === 'display_data' || t === 'execute_result') && c.data['image/png']) res.pngs.push(c.data['image/png']);
    else if (t === 'error') res.errors.push(c.ename + ': ' + c.evalue);
  };
  const reply = await fut.done;
  res.status = reply.content.status;
  return res;
}'''

# the DOM root of the interactive with model id `mid`, found afresh from the cells' outputs each time (views
# can be re-created), and tagged so that Playwright's locators find it
JS_ROOT_HELPER = '''() => { window.__bpttRoot = (mid) => {
  for (const w of Object.values(window.__bptt || {}))
    for (const cell of w.content.widgets) {
      if (cell.model.type !== 'code') continue;
      for (let j = 0; j < cell.model.outputs.length; j++) {
        const v = (cell.model.outputs.get(j).toJSON().data || {})['application/vnd.jupyter.widget-view+json'];
        const node = v && v.model_id === mid && cell.outputArea.widgets[j] && cell.outputArea.widgets[j].node;
        const root = node && node.querySelector('.widget-interact');
        if (root) {
          document.querySelectorAll(`[data-bptt-model="${mid}"]`).forEach(e => e !== root && e.removeAttribute('data-bptt-model'));
          root.setAttribute('data-bptt-model', mid); return root;
        }
      }
    }
  return null;
}; }'''

JS_TAG = '''(mid) => !!window.__bpttRoot(mid)'''

# what the page shows for one interactive: each control's readout or selection, and the figure
JS_SHOWN = '''(mid) => {
  const root = window.__bpttRoot(mid), out = {controls: {}, img: null};
  if (!root) return null;
  for (const el of root.querySelectorAll('.widget-inline-hbox')) {
    const label = el.querySelector('.widget-label'); if (!label) continue;
    const readout = el.querySelector('.widget-readout'), select = el.querySelector('select');
    const kind = el.classList.contains('widget-slider') ? 'slider' : select ? 'dropdown'
               : el.querySelector('input[type=checkbox]') ? 'checkbox' : 'other';
    out.controls[label.textContent.trim()] = {kind, shown: readout ? readout.textContent.trim()
      : select ? select.selectedOptions[0].textContent : null};
  }
  const img = root.querySelector('.widget-output img');
  if (img) out.img = img.src;
  return out;
}'''

# after a move: wait for a new, fully loaded figure and an idle kernel, or for a new error in the widget
JS_UPDATED = '''({path, mid, before}) => {
  const root = window.__bpttRoot(mid);
  if (!root) return false;
  const err = [...root.querySelectorAll('.widget-output [data-mime-type="application/vnd.jupyter.stderr"]')]
    .find(e => !e.hasAttribute('data-bptt-seen'));
  if (err) return 'error in the widget: ' + err.textContent.trim().split('\\n').filter(l => l.trim()).pop().slice(0, 300);
  const img = root.querySelector('.widget-output img');
  if (!img || img.src === before || !img.complete || img.naturalWidth === 0) return false;
  const k = window.__bptt[path].sessionContext.session.kernel;
  return k.status === 'idle' ? 'ok' : false;
}'''

JS_MARK_SEEN = '''(mid) => window.__bpttRoot(mid)
  .querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]').forEach(e => e.setAttribute('data-bptt-seen', ''))'''

# defined once in the kernel (outside the chapter's cells): the state of an interactive, and a fresh render
KERNEL_HELPER = '''
def _bptt_widget_state(model_id, render):
    import json, numpy as np
    from ipywidgets import DOMWidget
    from ipywidgets.widgets.widget import _instances
    from ipywidgets.widgets.interaction import show_inline_matplotlib_plots
    w = _instances[model_id]
    ctrls = {}
    for c in w.kwargs_widgets:
        if not isinstance(c, DOMWidget): continue
        d = dict(kwarg=c._kwarg, cls=type(c).__name__, value=c.value)
        for k in ('min', 'max', 'step', 'base', 'readout_format'):
            if hasattr(c, k): d[k] = getattr(c, k)
        if hasattr(c, '_options_labels'): d['options'] = list(c._options_labels)
        ctrls[c.description] = d
    r, s = w.result, {}
    if isinstance(r, dict):
        for k, v in r.items():
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool): s[k] = float(v)
            elif isinstance(v, np.ndarray): s[k + '_shape'] = list(v.shape)
        if 'norms' in r and 'bound' in r:   # (39): the measured norm never above sigma_max^n
            s['under_bound'] = bool(np.all(r['norms'] <= r['bound'] * (1 + 1e-9)))
    kwargs = {k: v for k, v in w.kwargs.items() if isinstance(v, (int, float, str)) or v is None}
    print(json.dumps(dict(f=w.f.__name__, controls=ctrls, kwargs=kwargs, summary=s)))
    if render:                              # the same call and the same display path as the widget's update
        w.f(**w.kwargs); show_inline_matplotlib_plots()
'''

# ------------------------------------------------------------------------------ the explorer's scenario
log = math.log
def near_log_rho(c, tol=0.01): return abs(c['rate'] - log(c['rho'])) < tol

# (control, move, what the chapter says, test on (initial, previous, current) summaries)
EXPLORER = [
    ('input_scale', 'Home', 'tanh, inputs x0.01: the states stay near 0, tanh is almost linear, the rate climbs to log rho',
     lambda i, p, c: c['rate'] > p['rate'] and near_log_rho(c)),
    ('input_scale', 'End', 'tanh, inputs x10: saturated units, the gradient vanishes faster than at input scale 1',
     lambda i, p, c: c['rate'] < i['rate']),
    ('input_scale', 'ArrowLeft', 'one step back (10^0.9): between the rates at input scale 1 and 10',
     lambda i, p, c: i['rate'] > c['rate'] > p['rate']),
    ('nonlinearity', 'linear', 'linear recurrence: the rate is log rho, whatever the inputs',
     lambda i, p, c: near_log_rho(c)),
    ('rho', 'ArrowRight', 'rho 0.90 -> 0.95: the rate rises with log rho',
     lambda i, p, c: c['rate'] > p['rate'] and near_log_rho(c)),
    ('rho', 'End', 'rho 2: exploding, rate = log 2 > 0',
     lambda i, p, c: c['rate'] > 0 and near_log_rho(c)),
    ('T', 'ArrowRight', 'T 60 -> 65: 65 lags on the curve, the rate still log rho',
     lambda i, p, c: c['norms_shape'] == [65] and near_log_rho(c)),
    ('T', 'End', 'T 200: 200 lags, the rate still log rho',
     lambda i, p, c: c['norms_shape'] == [200] and near_log_rho(c)),
    ('rho', 'Home', 'rho 0.1 at T 200: vanishes at least as fast as log rho (underflows to exactly 0)',
     lambda i, p, c: c['rate'] <= log(c['rho']) + 0.01),
    ('T', 'Home', 'T 5: 5 lags, the rate fitted from lag 3, finite and negative',
     lambda i, p, c: c['norms_shape'] == [5] and math.isfinite(c['rate']) and c['rate'] < 0),
    ('nonlinearity', 'relu', 'relu: vanishing, under the bound (39)',
     lambda i, p, c: c['rate'] < 0),
]

def generic_scenario(controls):
    "For a widget this test does not know: every slider to its end and back, every other option of a dropdown."
    moves = []
    for label, c in controls.items():
        if c['cls'] in ('Dropdown', 'Select', 'RadioButtons', 'ToggleButtons'):
            moves += [(label, o, f'option {o}', None) for o in c['options'] if o != str(c['value'])]
        elif 'Slider' in c['cls']: moves += [(label, 'End', 'to its maximum', None), (label, 'Home', 'to its minimum', None)]
        else: moves.append((label, None, f'unsupported control {c["cls"]}', None))
    return moves

def expected_value(c, move):
    "The kernel value a control must reach after `move`, from its state before."
    if c['cls'] in ('Dropdown', 'Select', 'RadioButtons', 'ToggleButtons'): return move
    lo, hi, st = c['min'], c['max'], c['step']
    if c['cls'] == 'FloatLogSlider':
        e = log(c['value'], c['base'])
        e = dict(Home=lo, End=hi, ArrowRight=min(e + st, hi), ArrowLeft=max(e - st, lo))[move]
        return c['base'] ** e
    return dict(Home=lo, End=hi, ArrowRight=min(c['value'] + st, hi), ArrowLeft=max(c['value'] - st, lo))[move]

def same_value(a, b):
    if isinstance(a, str) or isinstance(b, str): return str(a) == str(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)

def shown_matches(c, shown):
    "Does the readout (or selection) on the page show the kernel's value?"
    if shown is None: return False
    if isinstance(c['value'], str): return shown == c['value']
    try: v = float(shown)
    except ValueError: return False
    return math.isclose(v, c['value'], rel_tol=6e-3, abs_tol=6e-3)   # readouts are rounded (.2f, .3g)

# ------------------------------------------------------------------------------------------- the test
class Run:
    def __init__(self, page, path, art, timeout):
        self.page, self.path, self.art, self.timeout = page, path, art, timeout * 1000

    def js(self, code, arg=None): return self.page.evaluate(code, arg)

    def wait(self, code, arg, what):
        try: return self.page.wait_for_function(code, arg=arg, timeout=self.timeout, polling=50).json_value()
        except PWTimeout as e: raise RuntimeError(f'timed out waiting for {what}') from e
        except Exception as e: raise RuntimeError(f'waiting for {what}: {str(e).splitlines()[0]}') from e

    def kernel(self, code):
        res = self.js(JS_EXEC, {'path': self.path, 'code': code})
        if res['status'] != 'ok' or res['errors']: raise RuntimeError(f"kernel: {res['errors']}")
        return res

    def state(self, mid, render=True):
        res = self.kernel(f'_bptt_widget_state({mid!r}, {render})')
        st = json.loads(res['text'].strip().splitlines()[-1])
        st['png'] = res['pngs'][-1] if res['pngs'] else None
        return st

    def locate(self, mid):
        if not self.js(JS_TAG, mid): raise RuntimeError(f'widget {mid} is not on the page')
        return self.page.locator(f'[data-bptt-model="{mid}"]')

    def shot(self, mid, name):
        f = self.art / name
        self.locate(mid)
        self.page.locator(f'[data-bptt-model="{mid}"]').screenshot(path=str(f))
        return f.name

def render_check(run, rel):
    "One notebook as a reader opens it: fully rendered, no error output, MathJax without errors."
    t0 = time.monotonic()
    try:
        run.wait(JS_RENDERED, rel, f'{rel} to render (cells, markdown, MathJax)')
        run.wait(JS_IMAGES_LOADED, rel, f'{rel} images to load')
        r = run.js(JS_RENDER_REPORT, rel)
    except RuntimeError as e:
        r = run.js(JS_RENDER_REPORT, rel); r['timeout'] = str(e)
    r['seconds'] = time.monotonic() - t0
    render_verdict(rel, r)

# the notebooks that are only rendered, one after the other in a second page (its own renderer process, so
# on 2 cores it works while the first page drives the widgets); started, not awaited: results in window
JS_RENDER_JOB = '''async ({paths, timeoutMs}) => {
  const rendered = RENDERED, imagesLoaded = IMAGES_LOADED, report = REPORT, open = OPEN;
  const until = async (cond, what) => { const t0 = Date.now();
    while (!cond()) { if (Date.now() - t0 > timeoutMs) throw new Error('timed out waiting for ' + what);
                      await new Promise(r => setTimeout(r, 50)); } };
  window.__renderResults = {}; window.__renderDone = false;
  (async () => {
    let kernelId = null;
    for (const path of paths) {
      const t0 = Date.now();
      try {
        const k = await open({path, kernelId}); kernelId = kernelId || k;   // one kernel for all of them
        await until(() => rendered(path), path + ' to render (cells, markdown, MathJax)');
        await until(() => imagesLoaded(path), path + ' images to load');
        window.__renderResults[path] = report(path);
      } catch (e) {
        let r = {}; try { r = report(path); } catch (_) {}
        window.__renderResults[path] = {...r, timeout: String(e)};
      }
      window.__renderResults[path].seconds = (Date.now() - t0) / 1000;
      try { const w = window.__bptt[path]; delete window.__bptt[path]; w.dispose(); } catch (_) {}
    }
    window.__renderDone = true;
  })();
}'''.replace('RENDERED', JS_RENDERED).replace('IMAGES_LOADED', JS_IMAGES_LOADED).replace('REPORT', JS_RENDER_REPORT).replace('OPEN', JS_OPEN)

def render_verdict(rel, r):
    ok = not (r.get('errors') or r.get('mathErrors') or r.get('rawTex') or r.get('badImages') or r.get('timeout'))
    detail = (f"{r['cells']} cells, {r['math']} formulas, {r['images']} images, {r['seconds']:.1f} s" if ok else
              json.dumps({k: r[k] for k in ('errors', 'mathErrors', 'rawTex', 'badImages', 'timeout') if r.get(k)})[:600])
    check(ok, f'{rel}: renders, no error output, no MathJax error', detail)

def open_lab(browser, url, token, workspace, timeout, errors):
    "A page with JupyterLab loaded (`window.jupyterapp` exposed, layout restored)."
    page = browser.new_context(viewport={'width': 1280, 'height': 1000}).new_page()
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto(f'{url}/lab/workspaces/{workspace}?reset&token={token}', timeout=timeout * 1000)
    page.wait_for_function('() => window.jupyterapp && window.jupyterapp.started !== undefined', timeout=timeout * 1000)
    page.evaluate('() => window.jupyterapp.restored')
    page.evaluate(JS_ROOT_HELPER)
    return page

def drive_widget(run, nbname, mid):
    "Move every control of one interactive; after each move check page against kernel and the chapter's claims."
    page, stem = run.page, Path(nbname).stem
    st = run.state(mid)
    shown = run.js(JS_SHOWN, mid)
    name = st['f']
    check(shown and shown['img'] and st['png'] and shown['img'].split(',', 1)[1] == st['png'].strip(),
          f'{stem} {name}: the initial figure is {name}() at the controls\' values',
          f"rate {st['summary'].get('rate', float('nan')):.4f}" if 'rate' in st['summary'] else '')
    check(shown and set(shown['controls']) == set(st['controls']),
          f'{stem} {name}: controls on the page are the kernel widget\'s', ', '.join(shown['controls'] if shown else []))
    shots = [run.shot(mid, f'{stem}-{name}-00-initial.png')]
    init = prev = st
    moves = EXPLORER if name == 'plot_gradient_flow' else generic_scenario(st['controls'])
    moved = set()
    for k, (label, move, claim, test) in enumerate(moves, 1):
        what = f'{stem} {name}: {label} <- {move}'
        c0 = prev['controls'].get(label)
        if c0 is None or move is None:
            check(False, what, f'no such control / {claim}'); continue
        want = expected_value(c0, move)
        before = run.js(JS_SHOWN, mid)['img']
        run.js(JS_MARK_SEEN, mid)
        ctl = run.locate(mid).locator('.widget-inline-hbox').filter(
            has=page.locator('.widget-label', has_text=re.compile(rf'^\s*{re.escape(label)}\s*$')))
        if c0['cls'] in ('Dropdown', 'Select'): ctl.locator('select').select_option(label=move)
        else: ctl.locator('.noUi-handle, .ui-slider-handle').first.press(move)
        moved.add(label)
        try: outcome = run.wait(JS_UPDATED, {'path': run.path, 'mid': mid, 'before': before}, 'a new figure')
        except RuntimeError as e: outcome = str(e)
        tag = f"{k:02d}-{label}-{move}-{want:.3g}" if not isinstance(want, str) else f'{k:02d}-{label}-{want}'
        shots.append(run.shot(mid, f'{stem}-{name}-{re.sub(r"[^A-Za-z0-9_.=-]+", "_", tag)}.png'))
        if outcome != 'ok':
            check(False, what, f'the figure did not update: {outcome}')
            prev = run.state(mid, render=False)   # judge the next move from where the controls are now
            continue
        st, shown = run.state(mid), run.js(JS_SHOWN, mid)
        c1, s = st['controls'][label], st['summary']
        problems = []
        if not same_value(c1['value'], want): problems.append(f"kernel value {c1['value']} != expected {want}")
        for lab, c in st['controls'].items():
            if not shown_matches(c, shown['controls'].get(lab, {}).get('shown')):
                problems.append(f"{lab} shows {shown['controls'].get(lab, {}).get('shown')!r}, kernel has {c['value']!r}")
            if lab != label and not same_value(c['value'], prev['controls'][lab]['value']):
                problems.append(f'{lab} changed too')
        if not (st['png'] and shown['img'].split(',', 1)[1] == st['png'].strip()):
            problems.append(f'the figure on the page is not {name}(**widget values)')
        if s.get('under_bound') is False: problems.append('the gradient norm crosses the bound (39)')
        if test is not None:
            try: good = test(init['summary'], prev['summary'], s)
            except (KeyError, TypeError) as e: good = False; problems.append(f'summary lacks {e}')
            if not good: problems.append(f"not as the chapter says: rate {s.get('rate')}, previous {prev['summary'].get('rate')}")
        shown_v = shown['controls'][label]['shown']
        detail = f"{claim}; shows {label} = {shown_v}" + (f", rate {s['rate']:.4f}, log rho {log(s['rho']):.4f}"
                                                          if 'rate' in s and 'rho' in s else '')
        check(not problems, what, detail if not problems else '; '.join(problems))
        prev = st
    missing = set(init['controls']) - moved
    check(not missing, f'{stem} {name}: every control moved', ', '.join(sorted(moved)) + (f'; NOT {missing}' if missing else ''))
    print(f'  screenshots: {run.art}/{{{", ".join(shots[:2])}, ... ({len(shots)} files)}}')

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--break', dest='brk', action='store_true', help='inject a callback that raises once rho > 1')
    ap.add_argument('--artifacts', default=str(ROOT / '.ci' / 'artifacts' / 'browser'), help='screenshots go here')
    ap.add_argument('--chromium', default=os.environ.get('CHROMIUM', shutil.which('chromium') or '/usr/bin/chromium'),
                    help="the browser's executable (env CHROMIUM); 'playwright' for Playwright's own build")
    ap.add_argument('--timeout', type=float, default=90, help='seconds for any one wait')
    ap.add_argument('--keep', action='store_true', help='keep the temporary folder (server log, notebooks)')
    a = ap.parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):   # killed (a CI timeout): still clean up, in `finally`
        signal.signal(sig, lambda n, _: sys.exit(128 + n))
    global PWTimeout
    from playwright.sync_api import sync_playwright, TimeoutError as PWTimeout
    start = time.monotonic()
    art = Path(a.artifacts); shutil.rmtree(art, ignore_errors=True); art.mkdir(parents=True)
    tmp = Path(tempfile.mkdtemp(prefix='bptt-browser-'))
    nbs = tmp / 'nbs'
    shutil.copytree(ROOT / 'nbs', nbs, ignore=shutil.ignore_patterns('.ipynb_checkpoints', '__pycache__'))
    chapters = tested_notebooks(nbs)
    with_widgets = [p for p in chapters if widget_cells(json.loads(p.read_text()))]
    print(f'browser test: {len(chapters)} notebooks, widgets in {[p.name for p in with_widgets]}'
          + (' (--break: broken callback injected)' if a.brk else ''), flush=True)
    check(with_widgets, 'some notebook holds a widget')
    server = pw = browser = None
    log_f = open(tmp / 'jupyter.log', 'w')
    try:
        server, url, token = start_jupyter(tmp, nbs, log_f)
        print(f'  JupyterLab at {url} (pid {server.pid}), {time.monotonic() - start:.1f} s', flush=True)
        pw = sync_playwright().start()
        exe = {} if a.chromium == 'playwright' else {'executable_path': a.chromium}
        browser = pw.chromium.launch(**exe, headless=True,
                                     args=['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'])
        page_errors = []
        render_page = open_lab(browser, url, token, 'bptt-render', a.timeout, page_errors)
        only_rendered = [str(p.relative_to(nbs)) for p in chapters if p not in with_widgets]
        render_page.evaluate(JS_RENDER_JOB, {'paths': only_rendered, 'timeoutMs': a.timeout * 1000})
        page = open_lab(browser, url, token, 'bptt-widgets', a.timeout, page_errors)
        for nbp in with_widgets:
            rel = str(nbp.relative_to(nbs))
            upto = prepare_run_copy(nbp, a.brk)
            run = Run(page, rel, art, a.timeout)
            run.js(JS_OPEN, {'path': rel, 'kernelId': None})   # its own kernel
            render_check(run, rel)
            run.wait(JS_IDLE, rel, 'the kernel to be idle')
            t0 = time.monotonic()
            run.js(JS_RUN_UPTO, {'path': rel, 'upto': upto})
            run.wait(JS_IDLE, rel, 'the kernel to be idle')
            try: run.wait(JS_WIDGETS_SHOWN, {'path': rel, 'upto': upto}, 'the widgets to show')
            except RuntimeError as e: print(f'  {e}')   # reported just below, with the cells' errors
            rep = run.js(JS_RUN_REPORT, {'path': rel, 'upto': upto})
            check(not rep['errors'] and not rep['notRun'], f'{rel}: cells 0..{upto} run in the kernel',
                  f'{time.monotonic() - t0:.1f} s' if not rep['errors'] else '; '.join(rep['errors'])[:600])
            live = [m for m in rep['models'] if m['interact']]
            if not check(live, f'{rel}: the widget is live in the page', json.dumps(rep['models'])): continue
            run.kernel(KERNEL_HELPER)
            for m in live:
                run.wait(JS_UPDATED, {'path': rel, 'mid': m['model_id'], 'before': None}, 'the first figure')
                drive_widget(run, rel, m['model_id'])
        # each notebook has its own timeout inside the job; this one only bounds kernel start and opening
        render_page.wait_for_function('() => window.__renderDone', timeout=(len(only_rendered) + 1) * a.timeout * 1000, polling=100)
        for rel, r in render_page.evaluate('() => window.__renderResults').items(): render_verdict(rel, r)
        if page_errors: print(f'  note: {len(page_errors)} uncaught page errors: {page_errors[:3]}')
    except Exception as e:
        check(False, 'browser test ran to the end', f'{type(e).__name__}: {e}'.splitlines()[0][:600])
        try:
            if browser: page.screenshot(path=str(art / 'failure-page.png'))
            if browser: render_page.screenshot(path=str(art / 'failure-render-page.png'))
        except Exception: pass
    finally:
        ours = descendants(os.getpid())
        for close in (lambda: browser and browser.close(), lambda: pw and pw.stop()):
            try: close()
            except Exception: pass
        if server is not None:
            try: urllib.request.urlopen(urllib.request.Request(f'{url}/api/shutdown?token={token}', method='POST'), timeout=5)
            except OSError: pass
            try: server.wait(timeout=15)
            except subprocess.TimeoutExpired: pass
        ours = sorted(set(ours + descendants(os.getpid())))
        stop_all([p for p in ours if alive(p)])
        log_f.close()
        left = [p for p in ours if alive(p)]
        check(not left, 'every process started (server, kernels, browser) is gone', f'{len(ours)} stopped' + (f', left: {left}' if left else ''))
        if a.keep: print(f'  kept {tmp}')
        else: shutil.rmtree(tmp, ignore_errors=True)
    n_ok = sum(ok for ok, *_ in RESULTS)
    print(f'browser checks: {n_ok} ok, {len(RESULTS) - n_ok} failed ({time.monotonic() - start:.0f} s)')
    return 0 if n_ok == len(RESULTS) else 1

if __name__ == '__main__':
    sys.exit(main())
