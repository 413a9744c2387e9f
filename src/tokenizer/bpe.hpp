// The BPE model of a byte-level tokenizer, working on raw bytes: the vocabulary is spelled in
// the GPT-2 alphabet (one character per byte), so a piece of n bytes starts as n single-byte
// symbols, and merges are applied lowest rank first, leftmost first among equal ranks — the
// order of Hugging Face's Word::merge_all (a min-heap on (rank, position)).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dsv4::tok {

// (left id, right id) -> (rank, merged id); open addressing, read-only after build.
class MergeTable {
  public:
    struct Entry {
        uint64_t key  = 0;
        uint32_t rank = 0;
        int32_t  id   = -1;  // -1: empty slot
    };
    void reserve(size_t n);
    // Inserts or overwrites (a later duplicate merge replaces the earlier one, as in HF).
    void          insert(int32_t a, int32_t b, uint32_t rank, int32_t id);
    const Entry * find(int32_t a, int32_t b) const noexcept;
    size_t        size() const noexcept { return count_; }

  private:
    static uint64_t key(int32_t a, int32_t b) noexcept {
        return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    }
    static uint64_t hash(uint64_t k) noexcept {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdull;
        k ^= k >> 33;
        return k;
    }
    void grow();

    std::vector<Entry> slots_;
    size_t             mask_  = 0;
    size_t             count_ = 0;
};

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Piece -> ids cache, one per thread (thread_local): no locks. Bounded: at most 65536 pieces
// of up to 256 bytes and 4 MiB of stored bytes and ids per thread, emptied wholesale when full.
// Each BpeModel has a process-unique id; a thread's cache is emptied when that thread starts
// encoding with a different model.
class PieceCache {
  public:
    static constexpr size_t kMaxPieceBytes = 256;  // as HF's BPE cache

    static bool lookup(uint64_t owner, std::string_view piece, std::vector<int32_t> & out);
    static void store(uint64_t owner, std::string_view piece, const int32_t * ids, size_t n);
};

// Reused buffers of one encode() call.
struct BpeScratch {
    struct Symbol {
        int32_t  id, prev, next;
        uint32_t len;  // bytes covered; 0 once merged into its left neighbour
    };
    struct Candidate {
        uint32_t rank, pos;
        int32_t  id;
    };
    std::vector<Symbol>    symbols;
    std::vector<Candidate> heap;
    std::vector<int32_t>   ids;
};

class BpeModel {
  public:
    std::array<int32_t, 256> byte_ids{};  // id of the one-byte token, -1 when not in the vocab
    MergeTable               merges;
    StringIdMap              by_bytes;  // raw bytes -> id, for tokens spelled in the alphabet
    int32_t                  unk_id        = -1;
    bool                     fuse_unk      = false;
    bool                     ignore_merges = false;

    // Appends the ids of one pre-tokenized piece (raw bytes) to `out`.
    void encode(std::string_view piece, std::vector<int32_t> & out, BpeScratch & scratch) const;

    BpeModel();

  private:
    void     merge_piece(std::string_view piece, BpeScratch & s) const;
    uint64_t uid_;  // identifies this model in the per-thread piece caches
};

}  // namespace dsv4::tok
