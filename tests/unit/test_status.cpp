#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "dsv4/status.hpp"

using dsv4::Errc;
using dsv4::Result;
using dsv4::Status;

TEST_CASE("Status default is ok and carries code and message otherwise", "[status]") {
    Status ok;
    CHECK(ok.ok());
    CHECK(ok.to_string() == "ok");
    Status bad(Errc::invalid_model, "tensor 'embed.weight': wrong dtype");
    CHECK_FALSE(bad.ok());
    CHECK(bad.code() == Errc::invalid_model);
    CHECK(bad.to_string() == "invalid_model: tensor 'embed.weight': wrong dtype");
}

TEST_CASE("every Errc has a distinct name", "[status]") {
    std::string seen;
    for (int c = 0; c <= static_cast<int>(Errc::internal); ++c) {
        const std::string name = dsv4::errc_name(static_cast<Errc>(c));
        CHECK(name != "unknown");
        CHECK(seen.find("|" + name + "|") == std::string::npos);
        seen += "|" + name + "|";
    }
    CHECK(std::string(dsv4::errc_name(static_cast<Errc>(999))) == "unknown");
}

TEST_CASE("Result holds a value or an error", "[status]") {
    Result<int> v = 42;
    REQUIRE(v.ok());
    CHECK(*v == 42);
    Result<int> e = Status(Errc::file_not_found, "no such file: x");
    CHECK_FALSE(e.ok());
    CHECK(e.status().code() == Errc::file_not_found);
    // An ok Status without a value is turned into an internal error, never a crash.
    Result<int> wrong = Status();
    CHECK_FALSE(wrong.ok());
    CHECK(wrong.status().code() == Errc::internal);
}

TEST_CASE("Result supports move-only values", "[status]") {
    Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
    REQUIRE(r.ok());
    std::unique_ptr<int> p = std::move(r).value();
    CHECK(*p == 7);
}
