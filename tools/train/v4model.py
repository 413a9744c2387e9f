"""A DeepSeek-V4 model in PyTorch for training on CPU (own implementation, see v4-spec.md).

One code path serves both uses:
  * training (`exact=False`): fp32 activations, fake quantisation with straight-through gradients
    of every quantised weight (FP8 128x128 blocks, FP4 per-32 experts) and of the activations the
    reference quantises (act_quant before FP8/FP4 GEMMs, KV FP8 sim, indexer FP4 sim + Hadamard);
  * inference (`exact=True`, no grad): additionally rounds to bf16 at every point where the official
    reference holds bf16 tensors, uses the stored (bf16 / dequantised) weights, so its logits match
    the exported checkpoint run by the reference or by dsv4 up to fp32 summation order.
The forward is a full-sequence prefill (start_pos 0) returning logits at every position; it is
causal, so greedy decoding may simply recompute the prefix.
"""
import math
from dataclasses import dataclass, field, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

import quant as Q


@dataclass
class V4Config:
    vocab_size: int = 6144
    dim: int = 256
    n_layers: int = 4
    n_hash_layers: int = 1
    n_mtp_layers: int = 1
    n_heads: int = 4
    head_dim: int = 128
    rope_head_dim: int = 64
    q_lora_rank: int = 128
    o_groups: int = 2
    o_lora_rank: int = 128
    n_routed_experts: int = 16
    n_activated_experts: int = 2
    moe_inter_dim: int = 128
    route_scale: float = 1.5
    swiglu_limit: float = 10.0
    window_size: int = 128
    compress_ratios: list = field(default_factory=lambda: [0, 4, 128, 4, 0])
    index_n_heads: int = 4
    index_head_dim: int = 128
    index_topk: int = 16
    hc_mult: int = 4
    hc_sinkhorn_iters: int = 20
    hc_eps: float = 1e-6
    norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    compress_rope_theta: float = 160000.0
    original_seq_len: int = 512     # YaRN on compressed layers (rope_scaling in config.json)
    rope_factor: float = 4.0
    beta_fast: int = 32
    beta_slow: int = 1
    max_position_embeddings: int = 4096
    bos_token_id: int = 0
    eos_token_id: int = 1

    def to_dict(self):
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Context: training vs exact inference


class Ctx:
    def __init__(self, exact=False, sparse=True, indexer_loss=False):
        self.exact = exact              # bf16 roundings + stored weights (inference numerics)
        self.sparse = sparse            # CSA uses the indexer's top-k (else dense over blocks)
        self.indexer_loss = indexer_loss
        self.idx_losses = []            # KL terms of the lightning indexers
        self.loads = {}                 # layer id -> expert assignment counts (non-hash)
        self.wcache = {} if exact else None   # stored-format weights, reused across calls

    def cached(self, p, kind, fn):
        if self.wcache is None:
            return fn(p.detach())
        key = (id(p), kind)
        if key not in self.wcache:
            self.wcache[key] = fn(p.detach())
        return self.wcache[key]

    def R(self, x):
        return Q.bf16(x) if self.exact else x


def w_fp8(p, ctx):
    if ctx.exact:
        return ctx.cached(p, 'fp8', Q.fp8_weight_dq)
    return Q.fp8_weight_ste(p)


def w_fp4(p, ctx):
    if ctx.exact:
        return ctx.cached(p, 'fp4', Q.fp4_weight_dq)
    return Q.fp4_weight_ste(p)


def w_bf16(p, ctx):
    return ctx.cached(p, 'bf16', Q.bf16) if ctx.exact else p


def lin8(x, w, ctx):
    """FP8 linear: act_quant(x) (block 128) times the FP8 weight, fp32 accumulation, bf16 out."""
    return ctx.R(Q.act_quant(x) @ w_fp8(w, ctx).t())


def lin8q(xq, w, ctx):
    """FP8 linear on an input already passed through act_quant."""
    return ctx.R(xq @ w_fp8(w, ctx).t())


def lin4w(x, wq, ctx):
    """FP4 expert linear with an already fake-quantised weight."""
    return ctx.R(Q.act_quant(x) @ wq.t())


def topk_lower_index(x, k):
    """Indices of the k largest values along the last dim, descending; exact ties go to the lower
    index (a deterministic rule, the one dsv4 uses; torch.topk's tie order is unspecified)."""
    return torch.sort(x, dim=-1, descending=True, stable=True).indices[..., :k]


