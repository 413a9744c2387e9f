"""Exact FP8 (e4m3) / FP4 (e2m1) / e8m0 rounding helpers and fake-quant ops for DeepSeek-V4.

Everything works on fp32 tensors holding the values; the formats are simulated exactly:
  * e8m0 scales are powers of two 2^ceil(log2(amax / qmax)) computed from the fp32 bits
    (so amax == qmax * 2^k gives 2^k, as the reference's fast_round_scale does);
  * e4m3fn round-to-nearest-even with saturation at 448, subnormals down to 2^-9;
  * e2m1 round-to-nearest-even onto {0, .5, 1, 1.5, 2, 3, 4, 6}.
The `ste` variants return x + (q(x) - x).detach(), i.e. the straight-through estimator used for
quantisation-aware training; in no-grad evaluation they are plain q(x).
"""
import torch

FP8_MAX = 448.0
FP4_MAX = 6.0


def bf16(x):
    """Round fp32 -> bf16 (RNE) -> fp32."""
    return x.to(torch.bfloat16).to(torch.float32)


def pow2_from_exp(e):
    """2**e for an int32 tensor e in [-126, 127], built from the float bits (exact)."""
    return ((e + 127).to(torch.int32) << 23).view(torch.float32)


def ceil_pow2_scale(amax, inv_qmax):
    """2^ceil(log2(f32(amax * f32(inv_qmax)))) for positive fp32 amax, exactly as ue8m0 rounding."""
    y = amax * torch.tensor(inv_qmax, dtype=torch.float32)
    bits = y.view(torch.int32)
    e = ((bits >> 23) & 0xFF) - 127
    e = e + ((bits & 0x7FFFFF) != 0).to(torch.int32)
    return pow2_from_exp(e.clamp(-126, 127))


def round_e4m3(x):
    """Round to the nearest e4m3fn value (RNE). x fp32 with |x| <= 448 (callers scale first).
    Normals: round the fp32 mantissa to 3 bits with integer RNE; below 2^-6 the quantum is 2^-9,
    done by the fp32 magic-number addition (exact RNE)."""
    b = x.contiguous().view(torch.int32)
    r = ((b + (0x7FFFF + ((b >> 20) & 1))) & -1048576).view(torch.float32)
    sub = (x + 24576.0) - 24576.0
    return torch.where(x.abs() < 2.0 ** -6, sub, r).clamp(-FP8_MAX, FP8_MAX)


def round_e2m1(x):
    """Round to the nearest e2m1 value (RNE, saturating at +-6). x fp32 with |x| <= 6."""
    b = x.contiguous().view(torch.int32)
    r = ((b + (0x1FFFFF + ((b >> 22) & 1))) & -4194304).view(torch.float32)
    sub = (x + 6291456.0) - 6291456.0
    return torch.where(x.abs() < 1.0, sub, r).clamp(-FP4_MAX, FP4_MAX)


