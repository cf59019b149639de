#include "demo_data.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <string_view>
#include <tuple>

namespace embedkit::tools {
namespace {

constexpr std::int64_t kSyntheticUsers = 2000, kSyntheticItems = 5000, kRank = 8;
constexpr std::int64_t kPositives = 20, kSyntheticHeldOut = 4;

float dot(const float* a, const float* b) {
  float s = 0;
  for (std::int64_t c = 0; c < kDim; ++c) s += a[c] * b[c];
  return s;
}

void count_likes(Data& data) {
  data.counts.assign(static_cast<std::size_t>(data.items), 0);
  for (const auto& liked : data.train) {
    for (const std::int64_t i : liked) ++data.counts[static_cast<std::size_t>(i)];
  }
}

[[noreturn]] void bad_file(const std::string& path, std::int64_t line, const std::string& what) {
  throw Error(Status::invalid_argument, path + ":" + std::to_string(line) + ": " + what);
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  if (line.find("::") != std::string_view::npos) {
    for (std::size_t at = 0;;) {
      const std::size_t next = line.find("::", at);
      fields.push_back(line.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at));
      if (next == std::string_view::npos) break;
      at = next + 2;
    }
    for (auto& field : fields) {  // blanks around a field are not part of it
      while (!field.empty() && (field.front() == ' ' || field.front() == '\t')) field.remove_prefix(1);
      while (!field.empty() && (field.back() == ' ' || field.back() == '\t')) field.remove_suffix(1);
    }
    return fields;
  }
  std::size_t at = 0;
  while (at < line.size()) {
    while (at < line.size() && (line[at] == ' ' || line[at] == '\t')) ++at;
    if (at == line.size()) break;
    const std::size_t end = std::min(line.find_first_of(" \t", at), line.size());
    fields.push_back(line.substr(at, end - at));
    at = end;
  }
  return fields;
}

std::int64_t parse_integer(std::string_view field, const char* what, const std::string& path, std::int64_t line) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (field.empty() || error != std::errc() || end != field.data() + field.size()) {
    bad_file(path, line, std::string(what) + " '" + std::string(field) + "' is not a number");
  }
  return value;
}

std::int64_t parse_id(std::string_view field, const char* what, const std::string& path, std::int64_t line) {
  const std::int64_t id = parse_integer(field, what, path, line);
  if (id < 0) bad_file(path, line, std::string(what) + " " + std::to_string(id) + " is negative");
  return id;
}

double parse_rating(std::string_view field, const std::string& path, std::int64_t line) {
  const std::string text(field);
  char* end = nullptr;
  const double value = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value)) {
    bad_file(path, line, "rating '" + text + "' is not a number");
  }
  return value;
}

// Original ids, sorted and unique, to dense rows.
std::map<std::int64_t, std::int64_t> dense_rows(std::vector<std::int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::map<std::int64_t, std::int64_t> rows;
  for (std::size_t k = 0; k < ids.size(); ++k) rows.emplace(ids[k], static_cast<std::int64_t>(k));
  return rows;
}

}  // namespace

std::int64_t Data::training_likes() const {
  std::int64_t n = 0;
  for (const auto& liked : train) n += static_cast<std::int64_t>(liked.size());
  return n;
}

std::int64_t Data::held_out_likes() const {
  std::int64_t n = 0;
  for (const auto& liked : test) n += static_cast<std::int64_t>(liked.size());
  return n;
}

