// The placement gate's list of verified GPU architectures (kernels/verified_architectures.hpp): an
// architecture is in it only with the report of a passing GPU suite on it recorded in
// docs/status.md, and architecture_verified answers for exactly the listed ones.
#include <gtest/gtest.h>

#include "kernels/verified_architectures.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string status_page() {
  std::ifstream file(EMBEDKIT_STATUS_PAGE);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

TEST(VerifiedArchitectures, EachHasAPassingReportOnRecord) {
  const std::string page = status_page();
  ASSERT_FALSE(page.empty()) << EMBEDKIT_STATUS_PAGE;
  for (const int architecture : embedkit::kernels::kVerifiedArchitectures) {
    const std::string line = "GPU suite passed on sm_" + std::to_string(architecture);
    EXPECT_NE(page.find(line), std::string::npos) << "docs/status.md records no '" << line << "'";
  }
}

TEST(VerifiedArchitectures, OnlyListedArchitecturesAreVerified) {
  const auto& listed = embedkit::kernels::kVerifiedArchitectures;
  for (int major = 3; major <= 12; ++major) {
    for (int minor = 0; minor <= 9; ++minor) {
      const bool in_list = std::find(listed.begin(), listed.end(), major * 10 + minor) != listed.end();
      EXPECT_EQ(embedkit::kernels::architecture_verified(major, minor), in_list) << major << "." << minor;
    }
  }
}

}  // namespace
