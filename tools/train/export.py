#!/usr/bin/env python3
"""Exports a trained checkpoint (train.py's final.pt) in DeepSeek-V4's official on-disk format
and writes the PyTorch reference outputs that dsv4 is tested against.

    python3 tools/train/export.py --ckpt build/train/run/final.pt --out models/dsv4-tiny \
        --reference tests/data/dsv4_tiny_reference.json

Checkpoint layout (as the V4-Flash release; see v4-spec.md §2 and golden-a):
  * FP8 linears: `X.weight` F8_E4M3 [out, in] + `X.scale` F8_E8M0 [ceil(out/128), ceil(in/128)]
  * routed experts: `X.weight` I8 [out, in/2] (two e2m1 codes, even element in the low nibble)
    + `X.scale` F8_E8M0 [out, in/32]
  * BF16: embed, head, norms, gate.weight, compressor wkv/wgate, indexer weights_proj
  * F32: attn_sink, compressor ape, hc_*, gate.bias;  I64: gate.tid2eid
  * mtp.0.* without embed/head copies.
The values written are exactly the ones the `exact` forward of v4model.py uses, so the reference
numbers below describe this checkpoint.
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import setup_process, threads_arg  # noqa: E402

setup_process(threads_arg(sys.argv))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import quant as Q  # noqa: E402
from v4model import Ctx, V4Config, V4Model  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
BOS = 0

PROMPT_CANDIDATES = [
    "In the beginning",
    "And the LORD said unto Moses,",
    "And it came to pass, when",
    "Blessed is the man",
    "Then Jesus said unto them,",
    "And God said,",
    "The LORD is my shepherd;",
    "And he said unto them,",
    "Now the serpent was",
    "For God so loved the world,",
    "And Moses went up",
    "Hear, O Israel:",
]


# ---------------------------------------------------------------------------------------------
# safetensors writer


def write_safetensors(path, tensors):
    """tensors: name -> (dtype tag, shape, bytes)."""
    header, offset, blobs = {'__metadata__': {'format': 'pt'}}, 0, []
    for name in sorted(tensors):
        tag, shape, data = tensors[name]
        header[name] = {'dtype': tag, 'shape': list(shape), 'data_offsets': [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def t_bf16(x):
    b = x.detach().to(torch.float32).to(torch.bfloat16).view(torch.int16).numpy().tobytes()
    return ('BF16', tuple(x.shape), b)


def t_f32(x):
    return ('F32', tuple(x.shape), x.detach().to(torch.float32).numpy().tobytes())


def t_i64(x):
    return ('I64', tuple(x.shape), x.detach().to(torch.int64).numpy().tobytes())


def put_fp8(out, name, w):
    q, s = Q.fp8_weight_quant(w.detach().float())
    out[name + '.weight'] = ('F8_E4M3', tuple(q.shape), Q.e4m3_to_bytes(q).numpy().tobytes())
    out[name + '.scale'] = ('F8_E8M0', tuple(s.shape), Q.e8m0_bytes(s).numpy().tobytes())


def put_fp4(out, name, w):
    q, s = Q.fp4_weight_quant(w.detach().float())
    packed = Q.pack_e2m1(q)
    out[name + '.weight'] = ('I8', tuple(packed.shape), packed.numpy().tobytes())
    out[name + '.scale'] = ('F8_E8M0', tuple(s.shape), Q.e8m0_bytes(s).numpy().tobytes())


def put_block(out, p, blk, layer_id, cfg):
    out[p + 'hc_attn_fn'] = t_f32(blk.hc_attn.fn)
    out[p + 'hc_attn_base'] = t_f32(blk.hc_attn.base)
    out[p + 'hc_attn_scale'] = t_f32(blk.hc_attn.scale)
    out[p + 'hc_ffn_fn'] = t_f32(blk.hc_ffn.fn)
    out[p + 'hc_ffn_base'] = t_f32(blk.hc_ffn.base)
    out[p + 'hc_ffn_scale'] = t_f32(blk.hc_ffn.scale)
    out[p + 'attn_norm.weight'] = t_bf16(blk.attn_norm.weight)
    out[p + 'ffn_norm.weight'] = t_bf16(blk.ffn_norm.weight)
    a = blk.attn
    out[p + 'attn.attn_sink'] = t_f32(a.attn_sink)
    for n in ('wq_a', 'wq_b', 'wkv', 'wo_a', 'wo_b'):
        put_fp8(out, p + 'attn.' + n, getattr(a, n))
    out[p + 'attn.q_norm.weight'] = t_bf16(a.q_norm.weight)
    out[p + 'attn.kv_norm.weight'] = t_bf16(a.kv_norm.weight)

    def put_comp(prefix, c):
        out[prefix + 'ape'] = t_f32(c.ape)
        out[prefix + 'wkv.weight'] = t_bf16(c.wkv)
        out[prefix + 'wgate.weight'] = t_bf16(c.wgate)
        out[prefix + 'norm.weight'] = t_bf16(c.norm.weight)

    if a.compressor is not None:
        put_comp(p + 'attn.compressor.', a.compressor)
    if a.indexer is not None:
        put_fp8(out, p + 'attn.indexer.wq_b', a.indexer.wq_b)
        out[p + 'attn.indexer.weights_proj.weight'] = t_bf16(a.indexer.weights_proj)
        put_comp(p + 'attn.indexer.compressor.', a.indexer.compressor)
    m = blk.ffn
    out[p + 'ffn.gate.weight'] = t_bf16(m.gate_weight)
    if m.hash:
        out[p + 'ffn.gate.tid2eid'] = t_i64(m.tid2eid)
    else:
        out[p + 'ffn.gate.bias'] = t_f32(m.gate_bias)
    for e in range(cfg.n_routed_experts):
        for n in ('w1', 'w2', 'w3'):
            put_fp4(out, p + 'ffn.experts.%d.%s' % (e, n), getattr(m, n)[e])
    put_fp8(out, p + 'ffn.shared_experts.w1', m.s_w1)
    put_fp8(out, p + 'ffn.shared_experts.w2', m.s_w2)
    put_fp8(out, p + 'ffn.shared_experts.w3', m.s_w3)


def hf_config(cfg):
    c = {
        "architectures": ["DeepseekV4ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_id,
        "expert_dtype": "fp4",
        "hc_eps": cfg.hc_eps,
        "hc_mult": cfg.hc_mult,
        "hc_sinkhorn_iters": cfg.hc_sinkhorn_iters,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "hidden_size": cfg.dim,
        "index_head_dim": cfg.index_head_dim,
        "index_n_heads": cfg.index_n_heads,
        "index_topk": cfg.index_topk,
        "initializer_range": 0.02,
        "max_position_embeddings": cfg.max_position_embeddings,
        "model_type": "deepseek_v4",
        "moe_intermediate_size": cfg.moe_inter_dim,
        "n_routed_experts": cfg.n_routed_experts,
        "n_shared_experts": 1,
        "norm_topk_prob": True,
        "num_attention_heads": cfg.n_heads,
        "num_experts_per_tok": cfg.n_activated_experts,
        "num_hidden_layers": cfg.n_layers,
        "num_hash_layers": cfg.n_hash_layers,
        "num_key_value_heads": 1,
        "num_nextn_predict_layers": cfg.n_mtp_layers,
        "o_groups": cfg.o_groups,
        "o_lora_rank": cfg.o_lora_rank,
        "q_lora_rank": cfg.q_lora_rank,
        "qk_rope_head_dim": cfg.rope_head_dim,
        "quantization_config": {
            "activation_scheme": "dynamic",
            "fmt": "e4m3",
            "quant_method": "fp8",
            "scale_fmt": "ue8m0",
            "weight_block_size": [128, 128],
        },
        "rms_norm_eps": cfg.norm_eps,
        "rope_scaling": {
            "beta_fast": cfg.beta_fast,
            "beta_slow": cfg.beta_slow,
            "factor": cfg.rope_factor,
            "original_max_position_embeddings": cfg.original_seq_len,
            "type": "yarn",
        },
        "rope_theta": cfg.rope_theta,
        "routed_scaling_factor": cfg.route_scale,
        "scoring_func": "sqrtsoftplus",
        "sliding_window": cfg.window_size,
        "swiglu_limit": cfg.swiglu_limit,
        "tie_word_embeddings": False,
        "topk_method": "noaux_tc",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.57.1",
        "use_cache": True,
        "vocab_size": cfg.vocab_size,
        "compress_rope_theta": cfg.compress_rope_theta,
        "compress_ratios": list(cfg.compress_ratios),
    }
    if cfg.original_seq_len <= 0:
        del c["rope_scaling"]
    return c


def export_checkpoint(model, cfg, out_dir, tokenizer_path):
    os.makedirs(out_dir, exist_ok=True)
    out = {}
    out['embed.weight'] = t_bf16(model.embed)
    out['head.weight'] = t_bf16(model.head)
    out['norm.weight'] = t_bf16(model.head_hc.norm.weight)
    out['hc_head_fn'] = t_f32(model.head_hc.fn)
    out['hc_head_base'] = t_f32(model.head_hc.base)
    out['hc_head_scale'] = t_f32(model.head_hc.scale)
    for l, blk in enumerate(model.layers):
        put_block(out, 'layers.%d.' % l, blk, l, cfg)
    for j, blk in enumerate(model.mtp):
        p = 'mtp.%d.' % j
        put_block(out, p, blk, cfg.n_layers + j, cfg)
        put_fp8(out, p + 'e_proj', blk.e_proj)
        put_fp8(out, p + 'h_proj', blk.h_proj)
        out[p + 'enorm.weight'] = t_bf16(blk.enorm.weight)
        out[p + 'hnorm.weight'] = t_bf16(blk.hnorm.weight)
        out[p + 'norm.weight'] = t_bf16(blk.head_hc.norm.weight)
        out[p + 'hc_head_fn'] = t_f32(blk.head_hc.fn)
        out[p + 'hc_head_base'] = t_f32(blk.head_hc.base)
        out[p + 'hc_head_scale'] = t_f32(blk.head_hc.scale)
    for stale in os.listdir(out_dir):
        if stale.endswith('.safetensors') or stale == 'model.safetensors.index.json':
            os.remove(os.path.join(out_dir, stale))
    write_safetensors(os.path.join(out_dir, 'model.safetensors'), out)
    with open(os.path.join(out_dir, 'config.json'), 'w') as f:
        json.dump(hf_config(cfg), f, indent=2)
        f.write('\n')
    with open(os.path.join(out_dir, 'generation_config.json'), 'w') as f:
        json.dump({"_from_model_config": True, "bos_token_id": cfg.bos_token_id,
                   "eos_token_id": cfg.eos_token_id, "do_sample": True, "temperature": 1.0,
                   "top_p": 1.0, "transformers_version": "4.57.1"}, f, indent=2)
        f.write('\n')
    with open(os.path.join(out_dir, 'tokenizer_config.json'), 'w') as f:
        json.dump({"add_bos_token": False, "add_eos_token": False,
                   "bos_token": "<｜begin▁of▁sentence｜>", "clean_up_tokenization_spaces": False,
                   "eos_token": "<｜end▁of▁sentence｜>", "legacy": True,
                   "model_max_length": 1048576, "pad_token": "<｜end▁of▁sentence｜>",
                   "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": None},
                  f, indent=2, ensure_ascii=False)
        f.write('\n')
    if tokenizer_path:
        shutil.copyfile(tokenizer_path, os.path.join(out_dir, 'tokenizer.json'))
    size = sum(os.path.getsize(os.path.join(out_dir, n)) for n in os.listdir(out_dir))
    print('exported %d tensors to %s (%.2f MB total)' % (len(out), out_dir, size / 1e6))
    return size


# ---------------------------------------------------------------------------------------------
# Reference outputs (exact inference numerics)


def load_model(ckpt_path):
    st = torch.load(ckpt_path, map_location='cpu')
    cfg = V4Config(**st['cfg'])
    model = V4Model(cfg, seed=0)
    model.load_state_dict(st['model'])
    model.eval()
    return model, cfg, st


@torch.no_grad()
def window_nll(model, ctx, ids):
    x = torch.tensor(ids, dtype=torch.int64)[None]
    logits, _ = model(x, ctx)
    return F.cross_entropy(logits[0, :-1], x[0, 1:], reduction='sum').item(), x.shape[1] - 1


def heldout_windows(held, seq_len):
    n = seq_len - 1
    return [[BOS] + [int(t) for t in held[i:i + n]] for i in range(0, len(held) - 1, n)]


@torch.no_grad()
def greedy(model, ctx, prompt_ids, n):
    ids = list(prompt_ids)
    out, gaps = [], []
    for _ in range(n):
        logits, _ = model(torch.tensor(ids)[None], ctx)
        last = logits[0, -1]
        top2 = last.topk(2)
        tok = int(top2.indices[0])
        gaps.append(float(top2.values[0] - top2.values[1]))
        out.append(tok)
        ids.append(tok)
    return out, gaps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--ckpt', default=os.path.join(ROOT, 'build/train/run/final.pt'))
    ap.add_argument('--out', default=os.path.join(ROOT, 'models/dsv4-tiny'))
    ap.add_argument('--tokenizer', default=os.path.join(ROOT, 'build/train/tokenizer.json'))
    ap.add_argument('--data', default=os.path.join(ROOT, 'build/train/data'))
    ap.add_argument('--reference', default='')
    ap.add_argument('--seq-len', type=int, default=512)
    ap.add_argument('--ci-windows', type=int, default=8)
    ap.add_argument('--full-windows', type=int, default=-1, help='-1 = whole held-out split')
    ap.add_argument('--greedy-tokens', type=int, default=64)
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args()

    model, cfg, st = load_model(args.ckpt)
    export_checkpoint(model, cfg, args.out, args.tokenizer)
    if not args.reference:
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bpe import Tokenizer
    tok = Tokenizer.load(args.tokenizer)
    held = np.load(os.path.join(args.data, 'heldout.ids.npy')).astype(np.int64)
    wins = heldout_windows(held, args.seq_len)
    ctx = Ctx(exact=True)
    ci = wins[:args.ci_windows]
    nll_ci, n_ci, bytes_ci, per = 0.0, 0, 0, []
    for w in ci:
        s, n = window_nll(model, ctx, w)
        per.append(s / n)
        nll_ci += s
        n_ci += n
        bytes_ci += sum(len(tok.token_bytes(t)) for t in w[1:])
    print('CI windows: %d, nll/token %.4f, ppl %.3f' % (len(ci), nll_ci / n_ci, math.exp(nll_ci / n_ci)))
    full = wins if args.full_windows < 0 else wins[:args.full_windows]
    nll_f, n_f, bytes_f = nll_ci, n_ci, bytes_ci
    for w in full[len(ci):]:
        s, n = window_nll(model, ctx, w)
        nll_f += s
        n_f += n
        bytes_f += sum(len(tok.token_bytes(t)) for t in w[1:])
    bpb = nll_f / math.log(2) / bytes_f
    print('held-out: %d windows, %d tokens, %d bytes, nll/token %.4f, ppl %.3f, bpb %.4f' % (
        len(full), n_f, bytes_f, nll_f / n_f, math.exp(nll_f / n_f), bpb))
    # prompts: the 5 candidates whose greedy path has the largest smallest top-1/top-2 gap
    cands = []
    for text in PROMPT_CANDIDATES:
        pids = [BOS] + tok.encode(text)
        g, gaps = greedy(model, ctx, pids, args.greedy_tokens)
        cands.append((min(gaps), text, pids, g))
        print('  gap %.4f  %r -> %r' % (min(gaps), text, tok.decode(g)[:100]))
    cands.sort(key=lambda c: -c[0])
    chosen = sorted(cands[:5], key=lambda c: PROMPT_CANDIDATES.index(c[1]))
    ref = {
        "seq_len": args.seq_len,
        "heldout": {"windows": ci, "nll_sum": nll_ci, "n_predicted": n_ci,
                    "ppl": math.exp(nll_ci / n_ci), "bytes": bytes_ci},
        "heldout_full": {"ppl": math.exp(nll_f / n_f), "bpb": bpb, "n_windows": len(full),
                         "n_predicted": n_f, "bytes": bytes_f, "nll_sum": nll_f},
        "prompts": [{"text": t, "ids": p, "greedy": g, "min_top1_top2_gap": gap}
                    for gap, t, p, g in chosen],
        "model": {"ckpt_steps": st.get('steps_done'), "train_minutes": st.get('elapsed_s', 0) / 60},
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.reference)), exist_ok=True)
    with open(args.reference, 'w') as f:
        json.dump(ref, f, separators=(',', ':'))
        f.write('\n')
    print('wrote', args.reference)


if __name__ == '__main__':
    main()
