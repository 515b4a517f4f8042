"""The matrix-product floor of a gated cell's BPTT, beside PyTorch and bptt-lit, in one process.

usage: python .ci/speed_floor.py [lstm,gru] [float32,float64]    (pin it: taskset -c 1 ...)

For each point of `bench.GRID` it times (medians of interleaved runs): `bptt` (ours), PyTorch's
nn.LSTM / nn.GRU + nn.Linear forward and backward (the `bench` peer, one thread), and the floor:
only the matrix products that BPTT of that cell needs, done with numpy on arrays of the same shapes
-- the input projection, the T recurrent products forward and the T backward, the parameter
gradients X^T D and H^T D, and the readout's three products. No elementwise work at all: any numpy
implementation of the cell takes longer than the floor. Where PyTorch's whole run is at or below
the floor, numpy cannot be faster than PyTorch at that point.
"""
import sys, time
import numpy as np
try: import torch
except ImportError: sys.exit('speed_floor.py: needs PyTorch: pip install -e ".[bench]"')
from bptt_lit.bench import GRID, bench_problem, _peer_torch, _peer_ours

def floor_run(B, T, n_in, H, G, dt):
    "A callable doing the matrix products of one BPTT call of a G-gate cell, and nothing else."
    r = np.random.default_rng(0)
    f = lambda *s: r.standard_normal(s).astype(dt)
    X, Wxh, Whh, Why = f(T * B, n_in), f(n_in, G * H), f(H, G * H), f(H, n_in)
    WhhT, WhyT = np.ascontiguousarray(Whh.T), np.ascontiguousarray(Why.T)
    A, Hs, DY = np.empty((T * B, G * H), dt), f(T + 1, B, H), f(T * B, n_in)
    D, u, dh = f(T, B, G * H), np.empty((B, G * H), dt), np.empty((B, H), dt)
    def run():
        np.matmul(X, Wxh, out=A)                                     # input projection
        for t in range(T): np.matmul(Hs[t], Whh, out=u)              # recurrent, forward
        Y = Hs[1:].reshape(T * B, H) @ Why                           # readout
        dH = DY @ WhyT; gWhy = Hs[1:].reshape(T * B, H).T @ DY       # readout backward
        for t in range(T - 1, -1, -1): np.matmul(D[t], WhhT, out=dh) # recurrent, backward
        Dm = D.reshape(T * B, G * H)
        gWhh = Hs[:-1].reshape(T * B, H).T @ Dm; gWxh = X.T @ Dm     # parameter gradients
        return Y, dH, gWhy, gWhh, gWxh
    return run

def median_interleaved(runs, rounds):
    ts = {k: [] for k in runs}
    for f in runs.values(): f()                                       # warm-up
    for i in range(rounds):
        for k, f in runs.items():
            t0 = time.perf_counter(); f(); ts[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in ts.items()}

if __name__ == '__main__':
    torch.set_num_threads(1)
    cells = sys.argv[1].split(',') if len(sys.argv) > 1 else ['lstm', 'gru']
    dtypes = sys.argv[2].split(',') if len(sys.argv) > 2 else ['float32', 'float64']
    print('| cell | B, T, n_in, H | dtype | ours ms | torch ms | floor ms | torch/ours | '
          'torch/floor |')
    print('|---|---|---|--:|--:|--:|--:|--:|')
    for cell in cells:
        G = {'lstm': 4, 'gru': 3}[cell]
        for dt in dtypes:
            for B, T, n_in, H in GRID:
                p, xs, cs = bench_problem(B, T, n_in, H, dt, cell=cell)
                runs = {'ours': _peer_ours(p, xs, cs)[0], 'torch': _peer_torch(p, xs, cs)[0],
                        'floor': floor_run(B, T, n_in, H, G, np.dtype(dt))}
                m = median_interleaved(runs, 9 if T * B * H < 2e6 else 5)
                print(f"| {cell} | {B}, {T}, {n_in}, {H} | {dt} | {m['ours'] * 1e3:.2f} | "
                      f"{m['torch'] * 1e3:.2f} | {m['floor'] * 1e3:.2f} | "
                      f"{m['torch'] / m['ours']:.2f} | {m['torch'] / m['floor']:.2f} |", flush=True)
