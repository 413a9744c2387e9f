// Consumer of the installed package: only <dsv4/dsv4.hpp>, only public API.
#include <dsv4/dsv4.hpp>

#include <cstdio>

int main() {
    const dsv4::SystemInfo info = dsv4::system_info();
    std::printf("dsv4 %s, kernels: %s\n", info.version.c_str(),
                dsv4::cpu_arch_name(info.default_arch));
    const dsv4::Status cuda = dsv4::check_backend(dsv4::Backend::cuda);
    std::printf("cuda: %s\n", cuda.to_string().c_str());
    return info.version == DSV4_VERSION_STRING ? 0 : 1;
}
