#include "golden_runner.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "io/safetensors.hpp"
#include "kernels/kernel_table.hpp"
#include "model/attention.hpp"
#include "model/config.hpp"
#include "model/forward.hpp"
#include "model/hyper_connections.hpp"
#include "model/moe.hpp"
#include "model/weights.hpp"

namespace dsv4::golden {
namespace {

namespace fs = std::filesystem;

// ---- golden.safetensors access ---------------------------------------------------------

class Golden {
  public:
    explicit Golden(io::SafetensorsFile f) : f_(std::move(f)) {}
    bool                 has(const std::string & n) const { return f_.find(n) != nullptr; }
    std::vector<int64_t> shape(const std::string & n) const {
        const io::TensorInfo * t = f_.find(n);
        return t ? t->shape : std::vector<int64_t>{};
    }
    std::vector<float> f32(const std::string & n) const {
        const io::TensorInfo * t = f_.find(n);
        std::vector<float>     v;
        if (t && t->dtype == io::DType::F32) {
            v.resize(static_cast<size_t>(t->numel()));
            std::memcpy(v.data(), t->data, t->nbytes);
        }
        return v;
    }
    std::vector<int32_t> i32(const std::string & n) const {
        const io::TensorInfo * t = f_.find(n);
        std::vector<int32_t>   v;
        if (t && t->dtype == io::DType::I32) {
            v.resize(static_cast<size_t>(t->numel()));
            std::memcpy(v.data(), t->data, t->nbytes);
        }
        return v;
    }

  private:
    io::SafetensorsFile f_;
};

// ---- metrics -------------------------------------------------------------------------------

std::string fmt(const char * f, double a, double b = 0, double c = 0, double d = 0) {
    char buf[256];
    std::snprintf(buf, sizeof buf, f, a, b, c, d);
    return buf;
}

struct Diff {
    double rel_rms = 0, max_abs = 0;
};
Diff diff(const float * got, const float * want, int64_t n) {
    double num = 0, den = 0, mx = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double d = double(got[i]) - want[i];
        num += d * d;
        den += double(want[i]) * want[i];
        mx = std::max(mx, std::fabs(d));
    }
    return {den > 0 ? std::sqrt(num / den) : std::sqrt(num), mx};
}

int64_t argmax(const float * v, int64_t n) {
    int64_t b = 0;
    for (int64_t i = 1; i < n; ++i)
        if (v[i] > v[b]) b = i;
    return b;
}
double top_gap(const float * v, int64_t n) {
    float a = -INFINITY, b = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
        if (v[i] > a)
            b = a, a = v[i];
        else if (v[i] > b)
            b = v[i];
    }
    return double(a) - b;
}

// End-to-end logits (golden README): every row's max |d| <= 3.0, median row max <= 0.6,
// argmax agreement >= 97 %, and exact argmax wherever the golden top-1/top-2 gap is >= 4.
// MTP rows (median_rule = false): max |d| <= 3.0 and the gap rule only — the reference's own
// accumulation noise on MTP is larger (golden README: 0.6 to 1.1 between fp32 and fp64 runs).
Check logits_check(const std::string & name, const std::vector<float> & got,
                   const std::vector<float> & want, int64_t V, bool median_rule = true) {
    const int64_t       rows = V ? static_cast<int64_t>(want.size()) / V : 0;
    std::vector<double> row_max;
    int64_t             agree = 0, gap_viol = 0;
    for (int64_t r = 0; r < rows; ++r) {
        const float * g = got.data() + r * V;
        const float * w = want.data() + r * V;
        row_max.push_back(diff(g, w, V).max_abs);
        const bool same = argmax(g, V) == argmax(w, V);
        agree += same;
        if (!same && top_gap(w, V) >= 4.0) ++gap_viol;
    }
    std::vector<double> s = row_max;
    std::sort(s.begin(), s.end());
    const double median = s.empty() ? 0 : s[s.size() / 2];
    const double worst  = s.empty() ? 0 : s.back();
    const double frac   = rows ? double(agree) / rows : 0;
    Check        c;
    c.name = name;
    c.pass = rows > 0 && worst <= 3.0 && (!median_rule || median <= 0.6) &&
             (rows == 1 ? true : frac >= 0.97) && gap_viol == 0;
    c.detail = fmt(median_rule ? "rows %.0f: max row |d| %.4f (tol 3.0), median %.4f (tol 0.6), "
                                 "argmax agree %.4f (tol 0.97)"
                               : "rows %.0f: max row |d| %.4f (tol 3.0), median %.4f (no tol), "
                                 "argmax agree %.4f",
                   double(rows), worst, median, frac) +
               fmt(", gap>=4 argmax misses %.0f (tol 0)", double(gap_viol));
    return c;
}

Check sublayer_check(const std::string & name, const Diff & d, double rel_tol, double abs_tol) {
    Check c;
    c.name   = name;
    c.pass   = d.rel_rms <= rel_tol && d.max_abs <= abs_tol;
    c.value  = d.rel_rms;
    c.detail = fmt("rel RMS %.3g (tol %.3g), max |d| %.3g (tol %.3g)", d.rel_rms, rel_tol,
                   d.max_abs, abs_tol);
    return c;
}

