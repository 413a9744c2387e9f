// The scalar table: the reference kernels of include/dsv4/ref, always compiled, always last.
#include "dsv4/ref/ops.hpp"
#include "kernels/kernel_table.hpp"

namespace dsv4::kernels {

extern const KernelTable kTableScalar = {
    CpuArch::scalar,
    "scalar",
    &ref::dot_f32,
    &ref::rmsnorm_f32,
};

}  // namespace dsv4::kernels
