#!/usr/bin/env python3
"""Trains the default dsv4 model: a small DeepSeek-V4 (v4model.py) on the KJV corpus.

    python3 tools/train/train.py --out build/train/run [--steps N] [--minutes M] [--smoke]

Muon for the hidden matrices, AdamW for embeddings / head / norms / HC / sinks / ape / router,
FP4 (experts) and FP8 (other linears, activations, KV) fake quantisation with straight-through
gradients, indexer trained by KL to the main attention (dense warm-up, then sparse top-k),
aux-loss-free expert balancing (bias += rate * sign(mean load - load)), one MTP block
(loss weight --mtp-weight). Deterministic for a given seed and thread count.
Writes <out>/log.csv, <out>/config.json (V4Config), <out>/final.pt.
--smoke: tiny config, a few steps on a slice of the corpus, exits 1 unless the loss decreased.
"""
import argparse
import csv
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import setup_process, threads_arg  # noqa: E402

setup_process(threads_arg(sys.argv))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from muon import Muon  # noqa: E402
from v4model import Ctx, V4Config, V4Model  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
BOS = 0


def load_ids(data_dir, split):
    path = os.path.join(data_dir, split + '.ids.npy')
    if not os.path.exists(path):
        return None
    return np.load(path).astype(np.int64)


def split_params(model):
    """(muon params, adamw params with names) — Muon for 2-D/3-D hidden matrices."""
    muon_names = ('wq_a', 'wq_b', 'wkv', 'wo_a', 'wo_b', 'wgate', 'w1', 'w2', 'w3', 's_w1', 's_w2',
                  's_w3', 'e_proj', 'h_proj')
    muon, adam = [], []
    for n, p in model.named_parameters():
        leaf = n.split('.')[-1]
        if p.ndim >= 2 and leaf in muon_names:
            muon.append(p)
        else:
            adam.append(p)
    return muon, adam


def sample_batch(ids, batch, seq_len, rng):
    n = seq_len - 1
    offs = rng.integers(0, len(ids) - n, size=batch)
    x = np.stack([np.concatenate([[BOS], ids[o:o + n]]) for o in offs])
    return torch.from_numpy(x)


def loss_fn(model, x, ctx, mtp_weight):
    logits, mlog = model(x, ctx, mtp=mtp_weight > 0)
    V = logits.shape[-1]
    main = F.cross_entropy(logits[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))
    total = main
    mtp = torch.zeros(())
    if mlog is not None:
        mtp = F.cross_entropy(mlog[:, :-1].reshape(-1, V), x[:, 2:].reshape(-1))
        total = total + mtp_weight * mtp
    idx = sum(ctx.idx_losses) / len(ctx.idx_losses) if ctx.idx_losses else torch.zeros(())
    return total + idx, main, mtp, idx


@torch.no_grad()
def quick_eval(model, held, seq_len, n_windows):
    n = seq_len - 1
    tot, cnt = 0.0, 0
    for w in range(n_windows):
        seg = held[w * n:(w + 1) * n]
        if len(seg) < 2:
            break
        x = torch.from_numpy(np.concatenate([[BOS], seg]))[None]
        logits, _ = model(x, Ctx(exact=False, sparse=True))
        tot += F.cross_entropy(logits[0, :-1], x[0, 1:], reduction='sum').item()
        cnt += x.shape[1] - 1
    return tot / max(cnt, 1)