// ---- a probe collecting what the checks need -------------------------------------------------

struct Recorder : model::ForwardProbe {
    struct Routing {
        int64_t              k = 0, E = 0;
        std::vector<int32_t> ids;     // [rows, k]
        std::vector<float>   wts;     // [rows, k]
        std::vector<float>   biased;  // [rows, E] (empty for hash blocks)
    };
    std::map<std::pair<int, bool>, std::map<int64_t, std::vector<float>>> comp;
    std::map<int, std::map<int64_t, std::vector<int32_t>>>                topk;
    std::map<int, std::map<int64_t, std::vector<float>>>                  topk_scores;
    std::map<int, Routing>                                                route;
    bool keep_scores = false;  // topk_scores costs n_blocks floats per token: decode only
    void compressed(int layer, bool indexer, int64_t block, const float * row, int64_t d) override {
        comp[{layer, indexer}][block].assign(row, row + d);
    }
    void indexer_topk(int layer, int64_t pos, const int32_t * b, int64_t n, const float * sc,
                      int64_t nb) override {
        topk[layer][pos].assign(b, b + n);
        if (keep_scores) topk_scores[layer][pos].assign(sc, sc + nb);
    }
    void routing(int layer, const int32_t * ids, const float * w, int64_t T, int64_t k,
                 const float * biased, int64_t E) override {
        Routing & r = route[layer];
        r.k = k, r.E = E;
        r.ids.insert(r.ids.end(), ids, ids + T * k);
        r.wts.insert(r.wts.end(), w, w + T * k);
        if (biased) r.biased.insert(r.biased.end(), biased, biased + T * E);
    }
};

// Rows of the golden index scores [rows, nblk] with an exact tie at the top-k boundary.
std::set<int64_t> tie_rows(const std::vector<float> & scores, int64_t rows, int64_t nblk,
                           int64_t k) {
    std::set<int64_t> out;
    for (int64_t r = 0; r < rows; ++r) {
        std::vector<float> v;
        for (int64_t c = 0; c < nblk; ++c)
            if (std::isfinite(scores[r * nblk + c])) v.push_back(scores[r * nblk + c]);
        if (static_cast<int64_t>(v.size()) <= k) continue;
        std::sort(v.begin(), v.end(), std::greater<float>());
        if (v[k - 1] == v[k]) out.insert(r);
    }
    return out;
}

// ---- teacher-forced decode intermediates ---------------------------------------------------
//
// The decode steps run on the state our own end-to-end prefill left behind, so their inputs
// carry the noise a whole forward pass accumulates (fp32 summation order, then bf16 and FP8/FP4
// re-rounding that turns one-ulp differences into 6–25 % jumps of single elements). The README's
// sublayer tolerances assume the reference's own inputs and cannot apply. Instead, the same
// intermediates of the end-to-end prefill (recorded in the same run and compared with the
// reference's prefill tensors) measure that noise — the calibration — and each decode check
// allows what that noise explains, and nothing a decode-specific error would add (wrong state
// across the prefill/decode boundary, ring wrap, compression during decode, RoPE positions:
// such errors give deviations of order 1, see the seam tests):
//  * continuous values (compressed rows, h_final): rel RMS <= max(README tol, 2 × prefill's).
//    Decode tokens see the prefill's noise through the cache plus their own of the same size,
//    i.e. about √2 × for independent noise; 2 leaves room for the sampling spread of few rows.
//  * discrete choices: exact where the margin is clear. A score the reference computed differs
//    from ours by at most δ, the largest deviation of the same scores in the prefill; a pair
//    can swap order only if our scores are within 2δ. So an expert set / top-k set may differ
//    only by entries within 2δ of our own selection boundary; hash routing must be exact.
//  * routing weights on agreeing rows: rel diff <= max(1e-5, 3 × prefill's largest). A maximum
//    over rows is a tail statistic: 2 for the decode noise (up to ~2 × the prefill's on golden-a:
//    the indexer swaps 9.3 % of its decode selections against 5.3 % in the prefill) times 1.5
//    for the spread of the largest of 120 against 300 draws.

struct Calibration {
    std::map<std::pair<int, bool>, double> comp_rel;          // compressed rows: rel RMS
    std::map<int, double>                  gate_dev;          // biased gate scores: max |d|
    std::map<int, double>                  gate_wrel;         // routing weights: max rel diff
    std::map<int, double>                  index_dev;         // indexer scores: max |d| (finite)
    double                                 h_final_rel = -1;  // at the probe positions
};

// Max relative weight difference on the rows whose expert sets agree (ids [rows, k]).
double weight_rel_diff(const std::vector<int32_t> & ids, const std::vector<float> & w,
                       const std::vector<int32_t> & wi, const std::vector<float> & ww, int64_t rows,
                       int64_t k) {
    double mx = 0;
    for (int64_t t = 0; t < rows; ++t) {
        const std::set<int32_t> a(ids.begin() + t * k, ids.begin() + (t + 1) * k);
        const std::set<int32_t> b(wi.begin() + t * k, wi.begin() + (t + 1) * k);
        if (a != b) continue;
        for (int64_t j = 0; j < k; ++j)
            for (int64_t jj = 0; jj < k; ++jj)
                if (ids[static_cast<size_t>(t * k + j)] == wi[static_cast<size_t>(t * k + jj)]) {
                    const double w0 = ww[static_cast<size_t>(t * k + jj)];
                    mx = std::max(mx, std::fabs(w[static_cast<size_t>(t * k + j)] - w0) /
                                          std::max(std::fabs(w0), 1e-30));
                }
    }
    return mx;
}