def _blocked_last(x, block):
    shp = x.shape
    assert shp[-1] % block == 0, (shp, block)
    return x.reshape(*shp[:-1], shp[-1] // block, block)


def act_quant_q(x, block=128):
    """Activation FP8 quantisation per `block` along the last dim: returns dequantised values."""
    xb = _blocked_last(x, block)
    amax = xb.abs().amax(-1, keepdim=True).clamp(min=1e-4)
    s = ceil_pow2_scale(amax, 1.0 / FP8_MAX)
    q = round_e4m3(xb * (1.0 / s)) * s
    return q.reshape(x.shape)


def fp4_act_q(x, block=32):
    """FP4 simulation per `block` along the last dim (indexer q / keys)."""
    xb = _blocked_last(x, block)
    amax = xb.abs().amax(-1, keepdim=True).clamp(min=FP4_MAX * 2.0 ** -126)
    s = ceil_pow2_scale(amax, 1.0 / FP4_MAX)
    q = round_e2m1(xb * (1.0 / s)) * s
    return q.reshape(x.shape)


def ste(x, q):
    return x + (q - x).detach() if x.requires_grad else q


def act_quant(x, block=128):
    with torch.no_grad():
        q = act_quant_q(x.detach(), block)
    return ste(x, q)


def fp4_act(x, block=32):
    with torch.no_grad():
        q = fp4_act_q(x.detach(), block)
    return ste(x, q)


# ---------------------------------------------------------------------------------------------
# Weights


def fp8_weight_quant(w):
    """128x128 block FP8 quantisation. Returns (codes as e4m3 values fp32 [out,in], scales fp32
    [ceil(out/128), ceil(in/128)]). Partial tiles are handled by zero padding."""
    out_f, in_f = w.shape
    bo, bi = (out_f + 127) // 128, (in_f + 127) // 128
    wp = torch.zeros(bo * 128, bi * 128, dtype=torch.float32)
    wp[:out_f, :in_f] = w
    blocks = wp.view(bo, 128, bi, 128)
    amax = blocks.abs().amax(dim=(1, 3), keepdim=True).clamp(min=2.0 ** -100)
    s = ceil_pow2_scale(amax, 1.0 / FP8_MAX)
    q = round_e4m3(blocks * (1.0 / s))
    q = q.view(bo * 128, bi * 128)[:out_f, :in_f].contiguous()
    return q, s.view(bo, bi).contiguous()


def fp8_weight_dq(w):
    q, s = fp8_weight_quant(w)
    s_full = s.repeat_interleave(128, 0)[: w.shape[0]].repeat_interleave(128, 1)[:, : w.shape[1]]
    return q * s_full


def fp4_weight_quant(w):
    """Per-32 (along the input dim) FP4 quantisation of [..., out, in] weights.
    Returns (e2m1 values fp32 same shape, scales fp32 [..., out, in/32])."""
    wb = _blocked_last(w, 32)
    amax = wb.abs().amax(-1, keepdim=True).clamp(min=FP4_MAX * 2.0 ** -126)
    s = ceil_pow2_scale(amax, 1.0 / FP4_MAX)
    q = round_e2m1(wb * (1.0 / s))
    return q.reshape(w.shape), s.squeeze(-1)


def fp4_weight_dq(w):
    wb = _blocked_last(w, 32)
    amax = wb.abs().amax(-1, keepdim=True).clamp(min=FP4_MAX * 2.0 ** -126)
    s = ceil_pow2_scale(amax, 1.0 / FP4_MAX)
    return (round_e2m1(wb * (1.0 / s)) * s).reshape(w.shape)


def fp8_weight_ste(w):
    with torch.no_grad():
        q = fp8_weight_dq(w.detach())
    return ste(w, q)


def fp4_weight_ste(w):
    with torch.no_grad():
        q = fp4_weight_dq(w.detach())
    return ste(w, q)


# ---------------------------------------------------------------------------------------------
# Byte encodings for export


def e4m3_to_bytes(q):
    """e4m3 values (exactly on the grid) -> uint8 codes."""
    q = q.to(torch.float32)
    sign = (q < 0) | ((q == 0) & (torch.signbit(q)))
    a = q.abs()
    _, ex = torch.frexp(a)
    e = ex.to(torch.int32) - 1                 # a = 1.m * 2^e
    normal = a >= 2.0 ** -6
    eb = torch.where(normal, e + 7, torch.zeros_like(e))
    mant = torch.where(normal, a / pow2_from_exp(e.clamp(-126, 127)) - 1.0, a / 2.0 ** -9 / 8.0)
    mb = torch.round(mant * 8).to(torch.int32)
    code = (eb << 3) | mb
    code = torch.where(a == 0, torch.zeros_like(code), code)
    code = code | (sign.to(torch.int32) << 7)
    return code.to(torch.uint8)


_E2M1_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]


def e2m1_to_nibbles(q):
    a = q.abs()
    code = torch.zeros_like(a, dtype=torch.int32)
    for i, v in enumerate(_E2M1_VALUES):
        code = torch.where(a == v, torch.full_like(code, i), code)
    code = code | ((q < 0).to(torch.int32) << 3)
    return code


def pack_e2m1(q):
    """[out, in] e2m1 values -> [out, in/2] uint8, element 2j in the low nibble."""
    n = e2m1_to_nibbles(q)
    lo, hi = n[..., 0::2], n[..., 1::2]
    return (lo | (hi << 4)).to(torch.uint8)


def e8m0_bytes(s):
    """power-of-two fp32 scales -> e8m0 bytes."""
    bits = s.to(torch.float32).view(torch.int32)
    return ((bits >> 23) & 0xFF).to(torch.uint8)


def decode_e4m3(b):
    b = b.to(torch.int32)
    s = (b >> 7) & 1
    e = (b >> 3) & 15
    m = (b & 7).to(torch.float32)
    v = torch.where(e == 0, m / 8 * 2.0 ** -6, (1 + m / 8) * pow2_from_exp((e - 7).clamp(-126, 127)))
    return torch.where(s == 1, -v, v)


def hadamard_matrix(n=128, dtype=torch.float32):
    h = torch.ones(1, 1, dtype=dtype)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h
