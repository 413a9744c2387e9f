#include "tokenizer/bpe.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace dsv4::tok {

// ---- MergeTable ---------------------------------------------------------------------------------

void MergeTable::reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Entry{});
    mask_  = cap - 1;
    count_ = 0;
}

void MergeTable::grow() {
    std::vector<Entry> old = std::move(slots_);
    reserve(std::max<size_t>(16, old.size()));  // doubles: reserve(n) takes >= 2n slots
    for (const Entry & e : old) {
        if (e.id >= 0) {
            insert(static_cast<int32_t>(e.key >> 32), static_cast<int32_t>(e.key & 0xffffffffu),
                   e.rank, e.id);
        }
    }
}

void MergeTable::insert(int32_t a, int32_t b, uint32_t rank, int32_t id) {
    if (slots_.empty() || (count_ + 1) * 2 > slots_.size()) grow();
    const uint64_t k = key(a, b);
    for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
        Entry & e = slots_[i];
        if (e.id < 0) {
            e = Entry{k, rank, id};
            ++count_;
            return;
        }
        if (e.key == k) {
            e.rank = rank;
            e.id   = id;
            return;
        }
    }
}

const MergeTable::Entry * MergeTable::find(int32_t a, int32_t b) const noexcept {
    if (slots_.empty()) return nullptr;
    const uint64_t k = key(a, b);
    for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
        const Entry & e = slots_[i];
        if (e.id < 0) return nullptr;
        if (e.key == k) return &e;
    }
}

// ---- PieceCache ---------------------------------------------------------------------------------

namespace {

// Open addressing over a byte arena; emptied wholesale when either bound is reached.
class ThreadCache {
  public:
    static constexpr size_t kMaxEntries    = size_t{1} << 16;
    static constexpr size_t kMaxArenaBytes = size_t{4} << 20;

    void use(uint64_t owner) {
        if (owner != owner_) {
            clear(kInitialSlots);
            owner_ = owner;
        }
    }

    bool lookup(uint64_t h, std::string_view piece, std::vector<int32_t> & out) const {
        if (slots_.empty()) return false;
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            const Entry & e = slots_[i];
            if (e.tag == 0) return false;
            if (e.tag == h && e.len == piece.size() &&
                std::memcmp(arena_.data() + e.off, piece.data(), e.len) == 0) {
                const size_t old = out.size();
                out.resize(old + e.n);
                std::memcpy(out.data() + old, arena_.data() + e.off + e.len, e.n * sizeof(int32_t));
                return true;
            }
        }
    }

    void store(uint64_t h, std::string_view piece, const int32_t * ids, size_t n) {
        const size_t need = piece.size() + n * sizeof(int32_t);
        if (count_ >= kMaxEntries || arena_.size() + need > kMaxArenaBytes) {
            clear(slots_.size());
        } else if (slots_.empty() || (count_ + 1) * 2 > slots_.size()) {
            grow();
        }
        const auto off = static_cast<uint32_t>(arena_.size());
        arena_.insert(arena_.end(), piece.begin(), piece.end());
        const auto * idb = reinterpret_cast<const char *>(ids);
        arena_.insert(arena_.end(), idb, idb + n * sizeof(int32_t));
        insert({h, off, static_cast<uint16_t>(piece.size()), static_cast<uint16_t>(n)});
    }

  private:
    struct Entry {
        uint64_t tag = 0;  // hash | 1; 0 = empty
        uint32_t off = 0;
        uint16_t len = 0, n = 0;
    };
    static constexpr size_t kInitialSlots = 4096;

    void clear(size_t slots) {
        slots_.assign(std::max(slots, kInitialSlots), Entry{});
        mask_  = slots_.size() - 1;
        count_ = 0;
        arena_.clear();
    }
    void grow() {
        std::vector<Entry> old = std::move(slots_);
        slots_.assign(std::max(old.size() * 2, kInitialSlots), Entry{});
        mask_  = slots_.size() - 1;
        count_ = 0;
        for (const Entry & e : old) {
            if (e.tag != 0) insert(e);
        }
    }
    void insert(const Entry & e) {
        size_t i = e.tag & mask_;
        while (slots_[i].tag != 0) i = (i + 1) & mask_;
        slots_[i] = e;
        ++count_;
    }

    uint64_t           owner_ = 0;
    std::vector<Entry> slots_;
    size_t             mask_  = 0;
    size_t             count_ = 0;
    std::vector<char>  arena_;
};

thread_local ThreadCache t_cache;

// FNV-1a, 64-bit, finalised; pieces are short.
uint64_t piece_hash(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
    h ^= h >> 29;
    return h | 1;
}

std::atomic<uint64_t> g_next_uid{1};

}  // namespace

