#include "scenarios.hpp"

#include <embedkit/config.hpp>
#include <embedkit/table.hpp>
#include <embedkit/tensor.hpp>

#include "baselines.hpp"
#include "buffers.hpp"
#include "peak_memory.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>

namespace embedkit::bench {
namespace {

constexpr std::uint64_t kSeed = 20240601;
constexpr double kH100Bandwidth = 3.35e12;  // bytes/s, HBM3 of an H100 SXM
constexpr double kPcie5Bandwidth = 64e9;    // bytes/s, PCIe 5.0 x16, one direction

double float_bytes(std::int64_t count) { return static_cast<double>(count) * sizeof(float); }

// Runs measures `first` and `second` of `scenario` once each and throws unless they wrote the same
// bytes to `out`: a baseline that computes something else would make its ratio meaningless.
void check_same_output(const Scenario& scenario, const Floats& out) {
  scenario.measures.at(0).run();
  const std::vector<float> first(out.data(), out.data() + out.size());
  scenario.measures.at(1).run();
  if (std::memcmp(first.data(), out.data(), first.size() * sizeof(float)) != 0) {
    throw std::runtime_error(scenario.title + ": embedkit and the naive baseline disagree");
  }
}

std::int64_t distinct(std::vector<std::int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  return std::unique(ids.begin(), ids.end()) - ids.begin();
}

struct LookupResources {
  LookupResources(const LookupShape& shape)
      : table(make_table(shape.rows, shape.dim, OptimizerKind::sgd)),
        matrix(shape.rows * shape.dim),
        ids(draw_ids(shape.ids, shape.rows, shape.lookups, kSeed)),
        indices(ids),
        out(shape.lookups * shape.dim),
        copy_source(shape.lookups * shape.dim) {
    table.get_weights(matrix.span());
  }
  EmbeddingTable table;
  Floats matrix;  // the weights as a plain matrix, for the naive gather
  std::vector<std::int64_t> ids;
  IndexTensor indices;
  Floats out;
  Floats copy_source;
};

struct PooledResources {
  PooledResources(const PooledShape& shape)
      : table(make_table(shape.rows, shape.dim, OptimizerKind::sgd)),
        matrix(shape.rows * shape.dim),
        ids(draw_ids(shape.ids, shape.rows, shape.lookups, kSeed)),
        offsets(bag_offsets(shape.lookups, shape.bag)),
        indices(ids),
        out(static_cast<std::int64_t>(offsets.size() - 1) * shape.dim),
        copy_source(shape.lookups * shape.dim),
        copy_destination(shape.lookups * shape.dim) {
    table.get_weights(matrix.span());
  }
  EmbeddingTable table;
  Floats matrix;
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> offsets;
  IndexTensor indices;
  Floats out;
  Floats copy_source, copy_destination;
};

std::vector<float> small_gradient(std::int64_t count) {
  std::mt19937 generator(kSeed);
  std::uniform_real_distribution<float> value(-1e-3f, 1e-3f);
  std::vector<float> gradient(static_cast<std::size_t>(count));
  for (float& g : gradient) g = value(generator);
  return gradient;
}

struct TrainResources {
  TrainResources(const TrainShape& shape)
      : table(make_table(shape.rows, shape.dim, shape.optimizer)),
        ids(draw_ids(shape.ids, shape.rows, shape.lookups, kSeed)),
        offsets(bag_offsets(shape.lookups, shape.bag)),
        indices(ids),
        bags(static_cast<std::int64_t>(offsets.size()) - 1),
        forward(bags * shape.dim),
        grad_bags(small_gradient(bags * shape.dim)) {
    if (shape.baseline) {
      std::vector<float> matrix(static_cast<std::size_t>(shape.rows * shape.dim));
      table.get_weights(matrix);
      naive.emplace(std::move(matrix), shape.dim, static_cast<float>(table.optimizer().learning_rate));
    }
  }

  void embedkit_step() {
    table.lookup_pooled(indices, offsets, PoolingMode::sum, {}, forward.span());
    table.train_step_pooled(indices, offsets, PoolingMode::sum, {}, grad_bags);
  }

