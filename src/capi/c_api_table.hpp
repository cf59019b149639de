#pragma once
// The ek_table handle, shared by the C ABI's files (a collection hands out handles of its tables).

#include <embedkit/table.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

// Shared: a weights view (ek_weights_view) keeps its table alive past ek_table_destroy, and a
// collection's table handle keeps its collection alive (an aliasing pointer).
struct ek_table {
  explicit ek_table(embedkit::EmbeddingTable created)
      : ek_table(std::make_shared<embedkit::EmbeddingTable>(std::move(created))) {}
  explicit ek_table(std::shared_ptr<embedkit::EmbeddingTable> shared)
      : table(std::move(shared)), state_names(table->optimizer_state_names()) {}
  std::shared_ptr<embedkit::EmbeddingTable> table;
  std::vector<std::string> state_names;  // what ek_optimizer_state_name hands out, alive with the handle
};
