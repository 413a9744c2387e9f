#include <cstdlib>
#include <thread>

#include "dsv4/system.hpp"
#include "dsv4/version.hpp"
#include "kernels/cpu_features.hpp"
#include "kernels/kernel_table.hpp"

namespace dsv4 {

SystemInfo system_info() {
    SystemInfo info;
    info.version = DSV4_VERSION_STRING;
    info.cpu     = kernels::cpu_features();
    for (CpuArch a : {CpuArch::avx512bf16, CpuArch::avx512, CpuArch::avx2, CpuArch::scalar}) {
        if (kernels::arch_compiled(a)) info.compiled_archs.push_back(a);
        if (kernels::arch_supported(a)) info.usable_archs.push_back(a);
    }
    info.best_arch      = info.usable_archs.empty() ? CpuArch::scalar : info.usable_archs.front();
    Result<CpuArch> def = resolve_cpu_arch(CpuArch::automatic);
    info.default_arch   = def.ok() ? *def : info.best_arch;
    if (const char * env = std::getenv("DSV4_FORCE_ARCH")) info.force_arch_env = env;
#if defined(DSV4_HAVE_OPENMP)
    info.openmp = true;
#endif
#if defined(DSV4_HAVE_CUDA)
    info.cuda = true;
#endif
    info.n_hw_threads = static_cast<int32_t>(std::thread::hardware_concurrency());
    return info;
}

}  // namespace dsv4