def rms(x, eps):
    return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x, ctx):
        return ctx.R(w_bf16(self.weight, ctx) * rms(x, self.eps))


def linear_param(out_f, in_f, gain=1.0):
    return nn.Parameter(torch.randn(out_f, in_f) * (gain / math.sqrt(in_f)))


# ---------------------------------------------------------------------------------------------
# Rotary embedding (last rope_head_dim dims, interleaved pairs)


def rope_tables(cfg, ratio, n_pos):
    rd = cfg.rope_head_dim
    if ratio:
        base, orig = cfg.compress_rope_theta, cfg.original_seq_len
    else:
        base, orig = cfg.rope_theta, 0
    freqs = 1.0 / (base ** (torch.arange(0, rd, 2, dtype=torch.float32) / rd))
    if orig > 0:
        def corr(n):
            return rd * math.log(orig / (n * 2 * math.pi)) / (2 * math.log(base))
        low = max(math.floor(corr(cfg.beta_fast)), 0)
        high = min(math.ceil(corr(cfg.beta_slow)), rd - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(rd // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
        smooth = 1 - ramp
        freqs = freqs / cfg.rope_factor * (1 - smooth) + freqs * smooth
    ang = torch.outer(torch.arange(n_pos, dtype=torch.float32), freqs)
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin, ctx, inverse=False):
    """x [..., T, (heads,) L]; cos/sin [T, rd/2] (broadcast over heads via view)."""
    rd = cos.shape[-1] * 2
    head = x[..., :-rd]
    r = x[..., -rd:].unflatten(-1, (-1, 2))
    a, b = r[..., 0], r[..., 1]
    if inverse:
        sin = -sin
    ya = a * cos - b * sin
    yb = a * sin + b * cos
    y = torch.stack([ya, yb], -1).flatten(-2)
    return torch.cat([head, ctx.R(y)], -1)


# ---------------------------------------------------------------------------------------------
# Hyper-connections


def sinkhorn_split(m, scale, base, hc, iters, eps):
    """m [..., (2+hc)*hc] fp32 -> pre [..., hc], post [..., hc], comb [..., hc, hc]."""
    pre = torch.sigmoid(m[..., :hc] * scale[0] + base[:hc]) + eps
    post = 2 * torch.sigmoid(m[..., hc:2 * hc] * scale[1] + base[hc:2 * hc])
    M = (m[..., 2 * hc:] * scale[2] + base[2 * hc:]).unflatten(-1, (hc, hc))
    M = torch.softmax(M, -1) + eps
    M = M / (M.sum(-2, keepdim=True) + eps)
    for _ in range(iters - 1):
        M = M / (M.sum(-1, keepdim=True) + eps)
        M = M / (M.sum(-2, keepdim=True) + eps)
    return pre, post, M


class HC(nn.Module):
    """Parameters of one hyper-connection site (attn or ffn)."""

    def __init__(self, cfg):
        super().__init__()
        hc, d = cfg.hc_mult, cfg.dim
        mix = (2 + hc) * hc
        self.fn = nn.Parameter(torch.randn(mix, hc * d) * 0.002)
        base = torch.zeros(mix)
        base[2 * hc:] = (torch.eye(hc) * 4.0).flatten()
        self.base = nn.Parameter(base)
        self.scale = nn.Parameter(torch.ones(3))
        self.cfg = cfg

    def pre(self, X, ctx):
        cfg = self.cfg
        v = X.flatten(-2)
        r = torch.rsqrt(v.square().mean(-1, keepdim=True) + cfg.norm_eps)
        m = (v @ self.fn.t()) * r
        pre, post, comb = sinkhorn_split(m, self.scale, self.base, cfg.hc_mult,
                                         cfg.hc_sinkhorn_iters, cfg.hc_eps)
        y = (pre.unsqueeze(-1) * X).sum(-2)
        return ctx.R(y), post, comb

    @staticmethod
    def post(o, R, post, comb, ctx):
        mixed = torch.einsum('btjk,btjd->btkd', comb, R)
        return ctx.R(post.unsqueeze(-1) * o.unsqueeze(-2) + mixed)


# ---------------------------------------------------------------------------------------------
# Compressor and indexer


class Compressor(nn.Module):
    def __init__(self, cfg, ratio, head_dim, rotate):
        super().__init__()
        self.cfg, self.ratio, self.d, self.rotate = cfg, ratio, head_dim, rotate
        self.overlap = ratio == 4
        coff = 2 if self.overlap else 1
        self.ape = nn.Parameter(torch.zeros(ratio, coff * head_dim))
        self.wkv = linear_param(coff * head_dim, cfg.dim)
        self.wgate = linear_param(coff * head_dim, cfg.dim, gain=0.1)
        self.norm = RMSNorm(head_dim, cfg.norm_eps)

    def forward(self, x, cos, sin, ctx):
        """x [B,T,D] (attn_norm output). Returns compressed entries [B, T//r, d] or None."""
        B, T, _ = x.shape
        r, d = self.ratio, self.d
        nb = T // r
        if nb == 0:
            return None
        xc = x[:, :nb * r]
        a = xc @ w_bf16(self.wkv, ctx).t()
        g = xc @ w_bf16(self.wgate, ctx).t()
        a = a.view(B, nb, r, -1)
        g = g.view(B, nb, r, -1) + self.ape
        if self.overlap:
            prev_a = F.pad(a[:, :-1, :, :d], (0, 0, 0, 0, 1, 0), value=0.0)
            prev_g = F.pad(g[:, :-1, :, :d], (0, 0, 0, 0, 1, 0), value=float('-inf'))
            a = torch.cat([prev_a, a[:, :, :, d:]], 2)
            g = torch.cat([prev_g, g[:, :, :, d:]], 2)
        u = (a * torch.softmax(g, 2)).sum(2)
        u = self.norm(ctx.R(u), ctx)
        u = apply_rope(u, cos[0:nb * r:r], sin[0:nb * r:r], ctx)
        if self.rotate:
            u = hadamard(u, ctx)
            u = ctx.R(Q.fp4_act(u))
        else:
            nope = d - self.cfg.rope_head_dim
            u = torch.cat([ctx.R(Q.act_quant(u[..., :nope], 64)), u[..., nope:]], -1)
        return u


_HAD = {}


def hadamard(x, ctx):
    n = x.shape[-1]
    if n not in _HAD:
        _HAD[n] = (Q.hadamard_matrix(n, torch.float32), Q.hadamard_matrix(n, torch.float64))
    h32, h64 = _HAD[n]
    scale = n ** -0.5
    if ctx.exact:
        return Q.bf16(((x.double() @ h64).float()) * torch.tensor(scale, dtype=torch.float32))
    return (x @ h32) * scale


class Indexer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        ih, ihd = cfg.index_n_heads, cfg.index_head_dim
        self.wq_b = linear_param(ih * ihd, cfg.q_lora_rank)
        self.weights_proj = linear_param(ih, cfg.dim)
        self.compressor = Compressor(cfg, 4, ihd, True)
        self.w_scale = ihd ** -0.5 * ih ** -0.5

    def scores(self, x, qr, cos, sin, ctx):
        """Index scores [B, T, nb] (causally masked with -inf)."""
        cfg = self.cfg
        B, T, _ = x.shape
        ih, ihd = cfg.index_n_heads, cfg.index_head_dim
        qi = lin8(qr, self.wq_b, ctx).view(B, T, ih, ihd)
        qi = apply_rope(qi, cos[:T, None], sin[:T, None], ctx)
        qi = hadamard(qi, ctx)
        qi = ctx.R(Q.fp4_act(qi))
        k = self.compressor(x, cos, sin, ctx)           # [B, nb, ihd]
        w = ctx.R(ctx.R(x @ w_bf16(self.weights_proj, ctx).t()) *
                  torch.tensor(self.w_scale, dtype=torch.float32))          # [B, T, ih]
        S = ctx.R(torch.einsum('bthd,bcd->bthc', qi, k))
        sc = ctx.R((ctx.R(torch.relu(S) * w.unsqueeze(-1))).sum(2))          # [B, T, nb]
        nb = k.shape[1]
        valid = torch.arange(nb)[None, :] < (torch.arange(1, T + 1) // 4)[:, None]
        return sc.masked_fill(~valid, float('-inf')), valid


# ---------------------------------------------------------------------------------------------
# Attention


class Attention(nn.Module):
    def __init__(self, cfg, layer_id):
        super().__init__()
        self.cfg, self.layer_id = cfg, layer_id
        self.ratio = cfg.compress_ratios[layer_id]
        H, HD, D = cfg.n_heads, cfg.head_dim, cfg.dim
        self.attn_sink = nn.Parameter(torch.zeros(H))
        self.wq_a = linear_param(cfg.q_lora_rank, D)
        self.q_norm = RMSNorm(cfg.q_lora_rank, cfg.norm_eps)
        self.wq_b = linear_param(H * HD, cfg.q_lora_rank)
        self.wkv = linear_param(HD, D)
        self.kv_norm = RMSNorm(HD, cfg.norm_eps)
        self.wo_a = linear_param(cfg.o_groups * cfg.o_lora_rank, H * HD // cfg.o_groups)
        self.wo_b = linear_param(D, cfg.o_groups * cfg.o_lora_rank, gain=0.5)
        self.compressor = Compressor(cfg, self.ratio, HD, False) if self.ratio else None
        self.indexer = Indexer(cfg) if self.ratio == 4 else None
        self.scale = HD ** -0.5
        self._rope = {}

    def rope(self, T):
        if T not in self._rope:
            self._rope[T] = rope_tables(self.cfg, self.ratio, max(T, 1))
        return self._rope[T]

    def forward(self, x, ctx):
        cfg = self.cfg
        B, T, _ = x.shape
        H, HD, rd, W = cfg.n_heads, cfg.head_dim, cfg.rope_head_dim, cfg.window_size
        cos, sin = self.rope(T)
        xq = Q.act_quant(x)
        qr = self.q_norm(lin8q(xq, self.wq_a, ctx), ctx)
        q = lin8(qr, self.wq_b, ctx).view(B, T, H, HD)
        if ctx.exact:
            sq = Q.bf16(q * q)
            ms = Q.bf16(sq.mean(-1, keepdim=True))
            t = Q.bf16(ms + cfg.norm_eps)
            rs = Q.bf16(1.0 / torch.sqrt(t))
            q = Q.bf16(q * rs)
        else:
            q = rms(q, cfg.norm_eps)
        q = apply_rope(q, cos[:, None], sin[:, None], ctx)
        kv = self.kv_norm(lin8q(xq, self.wkv, ctx), ctx)
        kv = apply_rope(kv, cos, sin, ctx)
        nope = HD - rd
        kv = torch.cat([ctx.R(Q.act_quant(kv[..., :nope], 64)), kv[..., nope:]], -1)

        pos = torch.arange(T)
        win_ok = (pos[None, :] <= pos[:, None]) & (pos[None, :] > pos[:, None] - W)   # [T, T]
        keys = kv
        mask = win_ok.unsqueeze(0).expand(B, T, T)
        idx_sel = None
        if self.ratio:
            ckv = self.compressor(x, cos, sin, ctx)
            if ckv is not None:
                nb = ckv.shape[1]
                valid = torch.arange(nb)[None, :] < (torch.arange(1, T + 1) // self.ratio)[:, None]
                cmask = valid.unsqueeze(0).expand(B, T, nb)
                if self.indexer is not None:
                    xi, qri = (x.detach(), qr.detach()) if not ctx.exact else (x, qr)
                    isc, _ = self.indexer.scores(xi, qri, cos, sin, ctx)
                    k = min(cfg.index_topk, nb)
                    if ctx.sparse or ctx.exact:
                        top = topk_lower_index(isc.detach(), k)
                        sel = torch.zeros(B, T, nb, dtype=torch.bool).scatter_(-1, top, True)
                        cmask = cmask & sel
                    idx_sel = (isc, cmask)
                keys = torch.cat([kv, ckv], 1)
                mask = torch.cat([mask, cmask], -1)
        s = torch.einsum('bthd,bnd->bhtn', q, keys) * self.scale
        s = s.masked_fill(~mask.unsqueeze(1), float('-inf'))
        sink = self.attn_sink.view(1, H, 1, 1).expand(B, H, T, 1)
        if ctx.exact:
            m = s.amax(-1, keepdim=True)
            e = torch.exp(s - m)
            den = e.sum(-1, keepdim=True) + torch.exp(sink - m)
            o = torch.einsum('bhtn,bnd->bthd', Q.bf16(e), keys) / den.permute(0, 2, 1, 3)
        else:
            p = torch.softmax(torch.cat([s, sink], -1), -1)[..., :-1]
            o = torch.einsum('bhtn,bnd->bthd', p, keys)
        o = ctx.R(o)
        if idx_sel is not None and ctx.indexer_loss:
            with torch.no_grad():
                pc = (torch.exp(s[..., T:] - s.amax(-1, keepdim=True))
                      if ctx.exact else p[..., T:]).sum(1)        # [B, T, nb] over heads
                tgt = pc / pc.sum(-1, keepdim=True).clamp(min=1e-20)
            isc, cm = idx_sel
            logit = isc.masked_fill(~cm, float('-inf'))
            rows = cm.any(-1)
            lp = torch.log_softmax(logit[rows], -1).masked_fill(~cm[rows], 0.0)
            t = tgt[rows]
            kl = (t * (torch.log(t.clamp(min=1e-20)) - lp)).sum(-1).mean()
            ctx.idx_losses.append(kl)
        o = apply_rope(o, cos[:, None], sin[:, None], ctx, inverse=True)
        G = cfg.o_groups
        o = o.reshape(B, T, G, -1)
        wo_a = w_fp8(self.wo_a, ctx).view(G, cfg.o_lora_rank, -1)
        z = ctx.R(torch.einsum('btgd,grd->btgr', o, wo_a))
        return lin8(z.flatten(2), self.wo_b, ctx)


# ---------------------------------------------------------------------------------------------
# MoE


class MoE(nn.Module):
    def __init__(self, cfg, layer_id, gen):
        super().__init__()
        self.cfg, self.layer_id = cfg, layer_id
        E, D, I = cfg.n_routed_experts, cfg.dim, cfg.moe_inter_dim
        self.hash = layer_id < cfg.n_hash_layers
        self.gate_weight = nn.Parameter(torch.randn(E, D) * (1.0 / math.sqrt(D)))
        if self.hash:
            t = torch.stack([torch.randperm(E, generator=gen)[:cfg.n_activated_experts]
                             for _ in range(cfg.vocab_size)])
            self.register_buffer('tid2eid', t.to(torch.int64))
            self.gate_bias = None
        else:
            self.register_buffer('gate_bias', torch.zeros(E))
        # routed experts stacked: w1/w3 [E, I, D], w2 [E, D, I]
        self.w1 = nn.Parameter(torch.randn(E, I, D) / math.sqrt(D))
        self.w3 = nn.Parameter(torch.randn(E, I, D) / math.sqrt(D))
        self.w2 = nn.Parameter(torch.randn(E, D, I) * (0.5 / math.sqrt(I)))
        self.s_w1 = linear_param(I, D)
        self.s_w3 = linear_param(I, D)
        self.s_w2 = linear_param(D, I, gain=0.5)

    def swiglu(self, g, u):
        L = self.cfg.swiglu_limit
        if L > 0:
            u = torch.clamp(u, -L, L)
            g = torch.clamp(g, max=L)
        return F.silu(g) * u

    def forward(self, x, ids, ctx):
        cfg = self.cfg
        shape = x.shape
        x = x.reshape(-1, cfg.dim)
        ids = ids.reshape(-1)
        z = x @ w_bf16(self.gate_weight, ctx).t()
        s = torch.sqrt(F.softplus(z))
        if self.hash:
            idx = self.tid2eid[ids]
        else:
            idx = topk_lower_index(s.detach() + self.gate_bias, cfg.n_activated_experts)
            if not ctx.exact:
                ctx.loads[self.layer_id] = torch.bincount(idx.flatten(),
                                                          minlength=cfg.n_routed_experts)
        wts = s.gather(1, idx)
        wts = wts / wts.sum(-1, keepdim=True) * cfg.route_scale
        E, K = cfg.n_routed_experts, cfg.n_activated_experts
        w1 = w_fp4(self.w1, ctx).unbind(0)
        w3 = w_fp4(self.w3, ctx).unbind(0)
        w2 = w_fp4(self.w2, ctx).unbind(0)
        xq = Q.act_quant(x)
        flat = idx.reshape(-1)
        order = torch.sort(flat, stable=True).indices
        tok = order // K
        counts = torch.bincount(flat, minlength=E).tolist()
        xs = xq[tok]
        ws = wts.reshape(-1)[order].unsqueeze(-1)
        outs = []
        for e, (xe, we) in enumerate(zip(xs.split(counts), ws.split(counts))):
            if counts[e] == 0:
                continue
            g = ctx.R(xe @ w1[e].t())
            u = ctx.R(xe @ w3[e].t())
            h = self.swiglu(g, u) * we
            outs.append(lin4w(ctx.R(h), w2[e], ctx))
        y = torch.zeros(x.shape[0], cfg.dim).index_add(0, tok, torch.cat(outs))
        g = lin8q(xq, self.s_w1, ctx)
        u = lin8q(xq, self.s_w3, ctx)
        y = y + lin8(ctx.R(self.swiglu(g, u)), self.s_w2, ctx)
        return ctx.R(y).view(shape)


# ---------------------------------------------------------------------------------------------
# Blocks and model


class Block(nn.Module):
    def __init__(self, cfg, layer_id, gen):
        super().__init__()
        self.cfg = cfg
        self.attn = Attention(cfg, layer_id)
        self.ffn = MoE(cfg, layer_id, gen)
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.hc_attn = HC(cfg)
        self.hc_ffn = HC(cfg)

    def forward(self, X, ids, ctx):
        R = X
        y, post, comb = self.hc_attn.pre(X, ctx)
        X = HC.post(self.attn(self.attn_norm(y, ctx), ctx), R, post, comb, ctx)
        R = X
        y, post, comb = self.hc_ffn.pre(X, ctx)
        X = HC.post(self.ffn(self.ffn_norm(y, ctx), ids, ctx), R, post, comb, ctx)
        return X


class HCHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hc = cfg.hc_mult
        self.cfg = cfg
        self.fn = nn.Parameter(torch.randn(hc, hc * cfg.dim) * 0.002)
        self.base = nn.Parameter(torch.zeros(hc))
        self.scale = nn.Parameter(torch.ones(1))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, X, ctx):
        cfg = self.cfg
        v = X.flatten(-2)
        r = torch.rsqrt(v.square().mean(-1, keepdim=True) + cfg.norm_eps)
        m = (v @ self.fn.t()) * r
        pre = torch.sigmoid(m * self.scale + self.base) + cfg.hc_eps
        y = ctx.R((pre.unsqueeze(-1) * X).sum(-2))
        return self.norm(y, ctx)


class MTPBlock(Block):
    def __init__(self, cfg, layer_id, gen):
        super().__init__(cfg, layer_id, gen)
        D = cfg.dim
        self.e_proj = linear_param(D, D)
        self.h_proj = linear_param(D, D)
        self.enorm = RMSNorm(D, cfg.norm_eps)
        self.hnorm = RMSNorm(D, cfg.norm_eps)
        self.head_hc = HCHead(cfg)

    def forward_mtp(self, Xmain, emb_next, ids_next, ctx):
        e = self.enorm(emb_next, ctx)
        xh = self.hnorm(Xmain, ctx)
        X = ctx.R(lin8(e, self.e_proj, ctx).unsqueeze(-2) + lin8(xh, self.h_proj, ctx))
        X = Block.forward(self, X, ids_next, ctx)
        return self.head_hc(X, ctx)


class V4Model(nn.Module):
    def __init__(self, cfg, seed=0):
        super().__init__()
        self.cfg = cfg
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed + 1)
        self.embed = nn.Parameter(torch.randn(cfg.vocab_size, cfg.dim))
        self.layers = nn.ModuleList([Block(cfg, l, gen) for l in range(cfg.n_layers)])
        self.head_hc = HCHead(cfg)
        self.head = nn.Parameter(torch.randn(cfg.vocab_size, cfg.dim) * (1.0 / math.sqrt(cfg.dim)))
        self.mtp = nn.ModuleList([MTPBlock(cfg, cfg.n_layers + j, gen)
                                  for j in range(cfg.n_mtp_layers)])

    def embed_tokens(self, ids, ctx):
        return w_bf16(self.embed, ctx)[ids]

    def logits(self, y, ctx):
        return y @ w_bf16(self.head, ctx).t()

    def forward(self, ids, ctx, mtp=False):
        """ids [B, T] -> (main logits [B, T, V], mtp logits [B, T-1, V] or None).
        mtp logits at position i predict token i+2 from the state at i and token i+1."""
        h = self.embed_tokens(ids, ctx)
        X = h.unsqueeze(-2).expand(*h.shape[:-1], self.cfg.hc_mult, self.cfg.dim)
        for layer in self.layers:
            X = layer(X, ids, ctx)
        logits = self.logits(self.head_hc(X, ctx), ctx)
        mlog = None
        if mtp and self.cfg.n_mtp_layers:
            nxt = ids[:, 1:]
            y = self.mtp[0].forward_mtp(X[:, :-1], self.embed_tokens(nxt, ctx), nxt, ctx)
            mlog = self.logits(y, ctx)
        return logits, mlog

    def update_gate_bias(self, loads, rate):
        """Aux-loss-free balancing: bias += rate * sign(mean load - load)."""
        with torch.no_grad():
            for blk in list(self.layers) + list(self.mtp):
                lid = blk.ffn.layer_id
                if lid in loads and blk.ffn.gate_bias is not None:
                    ld = loads[lid].float()
                    blk.ffn.gate_bias += rate * torch.sign(ld.mean() - ld)