Calibration calibrate(const Golden & g, const model::ModelConfig & c, const Recorder & pre,
                      const std::vector<float> & h, int64_t P) {
    Calibration cal;
    for (const auto & [key, rows] : pre.comp) {
        const std::string n = "prefill.L" + std::to_string(key.first) +
                              (key.second ? ".indexer.compressor.kv" : ".compressor.kv");
        const auto sh = g.shape(n);
        if (sh.size() != 2 || rows.empty()) continue;
        const std::vector<float> want = g.f32(n);
        std::vector<float>       got, ref;
        for (const auto & [blk, row] : rows) {
            if (blk >= sh[0] || static_cast<int64_t>(row.size()) != sh[1]) continue;
            got.insert(got.end(), row.begin(), row.end());
            ref.insert(ref.end(), want.begin() + blk * sh[1], want.begin() + (blk + 1) * sh[1]);
        }
        if (!got.empty())
            cal.comp_rel[key] =
                diff(got.data(), ref.data(), static_cast<int64_t>(got.size())).rel_rms;
    }
    for (const auto & [L, r] : pre.route) {
        const std::string pf = "prefill.L" + std::to_string(L) + ".";
        const auto        wi = g.i32(pf + "gate.indices");
        const auto        ww = g.f32(pf + "gate.weights");
        if (static_cast<int64_t>(r.ids.size()) == P * r.k && wi.size() == r.ids.size() &&
            ww.size() == wi.size())
            cal.gate_wrel[L] = weight_rel_diff(r.ids, r.wts, wi, ww, P, r.k);
        const auto bs = g.f32(pf + "gate_biased.scores");
        if (!r.biased.empty() && bs.size() == r.biased.size()) {
            double mx = 0;
            for (size_t i = 0; i < bs.size(); ++i)
                mx = std::max(mx, std::fabs(double(r.biased[i]) - bs[i]));
            cal.gate_dev[L] = mx;
        }
    }
    for (const auto & [L, rows] : pre.topk_scores) {
        const std::string n  = "prefill.L" + std::to_string(L) + ".indexer.scores";
        const auto        sh = g.shape(n);
        if (sh.size() != 2 || sh[0] != P) continue;
        const std::vector<float> want = g.f32(n);
        double                   mx   = 0;
        for (const auto & [pos, sc] : rows)
            for (int64_t blk = 0; blk < static_cast<int64_t>(sc.size()) && blk < sh[1]; ++blk) {
                const float w = want[static_cast<size_t>(pos * sh[1] + blk)];
                if (std::isfinite(w))
                    mx = std::max(mx, std::fabs(double(sc[static_cast<size_t>(blk)]) - w));
            }
        cal.index_dev[L] = mx;
    }
    const auto    probes = g.i32("probe_positions");
    const auto    hp     = g.f32("prefill.h_final_probe");
    const int64_t hcd    = c.hc_dim();
    if (!probes.empty() &&
        static_cast<int64_t>(hp.size()) == static_cast<int64_t>(probes.size()) * hcd) {
        std::vector<float> got;
        for (int32_t p : probes)
            if (p >= 0 && p < P)
                got.insert(got.end(), h.begin() + p * hcd, h.begin() + (p + 1) * hcd);
        if (got.size() == hp.size())
            cal.h_final_rel = diff(got.data(), hp.data(), static_cast<int64_t>(got.size())).rel_rms;
    }
    return cal;
}

template <class Map, class Key>
double lookup(const Map & m, const Key & k, double fallback) {
    const auto it = m.find(k);
    return it == m.end() ? fallback : it->second;
}

Check hfinal_check(const std::vector<float> & got, const std::vector<float> & want,
                   const Calibration & cal) {
    Check ch;
    ch.name = "decode h_final (first step, MTP input)";
    if (got.size() != want.size()) {
        ch.detail = fmt("size %.0f, golden %.0f", double(got.size()), double(want.size()));
        return ch;
    }
    // No README tolerance and nothing to calibrate against: only a bound of order 1 is safe.
    const double tol = cal.h_final_rel >= 0 ? 2 * cal.h_final_rel : 0.5;
    const Diff   d   = diff(got.data(), want.data(), static_cast<int64_t>(got.size()));
    ch.pass          = d.rel_rms <= tol;
    ch.detail        = fmt("rel RMS %.3g (tol %.3g = 2 x end-to-end prefill %.3g), max |d| %.3g",
                           d.rel_rms, tol, cal.h_final_rel, d.max_abs);
    return ch;
}