// Synthetic interactions: each user likes, among items drawn by Zipf popularity, those closest to
// its planted taste (a rank-8 dot product); some of those likes are held out for evaluation.
Data make_synthetic_data(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> users(kSyntheticUsers * kRank), items(kSyntheticItems * kRank), weights(kSyntheticItems);
  for (auto& x : users) x = normal(rng);
  for (auto& x : items) x = normal(rng);
  for (std::int64_t i = 0; i < kSyntheticItems; ++i) weights[i] = 1.0 / std::pow(static_cast<double>(i + 1), 1.05);
  std::discrete_distribution<std::int64_t> popularity(weights.begin(), weights.end());
  Data data;
  data.users = kSyntheticUsers;
  data.items = kSyntheticItems;
  for (std::int64_t u = 0; u < kSyntheticUsers; ++u) {
    std::vector<std::pair<double, std::int64_t>> candidates;
    for (int k = 0; k < 400; ++k) {
      const std::int64_t i = popularity(rng);
      double affinity = 0;
      for (std::int64_t r = 0; r < kRank; ++r) affinity += users[u * kRank + r] * items[i * kRank + r];
      candidates.emplace_back(-affinity, i);
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end(),
                                 [](const auto& a, const auto& b) { return a.second == b.second; }),
                     candidates.end());
    std::vector<std::int64_t> liked;
    for (std::size_t k = 0; k < candidates.size() && static_cast<std::int64_t>(liked.size()) < kPositives; ++k) {
      liked.push_back(candidates[k].second);
    }
    std::shuffle(liked.begin(), liked.end(), rng);
    data.test.emplace_back(liked.begin(), liked.begin() + kSyntheticHeldOut);
    data.train.emplace_back(liked.begin() + kSyntheticHeldOut, liked.end());
  }
  count_likes(data);
  char line[200];
  std::snprintf(line, sizeof line,
                "synthetic, %lld users x %lld items, planted rank %lld, Zipf(1.05) popularity, %lld likes a user, "
                "%lld held out at random",
                static_cast<long long>(kSyntheticUsers), static_cast<long long>(kSyntheticItems),
                static_cast<long long>(kRank), static_cast<long long>(kPositives),
                static_cast<long long>(kSyntheticHeldOut));
  data.description = line;
  return data;
}

Data load_ratings(const std::string& path, double min_rating, std::int64_t held_out) {
  std::ifstream file(path);
  if (!file) throw Error(Status::invalid_argument, "cannot open the ratings file " + path);
  struct Like {
    std::int64_t user, item, timestamp, line;
  };
  std::vector<Like> likes;
  std::vector<std::int64_t> user_ids, item_ids;
  std::string text;
  std::int64_t line = 0, ratings = 0;
  while (std::getline(file, text)) {
    ++line;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    const std::vector<std::string_view> fields = split_fields(text);
    if (fields.empty() || (fields.size() == 1 && fields[0].empty())) continue;  // a blank line
    if (fields.size() != 4) {
      bad_file(path, line,
               "expected 4 columns (user item rating timestamp, tab or :: separated), found " +
                   std::to_string(fields.size()));
    }
    const std::int64_t user = parse_id(fields[0], "user id", path, line);
    const std::int64_t item = parse_id(fields[1], "item id", path, line);
    const double rating = parse_rating(fields[2], path, line);
    const std::int64_t timestamp = parse_integer(fields[3], "timestamp", path, line);
    ++ratings;
    user_ids.push_back(user);
    item_ids.push_back(item);
    if (rating >= min_rating) likes.push_back({user, item, timestamp, line});
  }
  if (file.bad()) throw Error(Status::invalid_argument, "cannot read the ratings file " + path);
  if (ratings == 0) throw Error(Status::invalid_argument, path + ": no ratings (an empty file)");
  char threshold[32];
  std::snprintf(threshold, sizeof threshold, "%g", min_rating);
  if (likes.empty()) {
    throw Error(Status::invalid_argument, path + ": none of its " + std::to_string(ratings) +
                                              " ratings is >= " + threshold + ", so there are no likes to train on");
  }
  const auto users = dense_rows(user_ids), items = dense_rows(item_ids);
  Data data;
  data.users = static_cast<std::int64_t>(users.size());
  data.items = static_cast<std::int64_t>(items.size());
  data.train.resize(users.size());
  data.test.resize(users.size());
  std::vector<std::vector<Like>> per_user(users.size());
  for (const Like& like : likes) per_user[static_cast<std::size_t>(users.at(like.user))].push_back(like);
  for (std::size_t u = 0; u < per_user.size(); ++u) {
    auto& liked = per_user[u];
    std::sort(liked.begin(), liked.end(), [](const Like& a, const Like& b) {
      return std::tie(a.timestamp, a.line) > std::tie(b.timestamp, b.line);
    });
    std::vector<std::int64_t> rows;  // latest first, each item once (its latest like)
    for (const Like& like : liked) {
      const std::int64_t row = items.at(like.item);
      if (std::find(rows.begin(), rows.end(), row) == rows.end()) rows.push_back(row);
    }
    const std::int64_t hold = static_cast<std::int64_t>(rows.size()) > held_out ? held_out : 0;
    data.test[u].assign(rows.begin(), rows.begin() + hold);
    data.train[u].assign(rows.begin() + hold, rows.end());
  }
  if (data.held_out_likes() == 0) {
    throw Error(Status::invalid_argument, path + ": no user has more than " + std::to_string(held_out) +
                                              " likes, so there is nothing to hold out");
  }
  count_likes(data);
  std::ostringstream description;
  description << path << ", " << data.users << " users x " << data.items << " items, " << ratings << " ratings, "
              << likes.size() << " of them >= " << threshold << " (likes), each user's latest " << held_out
              << " held out";
  data.description = description.str();
  return data;
}

