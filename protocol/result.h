// result.h - a value or a module error code, for hot and untrusted paths.
//
// Every module has one error enum (protocol::errc, storage::errc, ...). Functions that
// can fail on untrusted input return result<T, E> instead of throwing; the type is
// [[nodiscard]] so ignoring a failure is a compile warning. To ignore one on purpose,
// write `(void)f();` — explicit and greppable.
#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace ferry {

template <class T, class E>
class [[nodiscard]] result {
  static_assert(std::is_enum_v<E>, "the error type is a module's errc enum");

 public:
  result(T value) : _v(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  result(E error) : _v(std::in_place_index<1>, error) {}             // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const noexcept { return _v.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  [[nodiscard]] E error() const noexcept {
    assert(!ok());
    return std::get<1>(_v);
  }
  [[nodiscard]] T& value() & noexcept {
    assert(ok());
    return std::get<0>(_v);
  }
  [[nodiscard]] const T& value() const& noexcept {
    assert(ok());
    return std::get<0>(_v);
  }
  [[nodiscard]] T&& value() && noexcept {
    assert(ok());
    return std::get<0>(std::move(_v));
  }
  T* operator->() noexcept { return &value(); }
  const T* operator->() const noexcept { return &value(); }
  T& operator*() & noexcept { return value(); }
  const T& operator*() const& noexcept { return value(); }

 private:
  std::variant<T, E> _v;
};

}  // namespace ferry
