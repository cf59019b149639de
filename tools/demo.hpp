#pragma once
// `embedkit demo`: the README's main job.

namespace embedkit::tools {

/// Creates a table, looks a batch up, checks it against the weights, and prints the summary and
/// placement decision. Returns the process exit code.
int run_demo();

}  // namespace embedkit::tools