bool PieceCache::lookup(uint64_t owner, std::string_view piece, std::vector<int32_t> & out) {
    t_cache.use(owner);
    return t_cache.lookup(piece_hash(piece), piece, out);
}

void PieceCache::store(uint64_t owner, std::string_view piece, const int32_t * ids, size_t n) {
    if (n > 0xffff) return;
    t_cache.use(owner);
    t_cache.store(piece_hash(piece), piece, ids, n);
}

// ---- BpeModel -----------------------------------------------------------------------------------

namespace {

// Min-heap order on (rank, position): std::*_heap keep the "largest" on top.
struct Later {
    bool operator()(const BpeScratch::Candidate & x, const BpeScratch::Candidate & y) const {
        return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos;
    }
};

}  // namespace

BpeModel::BpeModel() : uid_(g_next_uid.fetch_add(1, std::memory_order_relaxed)) {}

void BpeModel::merge_piece(std::string_view piece, BpeScratch & s) const {
    auto & sym = s.symbols;
    sym.clear();
    // Initial symbols: one per byte. A byte missing from the vocabulary becomes the unk token
    // (fused with a preceding unk when fuse_unk) or, without unk, is dropped (as HF).
    bool pending_unk = false;
    auto add         = [&](int32_t id, uint32_t len) {
        const auto n = static_cast<int32_t>(sym.size());
        if (n > 0) sym.back().next = n;
        sym.push_back({id, n - 1, -1, len});
    };
    for (const char c : piece) {
        const int32_t id = byte_ids[static_cast<uint8_t>(c)];
        if (id >= 0) {
            add(id, 1);
            pending_unk = false;
        } else if (unk_id >= 0) {
            if (pending_unk && fuse_unk) {
                sym.back().len += 1;
            } else {
                add(unk_id, 1);
                pending_unk = true;
            }
        }
    }

    auto & heap = s.heap;
    heap.clear();
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
        if (const MergeTable::Entry * m = merges.find(sym[i].id, sym[i + 1].id)) {
            heap.push_back({m->rank, static_cast<uint32_t>(i), m->id});
        }
    }
    std::make_heap(heap.begin(), heap.end(), Later{});
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), Later{});
        const BpeScratch::Candidate top = heap.back();
        heap.pop_back();
        BpeScratch::Symbol & left = sym[top.pos];
        if (left.len == 0 || left.next < 0) continue;  // merged away, or last symbol
        const BpeScratch::Symbol right = sym[static_cast<size_t>(left.next)];
        // Stale entry: the pair at this position changed since it was queued.
        const MergeTable::Entry * now = merges.find(left.id, right.id);
        if (now == nullptr || now->id != top.id) continue;

        sym[static_cast<size_t>(left.next)].len = 0;
        left.id                                 = top.id;
        left.len += right.len;
        left.next = right.next;
        if (right.next >= 0)
            sym[static_cast<size_t>(right.next)].prev = static_cast<int32_t>(top.pos);

        if (left.prev >= 0) {
            const BpeScratch::Symbol & p = sym[static_cast<size_t>(left.prev)];
            if (const MergeTable::Entry * m = merges.find(p.id, left.id)) {
                heap.push_back({m->rank, static_cast<uint32_t>(left.prev), m->id});
                std::push_heap(heap.begin(), heap.end(), Later{});
            }
        }
        if (left.next >= 0) {
            const BpeScratch::Symbol & nx = sym[static_cast<size_t>(left.next)];
            if (const MergeTable::Entry * m = merges.find(left.id, nx.id)) {
                heap.push_back({m->rank, top.pos, m->id});
                std::push_heap(heap.begin(), heap.end(), Later{});
            }
        }
    }

    s.ids.clear();
    for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[static_cast<size_t>(i)].next) {
        s.ids.push_back(sym[static_cast<size_t>(i)].id);
    }
}

void BpeModel::encode(std::string_view piece, std::vector<int32_t> & out,
                      BpeScratch & scratch) const {
    if (piece.empty()) return;
    if (piece.size() == 1) {
        const int32_t id = byte_ids[static_cast<uint8_t>(piece[0])];
        if (id >= 0) {
            out.push_back(id);
        } else if (unk_id >= 0) {
            out.push_back(unk_id);
        }
        return;
    }
    if (ignore_merges) {
        const auto it = by_bytes.find(piece);
        if (it != by_bytes.end()) {
            out.push_back(it->second);
            return;
        }
    }
    const bool cacheable = piece.size() <= PieceCache::kMaxPieceBytes;
    if (cacheable && PieceCache::lookup(uid_, piece, out)) return;
    merge_piece(piece, scratch);
    out.insert(out.end(), scratch.ids.begin(), scratch.ids.end());
    if (cacheable) PieceCache::store(uid_, piece, scratch.ids.data(), scratch.ids.size());
}

}  // namespace dsv4::tok