def lr_factor(step, total, warmup):
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=os.path.join(ROOT, 'build/train/run'))
    ap.add_argument('--data', default=os.path.join(ROOT, 'build/train/data'))
    ap.add_argument('--steps', type=int, default=540)
    ap.add_argument('--minutes', type=float, default=0.0, help='hard wall-clock cap (0 = none)')
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--seq-len', type=int, default=512)
    ap.add_argument('--seed', type=int, default=1234)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--lr-muon', type=float, default=0.02)
    ap.add_argument('--lr-adam', type=float, default=3e-3)
    ap.add_argument('--warmup', type=int, default=20)
    ap.add_argument('--idx-warmup', type=int, default=30, help='steps of dense indexer warm-up')
    ap.add_argument('--mtp-weight', type=float, default=0.3)
    ap.add_argument('--bias-rate', type=float, default=1e-3)
    ap.add_argument('--eval-every', type=int, default=50)
    ap.add_argument('--smoke', action='store_true')
    args = ap.parse_args()

    cfg = V4Config()
    if args.smoke:
        cfg = V4Config(dim=128, n_layers=2, n_heads=2, q_lora_rank=128, o_groups=1,
                       o_lora_rank=128, n_routed_experts=4, moe_inter_dim=128,
                       compress_ratios=[4, 128, 0], index_n_heads=2, index_topk=4)
        args.steps, args.batch, args.seq_len = 12, 2, 256
        args.warmup, args.idx_warmup, args.eval_every = 3, 4, 0
        args.lr_muon, args.lr_adam = 0.03, 5e-3
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    train = load_ids(args.data, 'train')
    held = load_ids(args.data, 'heldout')
    if train is None:
        if not args.smoke:
            sys.exit('no %s/train.ids.npy: run corpus.py and bpe.py first' % args.data)
        # CI without the corpus: a deterministic synthetic stream with learnable structure.
        g = np.random.default_rng(7)
        base = g.integers(16, cfg.vocab_size, size=97)
        train = np.tile(base, 400)
        held = train[:4000]
        print('smoke: corpus not found, using a synthetic token stream')
    if args.smoke:
        train = train[:200_000]

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'config.json'), 'w') as f:
        json.dump(dict(cfg.to_dict(), train_args=vars(args)), f, indent=1)

    model = V4Model(cfg, seed=args.seed)
    muon_p, adam_p = split_params(model)
    opt_m = Muon(muon_p, lr=args.lr_muon, momentum=0.95)
    opt_a = torch.optim.AdamW(adam_p, lr=args.lr_adam, betas=(0.9, 0.95), eps=1e-8,
                              weight_decay=0.0)
    n_params = sum(p.numel() for p in model.parameters())
    print('params %.2fM (muon %.2fM), steps %d x %d x %d tokens, threads %d' % (
        n_params / 1e6, sum(p.numel() for p in muon_p) / 1e6, args.steps, args.batch,
        args.seq_len, torch.get_num_threads()), flush=True)

    log_path = os.path.join(args.out, 'log.csv')
    logf = open(log_path, 'w', newline='')
    logw = csv.writer(logf)
    logw.writerow(['step', 'elapsed_s', 'lr_factor', 'loss', 'main', 'mtp', 'indexer_kl',
                   'tok_per_s', 'max_load_frac', 'heldout_nll'])
    t_start = time.time()
    first, last = [], []
    for step in range(args.steps):
        f = lr_factor(step, args.steps, args.warmup)
        for g in opt_m.param_groups:
            g['lr'] = args.lr_muon * f
        for g in opt_a.param_groups:
            g['lr'] = args.lr_adam * f
        x = sample_batch(train, args.batch, args.seq_len, rng)
        ctx = Ctx(exact=False, sparse=step >= args.idx_warmup, indexer_loss=True)
        t0 = time.time()
        loss, main_l, mtp_l, idx_l = loss_fn(model, x, ctx, args.mtp_weight)
        opt_m.zero_grad(set_to_none=True)
        opt_a.zero_grad(set_to_none=True)
        loss.backward()
        opt_m.step()
        opt_a.step()
        model.update_gate_bias(ctx.loads, args.bias_rate)
        dt = time.time() - t0
        maxload = max((ld.max().item() / max(ld.sum().item(), 1) for ld in ctx.loads.values()),
                      default=0.0)
        held_nll = ''
        if held is not None and args.eval_every and ((step + 1) % args.eval_every == 0
                                                     or step + 1 == args.steps):
            held_nll = '%.4f' % quick_eval(model, held, args.seq_len, 4)
        logw.writerow([step, '%.1f' % (time.time() - t_start), '%.4f' % f, '%.4f' % loss.item(),
                       '%.4f' % main_l.item(), '%.4f' % mtp_l.item(), '%.4f' % float(idx_l),
                       '%.0f' % (x.numel() / dt), '%.3f' % maxload, held_nll])
        logf.flush()
        print('step %4d  loss %.4f  main %.4f  mtp %.4f  idx %.4f  %.0f tok/s %s' % (
            step, loss.item(), main_l.item(), mtp_l.item(), float(idx_l), x.numel() / dt,
            ('held %s' % held_nll) if held_nll else ''), flush=True)
        if step < 3:
            first.append(main_l.item())
        last.append(main_l.item())
        if args.minutes and time.time() - t_start > args.minutes * 60:
            print('time cap reached after %d steps' % (step + 1))
            break
    logf.close()
    state = {'cfg': cfg.to_dict(), 'model': model.state_dict(), 'steps_done': step + 1,
             'args': vars(args), 'elapsed_s': time.time() - t_start}
    torch.save(state, os.path.join(args.out, 'final.pt'))
    print('saved %s (%.1f min)' % (os.path.join(args.out, 'final.pt'),
                                   (time.time() - t_start) / 60))
    if args.smoke:
        a, b = float(np.mean(first)), float(np.mean(last[-3:]))
        ok = b < a - 0.05
        print('smoke: first-steps loss %.4f, last-steps loss %.4f -> %s' % (a, b,
                                                                              'OK' if ok else 'FAIL'))
        sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
