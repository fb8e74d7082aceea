// named_type.h - distinct types for ids so that an offset, a session id and an ack id
// cannot be mixed up (the Redpanda named_type idea).
#pragma once

#include <compare>
#include <functional>
#include <utility>

namespace ferry {

template <class T, class Tag>
class named_type {
 public:
  using value_type = T;

  named_type() = default;
  explicit named_type(T value) : _value(std::move(value)) {}

  [[nodiscard]] const T& get() const noexcept { return _value; }
  [[nodiscard]] T& get() noexcept { return _value; }

  auto operator<=>(const named_type&) const = default;
  bool operator==(const named_type&) const = default;

 private:
  T _value{};
};

}  // namespace ferry

template <class T, class Tag>
struct std::hash<ferry::named_type<T, Tag>> {
  size_t operator()(const ferry::named_type<T, Tag>& v) const noexcept { return std::hash<T>{}(v.get()); }
};
