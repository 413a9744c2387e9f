"""Muon: momentum SGD whose update is orthogonalised by a Newton-Schulz iteration.

For each 2-D (or stacked [E, out, in]) hidden matrix the Nesterov momentum M is replaced by
approximately U V^T of its SVD (quintic Newton-Schulz, 5 steps, coefficients from K. Jordan's
Muon write-up), scaled by sqrt(max(1, out/in)) so that tall and wide matrices get comparable
per-element step sizes. Stacked expert tensors are orthogonalised per expert (batched matmuls).
Decoupled weight decay as in AdamW. Written for this project from the published algorithm.
"""
import torch

NS_COEFFS = (3.4445, -4.7750, 2.0315)


def newton_schulz(g, steps=5, eps=1e-7):
    """g [..., m, n] -> approximately orthogonal matrix with the same row/column spaces."""
    a, b, c = NS_COEFFS
    x = g / (g.flatten(-2).norm(dim=-1)[..., None, None] + eps)
    transpose = x.shape[-2] > x.shape[-1]
    if transpose:
        x = x.transpose(-2, -1)
    for _ in range(steps):
        A = x @ x.transpose(-2, -1)
        B = b * A + c * (A @ A)
        x = a * x + B @ x
    if transpose:
        x = x.transpose(-2, -1)
    return x


class Muon(torch.optim.Optimizer):
    def __init__(self, params, lr=0.02, momentum=0.95, weight_decay=0.0, ns_steps=5):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      ns_steps=ns_steps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, mu, wd = group['lr'], group['momentum'], group['weight_decay']
            for p in group['params']:
                if p.grad is None:
                    continue
                g = p.grad
                st = self.state[p]
                if 'buf' not in st:
                    st['buf'] = torch.zeros_like(g)
                buf = st['buf']
                buf.mul_(mu).add_(g)
                upd = g.add(buf, alpha=mu)                  # Nesterov
                o = newton_schulz(upd, group['ns_steps'])
                scale = max(1.0, p.shape[-2] / p.shape[-1]) ** 0.5
                if wd:
                    p.mul_(1 - lr * wd)
                p.add_(o, alpha=-lr * scale)