// Expert routing of block L over the decode steps against decode.L<L>.gate.{indices,weights}.
Check decode_gate_check(int L, const Recorder::Routing & r, const std::vector<int32_t> & wi,
                        const std::vector<float> & ww, int64_t rows, const Calibration & cal) {
    Check ch;
    ch.name         = "decode L" + std::to_string(L) + " gate indices and weights";
    const int64_t k = r.k;
    if (k <= 0 || static_cast<int64_t>(r.ids.size()) != rows * k ||
        static_cast<int64_t>(wi.size()) != rows * k || ww.size() != wi.size()) {
        ch.detail = fmt("recorded %.0f routing entries, golden %.0f", double(r.ids.size()),
                        double(wi.size()));
        return ch;
    }
    const bool   hash    = r.biased.empty();
    const double margin  = hash ? 0.0 : 2 * lookup(cal.gate_dev, L, 0.0);
    const double w_tol   = std::max(1e-5, 3 * lookup(cal.gate_wrel, L, 0.0));
    int64_t      excused = 0, bad = 0;
    for (int64_t t = 0; t < rows; ++t) {
        const std::set<int32_t> a(r.ids.begin() + t * k, r.ids.begin() + (t + 1) * k);
        const std::set<int32_t> b(wi.begin() + t * k, wi.begin() + (t + 1) * k);
        if (a == b) continue;
        // Every expert in the symmetric difference must lie within `margin` of our boundary.
        const float *      bs = r.biased.data() + t * r.E;
        std::vector<float> v(bs, bs + (hash ? 0 : r.E));
        std::sort(v.begin(), v.end(), std::greater<float>());
        bool ok = !hash && static_cast<int64_t>(v.size()) > k;
        for (int32_t e : a)
            if (ok && !b.count(e))
                ok = e >= 0 && e < r.E && bs[e] - v[static_cast<size_t>(k)] <= margin;
        for (int32_t e : b)
            if (ok && !a.count(e))
                ok = e >= 0 && e < r.E && v[static_cast<size_t>(k - 1)] - bs[e] <= margin;
        (ok ? excused : bad) += 1;
    }
    const double wmax = weight_rel_diff(r.ids, r.wts, wi, ww, rows, k);
    ch.pass           = bad == 0 && wmax <= w_tol;
    ch.detail =
        fmt("%.0f of %.0f rows with different expert sets (tol 0; ", double(bad), double(rows)) +
        (hash ? std::string("hash routing: exact")
              : fmt("%.0f near-tie rows excused: within %.3g of our boundary", double(excused),
                    margin)) +
        fmt("), max rel weight diff %.3g (tol %.3g)", wmax, w_tol);
    return ch;
}

// Rows emitted by a compressor during decode against decode.L<L>.[indexer.]compressor.kv: the
// same emitting positions, the rows within the calibrated tolerance.
Check decode_compressed_check(const std::string & name, const Recorder & rec, int L, bool indexer,
                              int ratio, const std::vector<float> & want,
                              const std::vector<int32_t> & start_pos, int64_t d,
                              const Calibration & cal) {
    Check ch;
    ch.name = name;
    std::vector<float> got;
    int64_t            missing = 0;
    const auto         it      = rec.comp.find({L, indexer});
    const int64_t      emitted = it == rec.comp.end() ? 0 : static_cast<int64_t>(it->second.size());
    for (int32_t sp : start_pos) {
        const int64_t blk = sp / ratio;
        if (it == rec.comp.end() || !it->second.count(blk) || (sp + 1) % ratio != 0) {
            ++missing;
            got.insert(got.end(), static_cast<size_t>(d), 0.0f);
        } else {
            const auto & row = it->second.at(blk);
            got.insert(got.end(), row.begin(), row.end());
        }
    }
    const double pre = lookup(cal.comp_rel, std::make_pair(L, indexer), 0.0);
    const double tol = std::max(5e-3, 2 * pre);
    const Diff   df  = diff(got.data(), want.data(), static_cast<int64_t>(want.size()));
    ch.pass          = missing == 0 && emitted == static_cast<int64_t>(start_pos.size()) &&
              got.size() == want.size() && df.rel_rms <= tol;
    ch.detail = fmt("%.0f rows (we emitted %.0f, missing %.0f): rel RMS %.3g",
                    double(start_pos.size()), double(emitted), double(missing), df.rel_rms) +
                fmt(" (tol %.3g = max(5e-3, 2 x end-to-end prefill %.3g))", tol, pre);
    return ch;
}