TableConfig table_config(const char* name, std::int64_t rows, std::uint64_t seed) {
  TableConfig config;
  config.name = name;
  config.input_dim = rows;
  config.output_dim = kDim;
  config.seed = seed;
  config.embeddings_initializer = Initializer::from_name("random_normal");
  config.embeddings_initializer.stddev = 0.1;
  config.optimizer = OptimizerConfig::defaults(OptimizerKind::adagrad);
  config.optimizer.learning_rate = 0.1;
  config.max_batch_lookups = kBatchPairs * (1 + kNegatives);
  return config;
}

NegativeSampler::NegativeSampler(const Data& data) {
  std::vector<double> weights(data.counts.size());  // + 1: an item nobody liked in training is drawn too
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<double>(data.counts[i]) + 1.0;
  distribution = std::discrete_distribution<std::int64_t>(weights.begin(), weights.end());
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  log_q.resize(weights.size());
  for (std::size_t i = 0; i < weights.size(); ++i) log_q[i] = static_cast<float>(std::log(weights[i] / total));
}

void append_examples(const std::vector<std::pair<std::int64_t, std::int64_t>>& likes, std::size_t begin,
                     std::size_t end, std::size_t stride, NegativeSampler& sampler, std::mt19937_64& rng,
                     std::vector<std::int64_t>& user_ids, std::vector<std::int64_t>& item_ids) {
  for (std::size_t k = begin; k < end; k += stride) {
    user_ids.push_back(likes[k].first);
    item_ids.push_back(likes[k].second);
    for (std::int64_t j = 0; j < kNegatives; ++j) {
      user_ids.push_back(likes[k].first);
      item_ids.push_back(sampler(rng));
    }
  }
}

double sampled_softmax_loss(const std::vector<float>& eu, const std::vector<float>& ei,
                            const std::vector<std::int64_t>& item_ids, const NegativeSampler& sampler,
                            std::vector<float>& user_grad, std::vector<float>& item_grad) {
  const auto n = static_cast<std::int64_t>(item_ids.size());
  user_grad.assign(static_cast<std::size_t>(n * kDim), 0.0f);
  item_grad.assign(static_cast<std::size_t>(n * kDim), 0.0f);
  double loss = 0;
  constexpr std::int64_t kPer = 1 + kNegatives;
  for (std::int64_t group = 0; group + kPer <= n; group += kPer) {
    // A softmax over the like and its negatives, each logit corrected by - log Q(item).
    double logits[kPer], top = -INFINITY, sum = 0;
    for (std::int64_t j = 0; j < kPer; ++j) {
      const std::int64_t k = group + j;
      logits[j] = static_cast<double>(dot(&eu[k * kDim], &ei[k * kDim])) -
                  static_cast<double>(sampler.log_q[static_cast<std::size_t>(item_ids[k])]);
      top = std::max(top, logits[j]);
    }
    for (const double logit : logits) sum += std::exp(logit - top);
    loss += std::log(sum) + top - logits[0];
    for (std::int64_t j = 0; j < kPer; ++j) {
      const std::int64_t k = group + j;
      const auto g = static_cast<float>(std::exp(logits[j] - top) / sum - (j == 0 ? 1.0 : 0.0));  // d(loss)/d(score)
      for (std::int64_t c = 0; c < kDim; ++c) {
        user_grad[k * kDim + c] = g * ei[k * kDim + c];
        item_grad[k * kDim + c] = g * eu[k * kDim + c];
      }
    }
  }
  return loss;
}