  EmbeddingTable table;
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> offsets;
  IndexTensor indices;
  std::int64_t bags;
  Floats forward;
  std::vector<float> grad_bags;
  std::optional<NaiveTrainStep> naive;
};

}  // namespace

std::string title(const LookupShape& shape) {
  return fmt::format("lookup/dim:{}/{}/rows:{}/lookups:{}", shape.dim, shape.ids.name(), shape.rows, shape.lookups);
}

std::string title(const PooledShape& shape) {
  return fmt::format("pooled_sum/bag:{}/dim:{}/{}/rows:{}/lookups:{}", shape.bag, shape.dim, shape.ids.name(),
                     shape.rows, shape.lookups);
}

std::string title(const TrainShape& shape) {
  return fmt::format("train_{}/bag:{}/dim:{}/{}/rows:{}/lookups:{}", to_string(shape.optimizer), shape.bag, shape.dim,
                     shape.ids.name(), shape.rows, shape.lookups);
}

std::string title(const CreateShape& shape) {
  return fmt::format("create/uniform/dim:{}/rows:{}", shape.dim, shape.rows);
}

std::vector<std::string> measure_names(const LookupShape&) { return {"embedkit", "naive", "copy"}; }
std::vector<std::string> measure_names(const PooledShape&) { return {"embedkit", "naive", "copy"}; }
std::vector<std::string> measure_names(const TrainShape& shape) {
  if (shape.baseline) return {"embedkit", "naive"};
  return {"embedkit"};
}
std::vector<std::string> measure_names(const CreateShape&) { return {"embedkit", "fill"}; }

Scenario make_scenario(const LookupShape& shape) {
  auto resources = std::make_shared<LookupResources>(shape);
  LookupResources* r = resources.get();
  Scenario scenario;
  scenario.title = title(shape);
  scenario.lookups = shape.lookups;
  scenario.bytes = 2 * float_bytes(shape.lookups * shape.dim);   // rows read, output written
  scenario.pcie_bytes = float_bytes(shape.lookups * shape.dim);  // gathered on the host, sent once
  scenario.table_bytes = static_cast<std::int64_t>(float_bytes(shape.rows * shape.dim));
  scenario.measures = {
      {"embedkit", [r] { r->table.lookup(r->indices, r->out.span()); }},
      {"naive", [r, dim = shape.dim] { naive_gather(r->matrix.data(), dim, r->ids, r->out.data()); }},
      {"copy", [r] { stream_copy(r->copy_source.data(), r->out.data(), r->out.size()); }},
  };
  scenario.resources = std::move(resources);
  return scenario;
}

Scenario make_scenario(const PooledShape& shape) {
  auto resources = std::make_shared<PooledResources>(shape);
  PooledResources* r = resources.get();
  const std::int64_t bags = static_cast<std::int64_t>(r->offsets.size()) - 1;
  Scenario scenario;
  scenario.title = title(shape);
  scenario.lookups = shape.lookups;
  scenario.bytes = float_bytes(shape.lookups * shape.dim) + float_bytes(bags * shape.dim);
  scenario.pcie_bytes = float_bytes(bags * shape.dim);
  scenario.table_bytes = static_cast<std::int64_t>(float_bytes(shape.rows * shape.dim));
  scenario.measures = {
      {"embedkit", [r] { r->table.lookup_pooled(r->indices, r->offsets, PoolingMode::sum, {}, r->out.span()); }},
      {"naive", [r, dim = shape.dim] { naive_pooled_sum(r->matrix.data(), dim, r->ids, r->offsets, r->out.data()); }},
      {"copy", [r] { stream_copy(r->copy_source.data(), r->copy_destination.data(), r->copy_source.size()); }},
  };
  check_same_output(scenario, r->out);
  scenario.resources = std::move(resources);
  return scenario;
}

Scenario make_scenario(const TrainShape& shape) {
  auto resources = std::make_shared<TrainResources>(shape);
  TrainResources* r = resources.get();
  const std::int64_t unique_rows = distinct(r->ids);
  const std::int64_t state_bytes = static_cast<std::int64_t>(r->table.placement().bytes.optimizer_state);
  const double state_per_row = static_cast<double>(state_bytes) / static_cast<double>(shape.rows);
  Scenario scenario;
  scenario.title = title(shape);
  scenario.lookups = shape.lookups;
  const double bag_bytes = float_bytes(r->bags * shape.dim);
  // Forward: rows read, bags written. Backward: the bag gradient read. Optimizer: each touched row's
  // weights and state read and written once.
  scenario.bytes = float_bytes(shape.lookups * shape.dim) + 2 * bag_bytes +
                   2 * (float_bytes(unique_rows * shape.dim) + static_cast<double>(unique_rows) * state_per_row);
  scenario.pcie_bytes = 2 * bag_bytes;  // pooled rows to the device, their gradient back
  scenario.table_bytes = static_cast<std::int64_t>(float_bytes(shape.rows * shape.dim));
  scenario.state_bytes = state_bytes;
  scenario.peak_step_bytes = peak_resident_growth([r] { r->embedkit_step(); });
  scenario.measures = {{"embedkit", [r] { r->embedkit_step(); }}};
  if (r->naive) {
    scenario.measures.push_back({"naive", [r] { r->naive->run(r->ids, r->offsets, r->forward.data(), r->grad_bags); }});
  }
  scenario.resources = std::move(resources);
  return scenario;
}

Scenario make_scenario(const CreateShape& shape) {
  const double bytes = float_bytes(shape.rows * shape.dim);
  Scenario scenario;
  scenario.title = title(shape);
  scenario.bytes = bytes;  // every weight written once
  scenario.table_bytes = static_cast<std::int64_t>(bytes);
  scenario.measures = {
      {"embedkit", [shape] { EmbeddingTable table = make_table(shape.rows, shape.dim, OptimizerKind::sgd); }},
      {"fill", [count = shape.rows * shape.dim] { fresh_fill(count, 1.0f); }},
  };
  return scenario;
}

EmbeddingTable make_table(std::int64_t rows, std::int64_t dim, OptimizerKind optimizer) {
  TableConfig config;
  config.input_dim = rows;
  config.output_dim = dim;
  config.seed = kSeed;
  config.name = "bench";
  config.placement = PlacementPolicy::cpu;
  config.optimizer = OptimizerConfig::defaults(optimizer);
  return EmbeddingTable(config);
}

double h100_seconds(double bytes) { return bytes / kH100Bandwidth; }
double pcie5_seconds(double bytes) { return bytes / kPcie5Bandwidth; }

}  // namespace embedkit::bench
