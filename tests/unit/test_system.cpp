#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "dsv4/system.hpp"
#include "kernels/kernel_table.hpp"

using dsv4::CpuArch;

namespace {
// Sets DSV4_FORCE_ARCH for one scope and restores the previous value.
struct ScopedEnv {
    explicit ScopedEnv(const char * value) {
        if (const char * old = std::getenv("DSV4_FORCE_ARCH")) {
            had_ = true;
            old_ = old;
        }
        if (value)
            setenv("DSV4_FORCE_ARCH", value, 1);
        else
            unsetenv("DSV4_FORCE_ARCH");
    }
    ~ScopedEnv() {
        if (had_)
            setenv("DSV4_FORCE_ARCH", old_.c_str(), 1);
        else
            unsetenv("DSV4_FORCE_ARCH");
    }
    bool        had_ = false;
    std::string old_;
};
}  // namespace

TEST_CASE("system_info reports a usable arch and scalar last", "[system]") {
    ScopedEnv              env(nullptr);
    const dsv4::SystemInfo info = dsv4::system_info();
    REQUIRE_FALSE(info.compiled_archs.empty());
    CHECK(info.compiled_archs.back() == CpuArch::scalar);
    REQUIRE_FALSE(info.usable_archs.empty());
    CHECK(info.usable_archs.back() == CpuArch::scalar);
    CHECK(info.best_arch == info.usable_archs.front());
    CHECK(info.default_arch == info.best_arch);
    CHECK_FALSE(info.version.empty());
    // A feature implies its prerequisites (OS-support checks are folded in).
    if (info.cpu.avx512bw) CHECK(info.cpu.avx512f);
    if (info.cpu.avx512f) CHECK(info.cpu.avx);
    if (info.cpu.avx2) CHECK(info.cpu.avx);
}

TEST_CASE("DSV4_FORCE_ARCH forces every usable arch and rejects junk", "[system]") {
    const dsv4::SystemInfo info = dsv4::system_info();
    for (CpuArch a : info.usable_archs) {
        ScopedEnv env(dsv4::cpu_arch_name(a));
        auto      r = dsv4::resolve_cpu_arch(CpuArch::automatic);
        REQUIRE(r.ok());
        CHECK(*r == a);
        CHECK(dsv4::kernels::kernel_table(a).arch == a);
        CHECK(dsv4::system_info().default_arch == a);
    }
    {
        ScopedEnv env("sse9");
        auto      r = dsv4::resolve_cpu_arch(CpuArch::automatic);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == dsv4::Errc::invalid_argument);
        CHECK(r.status().message().find("DSV4_FORCE_ARCH") != std::string::npos);
    }
    // An explicit request overrides the environment.
    ScopedEnv env("avx2");
    auto      r = dsv4::resolve_cpu_arch(CpuArch::scalar);
    REQUIRE(r.ok());
    CHECK(*r == CpuArch::scalar);
}

TEST_CASE("unsupported arch is a clear error, not a crash", "[system]") {
    const dsv4::SystemInfo info = dsv4::system_info();
    for (CpuArch a : {CpuArch::avx2, CpuArch::avx512, CpuArch::avx512bf16}) {
        bool usable = false;
        for (CpuArch u : info.usable_archs) usable |= (u == a);
        auto r = dsv4::resolve_cpu_arch(a);
        CHECK(r.ok() == usable);
        if (!usable) {
            CHECK(r.status().code() == dsv4::Errc::backend_unavailable);
            // kernel_table never returns an unusable table.
            CHECK(dsv4::kernels::kernel_table(a).arch == CpuArch::scalar);
        }
    }
}

TEST_CASE("parse_cpu_arch round-trips names", "[system]") {
    for (CpuArch a : {CpuArch::automatic, CpuArch::scalar, CpuArch::avx2, CpuArch::avx512,
                      CpuArch::avx512bf16}) {
        auto r = dsv4::parse_cpu_arch(dsv4::cpu_arch_name(a));
        REQUIRE(r.ok());
        CHECK(*r == a);
    }
    CHECK_FALSE(dsv4::parse_cpu_arch("AVX2").ok());
}

TEST_CASE("CUDA backend reports unavailable in a CPU-only build", "[system][backend]") {
    CHECK(dsv4::check_backend(dsv4::Backend::cpu).ok());
    CHECK(dsv4::check_backend(dsv4::Backend::automatic).ok());
    const dsv4::Status s = dsv4::check_backend(dsv4::Backend::cuda);
    if (dsv4::system_info().cuda) {
        CHECK(s.ok());
    } else {
        CHECK(s.code() == dsv4::Errc::backend_unavailable);
        CHECK(s.message().find("DSV4_CUDA") != std::string::npos);
    }
}
