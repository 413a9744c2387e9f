// Carves typed, 64-byte aligned arrays out of one preallocated scratch buffer. The same carving
// code runs once with a null base to measure the size (so size and layout cannot disagree) and
// then on the real buffer: nothing on the forward path allocates.
#pragma once

#include <cstdint>

namespace dsv4::model {

class Carver {
  public:
    explicit Carver(uint8_t * base) : base_(base) {}

    template <class T>
    T * take(int64_t n) {
        T * p = base_ ? reinterpret_cast<T *>(base_ + used_) : nullptr;
        used_ += (static_cast<int64_t>(sizeof(T)) * (n > 0 ? n : 0) + 63) / 64 * 64;
        return p;
    }
    int64_t used() const noexcept { return used_; }

  private:
    uint8_t * base_;
    int64_t   used_ = 0;
};

}  // namespace dsv4::model
