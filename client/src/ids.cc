#include "client/src/ids.h"

#include <random>

namespace ferry::client::detail {

std::string random_prefix(size_t n) {
  static constexpr char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::random_device rd;
  std::uniform_int_distribution<int> pick(0, 61);
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(alphabet[pick(rd)]);
  return out;
}

std::string id_generator::next() {
  std::string id = _prefix;
  id.push_back('-');
  id += std::to_string(_counter.fetch_add(1, std::memory_order_relaxed) + 1);
  return id;
}

uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace ferry::client::detail
