// Backend availability. The CUDA backend is a compile-time option (DSV4_CUDA); in a build
// without it, asking for Backend::cuda is a normal, reportable condition, not a crash.
#include "dsv4/system.hpp"

namespace dsv4 {

const char * backend_name(Backend backend) noexcept {
    switch (backend) {
        case Backend::automatic: return "automatic";
        case Backend::cpu: return "cpu";
        case Backend::cuda: return "cuda";
    }
    return "unknown";
}

Status check_backend(Backend backend) {
    switch (backend) {
        case Backend::automatic:
        case Backend::cpu: return Status();
        case Backend::cuda:
#if defined(DSV4_HAVE_CUDA)
            return Status();
#else
            return Status(Errc::backend_unavailable,
                          "backend 'cuda' is not available: this build of dsv4 was configured "
                          "with DSV4_CUDA=OFF");
#endif
    }
    return Status(Errc::invalid_argument, "unknown backend value");
}

}  // namespace dsv4
