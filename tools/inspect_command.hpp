#pragma once
// `embedkit inspect DIR`: a checkpoint's manifest, files, checksums and weight statistics.

#include <string>

namespace embedkit::tools {

/// Prints the checkpoint in `directory`; returns 0 when every file checks out, 1 otherwise.
int run_inspect(const std::string& directory, bool json);

}  // namespace embedkit::tools
