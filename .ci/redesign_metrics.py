"""Issue 11 metrics: share of checking lines (validator functions + raise lines + their if-guards),
lines over 100/120 characters, private names imported across modules, import cycles.
usage: python .ci/redesign_metrics.py [repo]"""
import ast, sys, pathlib, re, collections
root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else '.') / 'bptt_lit'
mods = sorted(p for p in root.glob('*.py') if p.name not in ('_modidx.py', '__init__.py'))
code_lines = check_lines = long100 = long120 = total = 0
widest = 0; priv = []; graph = collections.defaultdict(set); raises = calls = 0
# validators: check_*/checked_*/_check*, the shared error builders, refuse_nonfinite, as_array
# (not `rel_error` or `squared_error`: those are the mathematics)
VALIDATOR = re.compile(r'^(check_|checked_|_check)|^_?shapes?_error$|^refuse_nonfinite$|^as_array$')
for p in mods:
    src = p.read_text(); tree = ast.parse(src); lines = src.split('\n')
    is_code = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not (isinstance(node, ast.Expr) and isinstance(getattr(node, 'value', None), ast.Constant)):
            for l in range(node.lineno, node.end_lineno + 1): is_code.add(l)
    code = [i for i in range(1, len(lines) + 1) if i in is_code and lines[i-1].strip() and not lines[i-1].strip().startswith('#')]
    code_lines += len(code)
    chk = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and VALIDATOR.search(node.name) and p.stem != "verify":  # verify's check_* are properties, not validators
            chk |= set(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, ast.Raise):
            chk |= set(range(node.lineno, node.end_lineno + 1)); raises += 1
            # the `if` line guarding a raise counts too
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and len(node.body) == 1 and isinstance(node.body[0], ast.Raise) and not node.orelse:
            chk |= set(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, ast.Call):
            f = node.func; n = getattr(f, 'id', getattr(f, 'attr', ''))
            if VALIDATOR.search(n or ''): calls += 1
    check_lines += len([i for i in code if i in chk])
    for l in lines:
        total += 1; widest = max(widest, len(l))
        if len(l) > 100: long100 += 1
        if len(l) > 120: long120 += 1
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and (node.level or node.module.startswith('bptt_lit')):
            target = node.module.split('.')[-1] if not node.level else node.module
            if node.module == 'bptt_lit': continue
            graph[p.stem].add(target)
            for a in node.names:
                if a.name.startswith('_'): priv.append(f'{p.stem} <- {target}.{a.name}')
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith('bptt_lit.'): graph[p.stem].add(a.name.split('.')[-1])
# cycles
def cycles():
    out = []; 
    for a in graph:
        stack = [(a, [a])]
        while stack:
            n, path = stack.pop()
            for m in graph.get(n, ()):
                if m == a: out.append(' -> '.join(path + [a]))
                elif m not in path and len(path) < 8: stack.append((m, path + [m]))
    return sorted(set(out))
print(f'modules {len(mods)}; code lines {code_lines}; checking lines {check_lines} = {100*check_lines/code_lines:.1f}%')
print(f'raise statements {raises}; validator calls {calls}')
print(f'lines {total}; > 100 chars: {long100} = {100*long100/total:.2f}%; > 120: {long120}; widest {widest}')
print(f'private names imported across modules: {len(priv)}', priv[:50])
print('import cycles:', cycles() or 'none')