// The indexer's decode selections against decode.L<L>.indexer.topk_idxs (entries off + block).
Check decode_topk_check(int L, const Recorder & rec, const std::vector<int32_t> & want,
                        int64_t rows, int64_t width, int64_t P, int64_t off, int64_t k,
                        const Calibration & cal) {
    Check ch;
    ch.name             = "decode L" + std::to_string(L) + " indexer top-k sets";
    const double margin = 2 * lookup(cal.index_dev, L, 0.0);
    const auto   tk     = rec.topk.find(L);
    const auto   ts     = rec.topk_scores.find(L);
    int64_t      bad = 0, excused = 0, missing = 0, moved = 0;
    for (int64_t t = 0; t < rows; ++t) {
        if (tk == rec.topk.end() || !tk->second.count(P + t) || ts == rec.topk_scores.end() ||
            !ts->second.count(P + t)) {
            ++missing;
            continue;
        }
        std::set<int32_t> w;
        for (int64_t j = 0; j < width; ++j) {
            const int32_t v = want[static_cast<size_t>(t * width + j)];
            if (v >= 0) w.insert(static_cast<int32_t>(v - off));
        }
        const std::set<int32_t> ours(tk->second.at(P + t).begin(), tk->second.at(P + t).end());
        if (w == ours) continue;
        const std::vector<float> & sc = ts->second.at(P + t);
        const int64_t              n  = static_cast<int64_t>(sc.size());
        std::vector<float>         v(sc);
        std::sort(v.begin(), v.end(), std::greater<float>());
        bool ok = static_cast<int64_t>(w.size()) == static_cast<int64_t>(ours.size());
        for (int32_t b : ours)
            if (ok && !w.count(b))
                ok = n > k && sc[static_cast<size_t>(b)] - v[static_cast<size_t>(k)] <= margin;
        for (int32_t b : w)
            if (ok && !ours.count(b))
                ok = b >= 0 && b < n &&
                     v[static_cast<size_t>(k - 1)] - sc[static_cast<size_t>(b)] <= margin;
        for (int32_t b : w) moved += !ours.count(b);
        (ok ? excused : bad) += 1;
    }
    ch.pass   = bad == 0 && missing == 0;
    ch.detail = fmt("%.0f of %.0f rows differ beyond the noise (tol 0; %.0f missing; ", double(bad),
                    double(rows), double(missing)) +
                fmt("%.0f rows excused, %.0f blocks swapped, all within %.3g of our boundary)",
                    double(excused), double(moved), margin);
    return ch;
}

}  // namespace