Recalls evaluate(const std::vector<float>& u, const std::vector<float>& v, const Data& data) {
  std::vector<std::int64_t> by_popularity(static_cast<std::size_t>(data.items));
  std::iota(by_popularity.begin(), by_popularity.end(), 0);
  std::stable_sort(by_popularity.begin(), by_popularity.end(), [&](std::int64_t a, std::int64_t b) {
    return data.counts[static_cast<std::size_t>(a)] > data.counts[static_cast<std::size_t>(b)];
  });
  std::int64_t model_hits = 0, popularity_hits = 0, total = 0;
  double random_hits = 0;
  std::vector<std::pair<float, std::int64_t>> scores(static_cast<std::size_t>(data.items));
  std::vector<char> seen(static_cast<std::size_t>(data.items), 0);
  std::vector<std::int64_t> top;
  for (std::int64_t user = 0; user < data.users; ++user) {
    const auto& held = data.test[static_cast<std::size_t>(user)];
    if (held.empty()) continue;
    const auto& trained = data.train[static_cast<std::size_t>(user)];
    for (const std::int64_t i : trained) seen[static_cast<std::size_t>(i)] = 1;
    const std::int64_t candidates = data.items - static_cast<std::int64_t>(trained.size());
    const std::size_t k = static_cast<std::size_t>(std::min<std::int64_t>(10, candidates));
    for (std::int64_t i = 0; i < data.items; ++i) {
      scores[static_cast<std::size_t>(i)] = {-dot(&u[user * kDim], &v[i * kDim]), i};
    }
    for (const std::int64_t i : trained) scores[static_cast<std::size_t>(i)].first = INFINITY;
    std::partial_sort(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(k), scores.end());
    top.clear();
    for (const std::int64_t i : by_popularity) {
      if (top.size() == k) break;
      if (seen[static_cast<std::size_t>(i)] == 0) top.push_back(i);
    }
    for (const std::int64_t i : held) {
      model_hits += std::any_of(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(k),
                                [&](const auto& s) { return s.second == i; });
      popularity_hits += std::find(top.begin(), top.end(), i) != top.end();
      random_hits += static_cast<double>(k) / static_cast<double>(candidates);
      ++total;
    }
    for (const std::int64_t i : trained) seen[static_cast<std::size_t>(i)] = 0;
  }
  const auto n = static_cast<double>(total);
  return {static_cast<double>(model_hits) / n, static_cast<double>(popularity_hits) / n, random_hits / n};
}

std::string recall_line(const Recalls& recalls) {
  char line[200];
  const auto times = [](double recall, double baseline) {  // "1.43x", "62x"; "-" against a zero baseline
    char text[32] = "-";
    if (baseline > 0) std::snprintf(text, sizeof text, recall / baseline < 10 ? "%.2fx" : "%.0fx", recall / baseline);
    return std::string(text);
  };
  std::snprintf(line, sizeof line, "held-out recall@10: %.4f, popularity: %.4f (%s), random: %.4f (%s)", recalls.model,
                recalls.popularity, times(recalls.model, recalls.popularity).c_str(), recalls.random,
                times(recalls.model, recalls.random).c_str());
  return line;
}

}  // namespace embedkit::tools