Result<Report> run(const std::string & dir, const Options & opt) {
    // ---- load ------------------------------------------------------------------------------
    auto cfg = model::load_config((fs::path(dir) / "config.json").string());
    if (!cfg.ok()) return cfg.status();
    auto store = io::TensorStore::open_dir(dir);
    if (!store.ok()) return store.status();
    auto weights = model::bind_weights(*cfg, *store, detail::Logger());
    if (!weights.ok()) return weights.status();
    auto gfile = io::SafetensorsFile::open((fs::path(dir) / "golden.safetensors").string());
    if (!gfile.ok()) return gfile.status();
    Golden g(std::move(gfile).value());

    simdjson::dom::parser  parser;
    simdjson::dom::element manifest;
    const std::string      mpath = (fs::path(dir) / "manifest.json").string();
    if (parser.load(mpath).get(manifest))
        return Status(Errc::invalid_model, mpath + ": cannot parse");
    std::vector<int>     recorded;
    simdjson::dom::array rl;
    if (!manifest["recorded_layers"].get(rl))
        for (auto v : rl) {
            int64_t x;
            if (!v.get(x)) recorded.push_back(static_cast<int>(x));
        }
    // Decode-time intermediates present: "decode.L<id>.<what>" names of the manifest's tensors.
    std::map<int, std::set<std::string>> decode_tensors;
    simdjson::dom::object                tensors;
    if (!manifest["tensors"].get(tensors))
        for (auto kv : tensors) {
            const std::string_view key = kv.key;
            if (key.substr(0, 8) != "decode.L") continue;
            const size_t dot = key.find('.', 8);
            if (dot == std::string_view::npos || dot == 8) continue;
            int L = 0;
            for (size_t i = 8; i < dot; ++i) {
                if (key[i] < '0' || key[i] > '9') {
                    L = -1;
                    break;
                }
                L = L * 10 + (key[i] - '0');
            }
            if (L >= 0 && g.has(std::string(key)))
                decode_tensors[L].insert(std::string(key.substr(dot + 1)));
        }

    auto arch = resolve_cpu_arch(opt.arch);
    if (!arch.ok()) return arch.status();
    const kernels::KernelTable & k =
        opt.table_override ? *opt.table_override : kernels::kernel_table(*arch);
    const model::ModelConfig & c = *cfg;
    model::Engine              eng(c, *weights, k, opt.n_threads);
    eng.set_numerics(opt.numerics);
    const int64_t V = c.vocab_size, hcd = c.hc_dim();

    const std::vector<int32_t> prompt = g.i32("prompt_ids");
    const std::vector<int32_t> dec    = g.i32("decode_ids");
    const int64_t P = static_cast<int64_t>(prompt.size()), D = static_cast<int64_t>(dec.size());
    const std::vector<int32_t> greedy_want = g.i32("greedy.tokens");
    const int64_t              NG          = static_cast<int64_t>(greedy_want.size());
    if (P == 0) return Status(Errc::invalid_model, dir + ": golden.safetensors has no prompt_ids");
    const int64_t n_ctx = P + std::max(D, NG) + 2;

    auto kv = model::KvState::create(c, n_ctx);
    if (!kv.ok()) return kv.status();
    auto ws = model::Workspace::create(c, P, n_ctx);
    if (!ws.ok()) return ws.status();

    Report               report;
    std::vector<Check> & out = report.checks;
    report.arch              = *arch;
    report.table             = &k;
    std::vector<float> logits(static_cast<size_t>(V));

    // ---- prefill (+ MTP on the prompt) --------------------------------------------------------
    // The recorded intermediates of this end-to-end run, compared with the reference's prefill
    // tensors, measure the noise a whole forward pass accumulates (the calibration of the decode
    // checks below).
    Calibration cal;
    if (opt.run_end_to_end) {
        std::vector<float> h(static_cast<size_t>(P * hcd));
        Recorder           pre;
        pre.keep_scores = true;
        if (Status s = eng.forward(*kv, *ws, prompt.data(), P, 0, logits.data(), h.data(), &pre);
            !s.ok())
            return s;
        cal = calibrate(g, c, pre, h, P);
        out.push_back(logits_check("prefill logits", logits, g.f32("prefill.logits"), V));
        if (c.n_mtp_layers > 0 && g.has("mtp.input_ids")) {
            const std::vector<int32_t> ids = g.i32("mtp.input_ids");
            std::vector<float>         ml(static_cast<size_t>(V));
            if (Status s = eng.mtp(*kv, *ws, h.data(), ids.data(), P, 0, ml.data()); !s.ok())
                return s;
            out.push_back(logits_check("mtp prefill logits (last position)", ml,
                                       g.f32("mtp.prefill_logits_last"), V, false));
        }
    }
    // ---- teacher-forced decode (+ MTP step) ---------------------------------------------------
    if (opt.run_end_to_end) {
        std::vector<float> got;
        std::vector<float> h(static_cast<size_t>(hcd));
        Recorder           rec;
        rec.keep_scores = true;
        for (int64_t i = 0; i < D; ++i) {
            if (Status s = eng.forward(*kv, *ws, &dec[static_cast<size_t>(i)], 1, P + i,
                                       logits.data(), h.data(), &rec);
                !s.ok())
                return s;
            got.insert(got.end(), logits.begin(), logits.end());
            if (i == 0 && g.has("decode.h_final_first_step")) {
                const std::vector<float> want = g.f32("decode.h_final_first_step");
                out.push_back(hfinal_check(h, want, cal));
            }
            if (i == 0 && c.n_mtp_layers > 0 && g.has("mtp.decode_input_id")) {
                const std::vector<int32_t> id = g.i32("mtp.decode_input_id");
                std::vector<float>         ml(static_cast<size_t>(V));
                if (Status s = eng.mtp(*kv, *ws, h.data(), id.data(), 1, P, ml.data()); !s.ok())
                    return s;
                out.push_back(
                    logits_check("mtp decode logits", ml, g.f32("mtp.decode_logits"), V, false));
            }
        }
        if (D > 0)
            out.push_back(
                logits_check("decode logits (teacher forced)", got, g.f32("decode.logits"), V));
        for (const auto & [L, names] : decode_tensors) {
            if (L >= c.n_layers) continue;
            const std::string pf = "decode.L" + std::to_string(L) + ".";
            if (names.count("gate.indices") && names.count("gate.weights")) {
                const auto it = rec.route.find(L);
                out.push_back(decode_gate_check(
                    L, it == rec.route.end() ? Recorder::Routing{} : it->second,
                    g.i32(pf + "gate.indices"), g.f32(pf + "gate.weights"), D, cal));
            }
            for (bool indexer : {false, true}) {
                const std::string n = indexer ? "indexer.compressor.kv" : "compressor.kv";
                if (!names.count(n) || !names.count(n + "_start_pos")) continue;
                const int ratio = indexer ? 4 : c.ratio(L);
                if (ratio == 0) continue;
                out.push_back(decode_compressed_check(
                    "decode L" + std::to_string(L) +
                        (indexer ? " indexer compressed keys" : " compressed KV"),
                    rec, L, indexer, ratio, g.f32(pf + n), g.i32(pf + n + "_start_pos"),
                    indexer ? c.index_head_dim : c.head_dim, cal));
            }
            if (names.count("indexer.topk_idxs")) {
                const auto sh = g.shape(pf + "indexer.topk_idxs");
                if (sh.size() == 2 && sh[0] == D)
                    out.push_back(decode_topk_check(L, rec, g.i32(pf + "indexer.topk_idxs"), D,
                                                    sh[1], P, c.window_size, c.index_topk, cal));
            }
        }
    }
    // ---- greedy from a fresh state ---------------------------------------------------------
    if (opt.run_end_to_end && NG > 0) {
        kv->reset();
        std::vector<int32_t> toks;
        std::vector<float>   got;
        if (Status s = eng.forward(*kv, *ws, prompt.data(), P, 0, logits.data()); !s.ok()) return s;
        for (int64_t i = 0; i < NG; ++i) {
            got.insert(got.end(), logits.begin(), logits.end());
            const int32_t t = static_cast<int32_t>(argmax(logits.data(), V));
            toks.push_back(t);
            if (i + 1 < NG)
                if (Status s = eng.forward(*kv, *ws, &t, 1, P + i, logits.data()); !s.ok())
                    return s;
        }
        int64_t match = 0;
        while (match < NG &&
               toks[static_cast<size_t>(match)] == greedy_want[static_cast<size_t>(match)])
            ++match;
        Check ch;
        ch.name   = "greedy tokens";
        ch.pass   = match == NG;
        ch.detail = fmt("%.0f/%.0f tokens match before the first difference (tol: all)",
                        double(match), double(NG));
        out.push_back(ch);
        out.push_back(logits_check("greedy logits", got, g.f32("greedy.logits"), V));
    }
    // ---- token-by-token from position 0 -----------------------------------------------------
    if (opt.run_end_to_end && opt.run_scratch && g.has("scratch.logits")) {
        kv->reset();
        std::vector<float> got;
        for (int64_t p = 0; p < P; ++p) {
            if (Status s =
                    eng.forward(*kv, *ws, &prompt[static_cast<size_t>(p)], 1, p, logits.data());
                !s.ok())
                return s;
            got.insert(got.end(), logits.begin(), logits.end());
        }
        out.push_back(
            logits_check("scratch logits (token by token)", got, g.f32("scratch.logits"), V));
    }

    // ---- sublayers of the recorded layers, from the golden inputs ---------------------------
    model::Ctx                 ctx{&c, &k, opt.n_threads, nullptr, opt.numerics};
    const std::vector<int32_t> probes = g.i32("probe_positions");
    for (int L : recorded) {
        if (L < 0 || L >= c.n_layers) continue;
        const model::BlockWeights & b   = weights->blocks[static_cast<size_t>(L)];
        const std::string           pf  = "prefill.L" + std::to_string(L) + ".";
        const int64_t               dim = c.dim;
        // Attention: fresh state, all prompt positions at start_pos 0.
        if (g.has(pf + "attn_in") && g.has(pf + "attn_out")) {
            kv->reset();
            Recorder r2;
            ctx.probe                   = &r2;
            const std::vector<float> in = g.f32(pf + "attn_in"), want = g.f32(pf + "attn_out");
            std::vector<float>       o(static_cast<size_t>(P * dim));
            std::vector<uint8_t>     scratch(
                    static_cast<size_t>(model::attn_scratch_bytes(c, P, n_ctx)) + 64);
            uint8_t * sp =
                scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
            model::attention_forward(ctx, b, kv->layer(L), in.data(), 0, P, o.data(), sp);
            ctx.probe = nullptr;
            std::set<int64_t> ties;
            if (b.desc.ratio == 4 && g.has(pf + "indexer.scores")) {
                const auto sh = g.shape(pf + "indexer.scores");
                ties          = tie_rows(g.f32(pf + "indexer.scores"), sh[0], sh[1], c.index_topk);
            }
            std::vector<float> og, ow;
            for (int64_t t = 0; t < P; ++t) {
                if (ties.count(t)) continue;
                og.insert(og.end(), o.begin() + t * dim, o.begin() + (t + 1) * dim);
                ow.insert(ow.end(), want.begin() + t * dim, want.begin() + (t + 1) * dim);
            }
            out.push_back(sublayer_check(
                "L" + std::to_string(L) + " attention (attn_in -> attn_out" +
                    (ties.empty() ? "" : ", " + std::to_string(ties.size()) + " tie rows skipped") +
                    ")",
                diff(og.data(), ow.data(), static_cast<int64_t>(og.size())), 5e-3, 0.1));
            for (bool indexer : {false, true}) {
                const std::string gname =
                    pf + (indexer ? "indexer.compressor.kv" : "compressor.kv");
                if (!g.has(gname)) continue;
                const auto               sh = g.shape(gname);
                const std::vector<float> wk = g.f32(gname);
                std::vector<float>       gk;
                auto &                   rows = r2.comp[{L, indexer}];
                for (int64_t j = 0; j < sh[0]; ++j) {
                    auto it = rows.find(j);
                    if (it == rows.end())
                        gk.insert(gk.end(), static_cast<size_t>(sh[1]), 0.0f);
                    else
                        gk.insert(gk.end(), it->second.begin(), it->second.end());
                }
                out.push_back(sublayer_check(
                    "L" + std::to_string(L) +
                        (indexer ? " indexer compressed keys" : " compressed KV"),
                    diff(gk.data(), wk.data(), static_cast<int64_t>(wk.size())), 5e-3, INFINITY));
            }
            if (g.has(pf + "indexer.topk_idxs")) {
                const auto                 sh  = g.shape(pf + "indexer.topk_idxs");
                const std::vector<int32_t> wt  = g.i32(pf + "indexer.topk_idxs");
                int64_t                    bad = 0, checked = 0;
                for (int64_t t = 0; t < sh[0]; ++t) {
                    if (ties.count(t)) continue;
                    std::set<int32_t> want_set, got_set;
                    for (int64_t j = 0; j < sh[1]; ++j) {
                        const int32_t v = wt[static_cast<size_t>(t * sh[1] + j)];
                        if (v >= 0) want_set.insert(static_cast<int32_t>(v - P));
                    }
                    for (int32_t v : r2.topk[L][t]) got_set.insert(v);
                    ++checked;
                    bad += want_set != got_set;
                }
                Check ch;
                ch.name   = "L" + std::to_string(L) + " indexer top-k sets";
                ch.pass   = bad == 0;
                ch.detail = fmt("%.0f of %.0f rows differ (%.0f tie rows skipped; tol 0)",
                                double(bad), double(checked), double(ties.size()));
                out.push_back(ch);
            }
        }
        // MoE from the golden input.
        if (g.has(pf + "ffn_in") && g.has(pf + "ffn_out")) {
            const std::vector<float> in = g.f32(pf + "ffn_in"), want = g.f32(pf + "ffn_out");
            std::vector<float>       o(static_cast<size_t>(P * dim));
            std::vector<int32_t>     idx(static_cast<size_t>(P * c.n_activated_experts));
            std::vector<float>   wts(idx.size()), bs(static_cast<size_t>(P * c.n_routed_experts));
            model::MoeTrace      tr{idx.data(), wts.data(), bs.data()};
            std::vector<uint8_t> scratch(static_cast<size_t>(model::moe_scratch_bytes(c, P)) + 64);
            uint8_t *            sp =
                scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
            model::moe_forward(ctx, b, in.data(), prompt.data(), P, o.data(), sp, &tr);
            out.push_back(sublayer_check("L" + std::to_string(L) + " MoE (ffn_in -> ffn_out)",
                                         diff(o.data(), want.data(), P * dim), 5e-3, 0.1));
            const std::vector<int32_t> wi       = g.i32(pf + "gate.indices");
            const std::vector<float>   ww       = g.f32(pf + "gate.weights");
            int64_t                    bad_rows = 0;
            double                     wmax     = 0;
            for (int64_t t = 0; t < P; ++t) {
                std::set<int32_t> a, bb;
                for (int j = 0; j < c.n_activated_experts; ++j) {
                    a.insert(idx[static_cast<size_t>(t * c.n_activated_experts + j)]);
                    bb.insert(wi[static_cast<size_t>(t * c.n_activated_experts + j)]);
                }
                bad_rows += a != bb;
                if (a == bb)
                    for (int j = 0; j < c.n_activated_experts; ++j)
                        for (int jj = 0; jj < c.n_activated_experts; ++jj)
                            if (idx[static_cast<size_t>(t * c.n_activated_experts + j)] ==
                                wi[static_cast<size_t>(t * c.n_activated_experts + jj)]) {
                                const double w0 =
                                    ww[static_cast<size_t>(t * c.n_activated_experts + jj)];
                                wmax = std::max(
                                    wmax,
                                    std::fabs(
                                        wts[static_cast<size_t>(t * c.n_activated_experts + j)] -
                                        w0) /
                                        std::max(std::fabs(w0), 1e-30));
                            }
            }
            Check ch;
            ch.name   = "L" + std::to_string(L) + " gate indices and weights";
            ch.pass   = bad_rows == 0 && wmax <= 1e-5;
            ch.detail = fmt(
                "%.0f rows with different expert sets (tol 0), max rel weight diff %.3g (tol 1e-5)",
                double(bad_rows), wmax);
            out.push_back(ch);
        }
        // Hyper-connections at the probe positions, from the golden block input.
        if (g.has(pf + "block_in_probe") && g.has(pf + "hc_attn.pre") && !probes.empty()) {
            const std::vector<float>    bin = g.f32(pf + "block_in_probe");
            const int64_t               np = static_cast<int64_t>(probes.size()), hc = c.hc_mult;
            std::vector<model::HcSplit> sp(static_cast<size_t>(np));
            std::vector<float>          y(static_cast<size_t>(np * dim)),
                hs(static_cast<size_t>(model::hc_scratch_floats(c, np)) + 1);
            model::hc_pre(ctx, b.hc_attn, bin.data(), np, y.data(), sp.data(), hs.data());
            const std::vector<float> wpre  = g.f32(pf + "hc_attn.pre"),
                                     wpost = g.f32(pf + "hc_attn.post"),
                                     wcomb = g.f32(pf + "hc_attn.comb");
            double mx                      = 0;
            for (int64_t i = 0; i < np; ++i) {
                const int64_t t = probes[static_cast<size_t>(i)];
                for (int64_t a = 0; a < hc; ++a) {
                    mx = std::max(mx, std::fabs(double(sp[static_cast<size_t>(i)].pre[a]) -
                                                wpre[static_cast<size_t>(t * hc + a)]));
                    mx = std::max(mx, std::fabs(double(sp[static_cast<size_t>(i)].post[a]) -
                                                wpost[static_cast<size_t>(t * hc + a)]));
                    for (int64_t bb = 0; bb < hc; ++bb)
                        mx = std::max(
                            mx, std::fabs(double(sp[static_cast<size_t>(i)].comb[a * hc + bb]) -
                                          wcomb[static_cast<size_t>((t * hc + a) * hc + bb)]));
                }
            }
            Check ch;
            ch.name   = "L" + std::to_string(L) + " hc_pre pre/post/comb (probe positions)";
            ch.pass   = mx <= 1e-5;
            ch.detail = fmt("max |d| %.3g (tol 1e-5)", mx);
            out.push_back(ch);
        }
    }
    return report;
}

}  // namespace dsv4::golden
